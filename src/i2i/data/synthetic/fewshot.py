"""`shapes_fewshot` (DESIGN §6), the few-shot scenario of FUNIT and COCO-FUNIT.

A class is an (object colour, background) pair: 4 saturated object colours x 4 background tones =
16 classes. The four classes on the diagonal (red on sand, green on night, blue on moss, yellow on
slate) are held out: never seen in training, shown only by K example images at evaluation. Every
held-out class's colour and background appear in training, each with three other partners, so a
model that has learnt to read "object colour" and "background" from a few examples can compose
them; one that memorised the training classes cannot. Layouts (1-3 circles, squares, triangles) are
drawn independently per image, so a translation must keep the content image's objects in place
(content_iou) and take the target class's look (class_acc): `metrics.synthetic.score_fewshot` scores
them from the ground truth exposed here (evaluation episodes, content masks, class looks).

Why tones and not spatial textures (stripes, checks): FUNIT's generator is convolutional with
reflection padding throughout, so on a uniform background its content code is uniform and the
decoder cannot place a periodic pattern there; a background "texture" it can render from K
examples is its tone. The object colour and the background are separate regions the translation
must recolour independently.
"""

from collections.abc import Sequence
from itertools import product

import torch
from torch import Tensor

from i2i.data.fewshot import content_of, evaluation_episodes
from i2i.data.synthetic.base import SPLITS, SyntheticScenario
from i2i.data.synthetic.shapes import RGB, Rendered, jitter, render, rng_for, sample_layout
from i2i.errors import check_positive

OBJECT_COLORS: dict[str, RGB] = {
    "red": (0.90, 0.15, 0.12),
    "green": (0.15, 0.75, 0.20),
    "blue": (0.15, 0.30, 0.90),
    "yellow": (0.92, 0.85, 0.15),
}
BACKGROUNDS: dict[str, RGB] = {
    "night": (0.10, 0.12, 0.22),
    "sand": (0.86, 0.80, 0.64),
    "slate": (0.45, 0.50, 0.55),
    "moss": (0.22, 0.32, 0.16),
}
HELD_OUT = ("red_sand", "green_night", "blue_moss", "yellow_slate")
OBJECT_JITTER, BACKGROUND_JITTER = 0.06, 0.04


class ShapesFewShot(SyntheticScenario):
    """16 classes (`<colour>_<background>`), 4 held out; see the module docstring.

    `num_train`/`num_test` are images per class; `shots` is K at evaluation. A class's "test"
    images are the evaluation content images of a training class and the examples of a held-out
    class. An evaluation episode (`evaluation_episodes`) shows a held-out class by K examples.
    """

    domains = tuple(f"{color}_{background}" for color, background in product(OBJECT_COLORS, BACKGROUNDS))
    object_colors, backgrounds = OBJECT_COLORS, BACKGROUNDS

    def __init__(self, *, shots: int, **scenario: int) -> None:
        super().__init__(**scenario)
        check_positive("data.domains.shots", shots)
        self.shots = shots

    # ------------------------------------------------------------------ the ClassDomains interface
    def classes(self, split: str) -> tuple[str, ...]:
        return tuple(sorted(name for name in self.domains if (name in HELD_OUT) == (split == "test")))

    def count(self, name: str, split: str) -> int:
        return self.size(split)

    def location(self, name: str, split: str) -> str:
        return f"shapes_fewshot class {name} ({split} images)"

    # ------------------------------------------------------------------ rendering and ground truth
    def render(self, domain: str, split: str, index: int) -> Rendered:
        color, background = self.class_look(domain)
        rng = rng_for(self.seed, SPLITS[split], self.domains.index(domain), index)
        layout = sample_layout(rng, self.image_size)
        colors = tuple(jitter(rng, OBJECT_COLORS[color], OBJECT_JITTER) for _ in layout)
        return render(
            rng, self.image_size, layout, jitter(rng, BACKGROUNDS[background], BACKGROUND_JITTER), colors
        )

    def class_look(self, name: str) -> tuple[str, str]:
        """The (object colour, background) names of class `name`: keys of `object_colors`, `backgrounds`."""
        color, background = name.split("_")
        return color, background

    def evaluation_episodes(self, indices: Sequence[int]) -> tuple[Tensor, list[str], Tensor]:
        """Content images (n, 3, H, W), target classes and K = `shots` shots (n, K, 3, H, W) of the
        given evaluation indices (`data.fewshot.evaluation_episodes`)."""
        return evaluation_episodes(self, indices, self.shots)

    def content_masks(self, indices: Sequence[int]) -> Tensor:
        """Ground-truth object masks of the given evaluation content images, (n, H, W) bool."""
        contents = (content_of(self, i) for i in indices)
        masks = [self.sample(name, "test", image).mask for name, image in contents]
        return torch.stack([torch.from_numpy(mask) for mask in masks])
