"""Drawing primitives shared by the `shapes_*` scenarios: layouts, shape masks, colours, rendering.

Everything is a pure function of a numpy Generator, so a scenario that seeds the generator from
(seed, split, domain, index) renders the same image every time, in any process.
"""

from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle")
RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Placement:
    """One object: its shape, centre (x, y) and radius, in pixels."""

    shape: str
    cx: float
    cy: float
    radius: float


@dataclass(frozen=True)
class Rendered:
    """An image in [0, 1] (H, W, 3) and its ground truth."""

    image: np.ndarray
    mask: np.ndarray  # bool (H, W): object pixels
    layout: tuple[Placement, ...]
    background: RGB
    object_colors: tuple[RGB, ...]


def rng_for(*key: int) -> np.random.Generator:
    """A generator determined by integer keys (seed, split, domain, index ...)."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def sample_layout(
    rng: np.random.Generator,
    size: int,
    shapes: tuple[str, ...] = SHAPES,
    max_objects: int = 3,
    radius_range: tuple[float, float] = (0.10, 0.17),
) -> tuple[Placement, ...]:
    """1..max_objects non-overlapping objects, kept 2 px inside the border so the border is background."""
    count = int(rng.integers(1, max_objects + 1))
    placed: list[Placement] = []
    for _ in range(200):
        if len(placed) == count:
            break
        radius = float(rng.uniform(*radius_range)) * size
        margin = radius * 1.2 + 2
        cx, cy = rng.uniform(margin, size - margin, size=2)
        if all(np.hypot(cx - p.cx, cy - p.cy) > 1.25 * (radius + p.radius) + 2 for p in placed):
            placed.append(Placement(str(rng.choice(shapes)), float(cx), float(cy), radius))
    return tuple(placed)


def shape_coverage(placement: Placement, size: int, supersample: int = 4) -> np.ndarray:
    """Fraction of each pixel covered by the shape (anti-aliased by supersampling), (H, W) float."""
    n = size * supersample
    coords = (np.arange(n) + 0.5) / supersample
    x, y = np.meshgrid(coords, coords)
    dx, dy, r = x - placement.cx, y - placement.cy, placement.radius
    if placement.shape == "circle":
        inside = dx**2 + dy**2 <= r**2
    elif placement.shape == "square":
        half = r * np.sqrt(np.pi) / 2  # same area as the circle of radius r
        inside = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    else:  # equilateral triangle pointing up, circumradius 1.3 r (about the circle's area)
        rc = 1.3 * r
        v = [(0.0, -rc), (-rc * np.sqrt(3) / 2, rc / 2), (rc * np.sqrt(3) / 2, rc / 2)]
        inside = np.ones_like(dx, dtype=bool)
        for (x1, y1), (x2, y2) in zip(v, v[1:] + v[:1]):
            inside &= (x2 - x1) * (dy - y1) - (y2 - y1) * (dx - x1) <= 0
    return inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def jitter(rng: np.random.Generator, color: RGB, amount: float) -> RGB:
    """`color` with each channel moved uniformly by at most `amount`, clipped to [0, 1]."""
    return tuple(np.clip(np.asarray(color) + rng.uniform(-amount, amount, 3), 0, 1).tolist())


def render(
    rng: np.random.Generator,
    size: int,
    layout: tuple[Placement, ...],
    background: np.ndarray | RGB,
    object_colors: tuple[RGB, ...],
    noise: float = 0.02,
) -> Rendered:
    """Paint the objects over `background` (an RGB triple or an (H, W, 3) image) and add pixel noise."""
    canvas = np.broadcast_to(np.asarray(background, dtype=np.float64), (size, size, 3)).copy()
    mask = np.zeros((size, size), dtype=bool)
    for placement, color in zip(layout, object_colors):
        coverage = shape_coverage(placement, size)[..., None]
        canvas = canvas * (1 - coverage) + np.asarray(color) * coverage
        mask |= coverage[..., 0] >= 0.5
    canvas = np.clip(canvas + rng.normal(0, noise, canvas.shape), 0, 1).astype(np.float32)
    bg = tuple(np.asarray(background, dtype=np.float64).reshape(-1, 3).mean(0).tolist())
    return Rendered(canvas, mask, layout, bg, tuple(object_colors))
