"""`shapes_color` (DESIGN §6), the default scenario for CycleGAN, UNIT and MUNIT.

Domain A: light background, blue-ish objects. Domain B: dark background, objects in one of three
colour modes per image (red, green or yellow): a multimodal target. Layouts (1-3 circles, squares
or triangles) are drawn independently per domain, so the data is unpaired; a translation must keep
every object where it is (content_iou) and take B's look (domain_acc). A multimodal model must
also produce every colour mode of the target domain from each input (mode_coverage). The scenario
exposes the ground truth (masks, `looks`); `metrics.synthetic.score_color` scores translations.
"""

from dataclasses import dataclass, replace

import numpy as np

from i2i.data.synthetic.base import SPLITS, SyntheticScenario
from i2i.data.synthetic.shapes import RGB, Rendered, jitter, render, rng_for, sample_layout


@dataclass(frozen=True)
class DomainLook:
    """The colours of one domain: a background and one or more object colour modes."""

    background: RGB
    modes: tuple[RGB, ...]
    background_jitter: float = 0.05
    object_jitter: float = 0.06


LOOKS = {
    "A": DomainLook(background=(0.88, 0.88, 0.86), modes=((0.20, 0.35, 0.85),), object_jitter=0.08),
    "B": DomainLook(
        background=(0.12, 0.12, 0.14),
        modes=((0.90, 0.20, 0.15), (0.20, 0.80, 0.25), (0.92, 0.85, 0.20)),  # red, green, yellow
    ),
}


def render_look(rng: np.random.Generator, size: int, look: DomainLook, shape: str | None = None) -> Rendered:
    """A random layout in `look`'s colours: one colour mode per image, jittered per object.

    `shape` replaces the shape of every object after the layout is drawn, so two calls with equally
    seeded generators and different shapes draw the same positions, sizes, colours and noise.
    """
    layout = sample_layout(rng, size)
    if shape is not None:
        layout = tuple(replace(placement, shape=shape) for placement in layout)
    mode = look.modes[int(rng.integers(len(look.modes)))]
    colors = tuple(jitter(rng, mode, look.object_jitter) for _ in layout)
    background = jitter(rng, look.background, look.background_jitter)
    return render(rng, size, layout, background, colors)


class ShapesColor(SyntheticScenario):
    """Two domains that differ in colours only; see the module docstring."""

    domains = ("A", "B")
    looks = LOOKS

    def render(self, domain: str, split: str, index: int) -> Rendered:
        rng = rng_for(self.seed, SPLITS[split], self.domains.index(domain), index)
        return render_look(rng, self.image_size, self.looks[domain])
