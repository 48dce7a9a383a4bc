"""`shapes_local` (DESIGN §6), LOMIT's scenario: change the objects, keep the background.

Two domains differ only in the object colour: A has blue objects, B orange ones (one colour per
image, jittered). Every image has its own random background, a plain colour or a linear gradient
between two colours at a random angle, drawn far in RGB from both object colours. A translation
towards an exemplar of the other colour must recolour the objects and leave every background
pixel as it was.

The same images serve two kinds of model:
- exemplar-guided (LOMIT, `data.attributes.AttributeDataModule`): `labelled(split)` gives the
  images of both domains, interleaved A, B, A, ..., with one-hot colour attributes (blue, orange);
- unpaired two-domain models (MUNIT, ..., `data.datamodule.UnpairedDataModule`): domains A and B.

Metrics per direction (`metrics.synthetic.score_local`), exact from the ground truth exposed here
(masks, `object_colors`): domain_acc, the translation's object colour is nearer the exemplar's than
the input's; bg_err, the mean absolute error on the input's background pixels.
"""

import numpy as np
import torch
from torch import Tensor

from i2i.data.synthetic.base import SPLITS, SyntheticScenario
from i2i.data.synthetic.shapes import RGB, Rendered, jitter, render, rng_for, sample_layout

OBJECT_COLORS: dict[str, tuple[str, RGB]] = {
    "A": ("blue", (0.15, 0.35, 0.90)),
    "B": ("orange", (0.95, 0.55, 0.10)),
}
OBJECT_JITTER = 0.06
MIN_CONTRAST = 0.45  # RGB distance from every background pixel to both object colours


def distance_to_segment(point: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    """Euclidean distance from `point` to the segment [start, end] (RGB)."""
    direction = end - start
    t = np.clip(np.dot(point - start, direction) / max(float(np.dot(direction, direction)), 1e-12), 0, 1)
    return float(np.linalg.norm(start + t * direction - point))


def random_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(H, W, 3): a plain colour or a linear gradient at a random angle, every pixel at least
    MIN_CONTRAST from both object colours (a gradient's colours lie on a segment in RGB)."""
    while True:
        start = rng.uniform(0, 1, 3)
        end = start if rng.random() < 0.5 else rng.uniform(0, 1, 3)
        distances = [
            distance_to_segment(np.asarray(color), start, end) for _, color in OBJECT_COLORS.values()
        ]
        if min(distances) >= MIN_CONTRAST:
            break
    angle = rng.uniform(0, 2 * np.pi)
    x, y = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    projection = x * np.cos(angle) + y * np.sin(angle)
    t = (projection - projection.min()) / max(float(np.ptp(projection)), 1e-12)
    return start + t[..., None] * (end - start)


class InterleavedSource:
    """Both domains of a split as one labelled set: index i is image i // 2 of domain "AB"[i % 2]."""

    def __init__(self, scenario: "ShapesLocal", split: str) -> None:
        self.scenario, self.split = scenario, split

    def __len__(self) -> int:
        return 2 * self.scenario.size(self.split)

    def load(self, index: int, seed: int) -> Tensor:
        return self.scenario.image(self.scenario.domains[index % 2], self.split, index // 2)


class ShapesLocal(SyntheticScenario):
    """Blue (A) and orange (B) objects on random per-image backgrounds; see the module docstring."""

    domains = ("A", "B")
    attribute_names = tuple(name for name, _ in OBJECT_COLORS.values())

    def render(self, domain: str, split: str, index: int) -> Rendered:
        rng = rng_for(self.seed, SPLITS[split], self.domains.index(domain), index)
        layout = sample_layout(rng, self.image_size)
        color = jitter(rng, OBJECT_COLORS[domain][1], OBJECT_JITTER)
        background = random_background(rng, self.image_size)
        return render(rng, self.image_size, layout, background, (color,) * len(layout))

    def labelled(self, split: str) -> tuple[InterleavedSource, Tensor]:
        """The attribute view: both domains interleaved, with one-hot colour attributes."""
        source = InterleavedSource(self, split)
        return source, torch.arange(len(source))[:, None] % 2 == torch.arange(2)

    def object_colors(self, domain: str, split: str, count: int) -> Tensor:
        """The object colour of each of the first `count` images, (count, 3) in [0, 1]."""
        return torch.tensor([self.sample(domain, split, i).object_colors[0] for i in range(count)])
