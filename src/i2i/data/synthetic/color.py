"""`shapes_color` (DESIGN §6), the default scenario for CycleGAN, UNIT and MUNIT.

Domain A: light background, blue-ish objects. Domain B: dark background, objects in one of three
colour modes per image (red, green or yellow): a multimodal target. Layouts (1-3 circles, squares
or triangles) are drawn independently per domain, so the data is unpaired; a translation must keep
every object where it is (content_iou) and take B's look (domain_acc). A multimodal model must
also produce every colour mode of the target domain from each input (mode_coverage).
"""

from dataclasses import dataclass, replace

import numpy as np

from i2i.data.synthetic.base import SPLITS, SyntheticScenario, translate_in_chunks
from i2i.data.synthetic.shapes import RGB, Rendered, jitter, render, rng_for, sample_layout
from i2i.metrics.shapes import looks_like_target, mask_iou, mode_coverage, segment_objects
from i2i.types import DIRECTIONS, SOURCE_TARGET, Translator


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


# DESIGN §6: mode_coverage is measured over this many sampled styles per input, drawn with a fixed
# seed so that the metric is reproducible.
COVERAGE_STYLES = 12
COVERAGE_STYLE_SEED = 0

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

    def metrics(self, model: Translator, n_images: int) -> dict[str, float]:
        """content_iou and domain_acc per direction (keys `<metric>_<direction>`), in [0, 1].

        A multimodal model is scored on COVERAGE_STYLES translations of each input with styles
        sampled from a fixed seed: content_iou and domain_acc are their means, and mode_coverage
        the fraction of the target modes each input reaches (B's three for AtoB; A has one mode,
        so BtoA checks that some style reaches it)."""
        results = {}
        for direction in DIRECTIONS:
            source, target = SOURCE_TARGET[direction]
            masks = self.masks(source, "test", n_images)
            images = self.images(source, "test", n_images)
            colours = (self.looks[source].background, self.looks[target].background)
            colours += (self.looks[source].modes, self.looks[target].modes)
            if getattr(model, "multimodal", False):
                styled = translate_in_chunks(
                    model, images, direction, n_styles=COVERAGE_STYLES, style_seed=COVERAGE_STYLE_SEED
                )
                results[f"mode_coverage_{direction}"] = mode_coverage(styled, masks, *colours).mean().item()
                outputs, masks = styled.flatten(0, 1), masks.repeat_interleave(COVERAGE_STYLES, dim=0)
            else:
                outputs = translate_in_chunks(model, images, direction)
            results[f"content_iou_{direction}"] = mask_iou(segment_objects(outputs), masks).mean().item()
            results[f"domain_acc_{direction}"] = looks_like_target(outputs, masks, *colours).float().mean().item()
        return results
