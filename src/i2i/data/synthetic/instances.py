"""`shapes_instances` (DESIGN §6), the scenario of DRIT++ and DUNIT: a global change and a change of
every object, scored apart.

Each image holds MIN..MAX_OBJECTS (config: 2-5) small circles and squares, 8-16 px wide at 64 px
(scaled with the image size), whose boxes keep GAP px apart and BORDER px off the image border.
The two domains differ twice:
- globally: A has a light grey background, B a dark background tinted blue (`domain_acc`);
- per object: A draws each object as an outline, a blue ring RING_SHARE of the object's width
  thick around an interior of background colour; B fills each object with orange (`instance_acc`).
The change of an object cannot be made pixel by pixel: a pixel of A's ring becomes orange, but a
pixel of its interior, which has the background's colour, must become orange inside an object and
dark outside. A translator that maps colours globally (light -> dark, blue -> orange) turns the
background right and keeps rings: domain_acc 1 and instance_acc 0. Only a translator that sees
each object's extent fills it (and, B -> A, hollows it out), so instance_acc measures what a
global translation leaves undone.

Every image comes with exact ground truth per object (`RenderedInstances`): its box (x1, y1, x2,
y2) in pixels (pixel i spans [i, i + 1)), its mask, and the two regions its look is read from:
the ring and the core (the pixels wholly inside the interior). Layouts are drawn per domain, so
the data is unpaired; `paint` renders any layout in either domain's look, which gives the perfect
translation of an image for tests. Deterministic from (seed, split, domain, index).
`metrics.synthetic.score_instances` scores translations; `source` serves the images with their
boxes (`data.boxes`).
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from i2i.data.boxes import padded_batch
from i2i.data.synthetic.base import SPLITS, SyntheticScenario, SyntheticSource
from i2i.data.synthetic.shapes import RGB, Placement, Rendered, jitter, rng_for, shape_coverage
from i2i.errors import ConfigError, check_integer

# Geometry at 64 px, scaled with the image size.
OBJECT_SIDE = (8.0, 16.0)  # the side of an object's box, uniform
SMALL_SIDE = 12.0  # objects narrower than this are "small" in the size-split metrics
GAP = 4.0  # the least distance between two boxes
BORDER = 3.0  # the least distance from a box to the image border (the border must be background)
RING_SHARE = 0.2  # an outline's thickness, as a share of the object's side
SHAPES = ("circle", "square")
NOISE = 0.02
LAYOUT_TRIES = 1000


@dataclass(frozen=True)
class InstanceLook:
    """The colours of one domain: the background, the objects, and whether objects are filled or
    drawn as an outline around an interior of background colour."""

    background: RGB
    object_color: RGB
    filled: bool
    background_jitter: float = 0.04
    object_jitter: float = 0.05


LOOKS = {
    "A": InstanceLook(background=(0.88, 0.88, 0.86), object_color=(0.15, 0.30, 0.85), filled=False),
    "B": InstanceLook(background=(0.10, 0.12, 0.24), object_color=(0.95, 0.70, 0.15), filled=True),
}


@dataclass(frozen=True)
class Instance:
    """One object: its shape, centre (x, y) and box side, in pixels."""

    shape: str
    cx: float
    cy: float
    side: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) in pixels: the shape touches all four sides."""
        half = self.side / 2
        return self.cx - half, self.cy - half, self.cx + half, self.cy + half

    def placement(self, side: float) -> Placement:
        """The shape with box side `side` at the same centre, as `shapes.shape_coverage` draws it."""
        # shape_coverage draws a square of the area of the circle of radius r: side r * sqrt(pi)
        radius = side / 2 if self.shape == "circle" else side / np.sqrt(np.pi)
        return Placement(self.shape, self.cx, self.cy, radius)


@dataclass(frozen=True)
class RenderedInstances(Rendered):
    """A `Rendered` image with per-object ground truth, K objects: boxes (K, 4) (x1, y1, x2, y2) in
    pixels; bool (K, H, W) masks of each object (the whole shape), of its ring (pixels at least 3/4
    covered by the outline) and of its core (pixels wholly inside the interior)."""

    instances: tuple[Instance, ...]
    boxes: np.ndarray
    object_masks: np.ndarray
    ring_masks: np.ndarray
    core_masks: np.ndarray


def sample_instances(
    rng: np.random.Generator, size: int, min_objects: int, max_objects: int
) -> tuple[Instance, ...]:
    """min_objects..max_objects objects whose boxes keep GAP apart and BORDER off the border (a crowded
    draw that does not fit after LAYOUT_TRIES places fewer)."""
    scale = size / 64
    count = int(rng.integers(min_objects, max_objects + 1))
    placed: list[Instance] = []
    for _ in range(LAYOUT_TRIES):
        if len(placed) == count:
            break
        side = float(rng.uniform(*OBJECT_SIDE)) * scale
        shape = str(rng.choice(SHAPES))
        margin = side / 2 + BORDER * scale
        cx, cy = (float(v) for v in rng.uniform(margin, size - margin, size=2))
        candidate = Instance(shape, cx, cy, side)
        if all(_apart(candidate, other, GAP * scale) for other in placed):
            placed.append(candidate)
    return tuple(placed)


def _apart(first: Instance, second: Instance, gap: float) -> bool:
    """Whether the two boxes are at least `gap` apart along x or along y."""
    reach = (first.side + second.side) / 2 + gap
    return abs(first.cx - second.cx) >= reach or abs(first.cy - second.cy) >= reach


def paint(
    rng: np.random.Generator, size: int, instances: tuple[Instance, ...], look: InstanceLook
) -> RenderedInstances:
    """The objects drawn in `look` (colours jittered per image and per object, then pixel noise)."""
    background = np.asarray(jitter(rng, look.background, look.background_jitter))
    colors = tuple(jitter(rng, look.object_color, look.object_jitter) for _ in instances)
    canvas = np.broadcast_to(background, (size, size, 3)).copy()
    object_masks, ring_masks, core_masks = [], [], []
    for instance, color in zip(instances, colors):
        outer = shape_coverage(instance.placement(instance.side), size)
        inner = shape_coverage(instance.placement(instance.side * (1 - 2 * RING_SHARE)), size)
        ink = (outer if look.filled else outer - inner)[..., None]
        canvas = canvas * (1 - ink) + np.asarray(color) * ink
        object_masks.append(outer >= 0.5)
        ring_masks.append(outer - inner >= 0.75)
        core_masks.append(inner >= 1)
    canvas = np.clip(canvas + rng.normal(0, NOISE, canvas.shape), 0, 1).astype(np.float32)

    def stack(masks: list[np.ndarray]) -> np.ndarray:
        return np.stack(masks) if masks else np.zeros((0, size, size), dtype=bool)

    return RenderedInstances(
        image=canvas,
        mask=stack(object_masks).any(axis=0),
        layout=tuple(instance.placement(instance.side) for instance in instances),
        background=tuple(background.tolist()),
        object_colors=colors,
        instances=instances,
        boxes=np.array([instance.box for instance in instances], dtype=np.float64).reshape(-1, 4),
        object_masks=stack(object_masks),
        ring_masks=stack(ring_masks),
        core_masks=stack(core_masks),
    )


class ShapesInstances(SyntheticScenario):
    """Outlined objects on light grey (A), filled objects on dark blue (B); see the module docstring."""

    domains = ("A", "B")
    looks = LOOKS

    def __init__(self, *, min_objects: int = 2, max_objects: int = 5, **scenario: int) -> None:
        super().__init__(**scenario)
        check_integer("data.domains.min_objects", min_objects, 1)
        check_integer("data.domains.max_objects", max_objects, min_objects)
        self.min_objects, self.max_objects = min_objects, max_objects
        scale = self.image_size / 64
        self.small_side = SMALL_SIDE * scale  # objects with a narrower box are "small"
        self.gap = GAP * scale  # the least distance between two objects' boxes

    def render(self, domain: str, split: str, index: int) -> RenderedInstances:
        rng = rng_for(self.seed, SPLITS[split], self.domains.index(domain), index)
        instances = sample_instances(rng, self.image_size, self.min_objects, self.max_objects)
        return paint(rng, self.image_size, instances, self.looks[domain])

    def source(self, domain: str, split: str) -> "BoxedSyntheticSource":
        return BoxedSyntheticSource(self, domain, split)

    def boxes(self, domain: str, split: str, index: int) -> Tensor:
        """The boxes of image `index`, (K, 4) float32 (x1, y1, x2, y2) in pixels."""
        return torch.from_numpy(self.sample(domain, split, index).boxes).float()

    def boxed_images(self, domain: str, split: str, count: int) -> tuple[Tensor, Tensor, Tensor]:
        """The first `count` images of a split, (count, 3, H, W) in [-1, 1], with their boxes padded
        to `max_objects` rows, (count, max_objects, 4) float32, and which rows hold one, (count,
        max_objects) bool."""
        boxes = [self.boxes(domain, split, i) for i in range(count)]
        return self.images(domain, split, count), *padded_batch(boxes, self.max_objects)

    def check_max_instances(self, max_instances: int) -> None:
        """Refuse a `data.max_instances` below the most objects an image holds."""
        if max_instances < self.max_objects:
            raise ConfigError(
                "data.max_instances",
                max_instances,
                f"must be >= data.domains.max_objects={self.max_objects}, the most objects an image holds",
            )


class BoxedSyntheticSource(SyntheticSource):
    """One domain and split of `shapes_instances`: images with their boxes (`data.boxes.BoxedImageSource`)."""

    scenario: ShapesInstances

    def load_boxed(self, index: int, seed: int) -> tuple[Tensor, Tensor]:
        """Image `index` and its boxes (K, 4)."""
        return self.load(index, seed), self.scenario.boxes(self.domain, self.split, index)

    def check_max_instances(self, max_instances: int) -> None:
        """Refuse a `data.max_instances` below the most objects an image holds."""
        self.scenario.check_max_instances(max_instances)
