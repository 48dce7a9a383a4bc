"""`shapes_fewshot` (DESIGN §6), the few-shot scenario of FUNIT and COCO-FUNIT.

A class is a point of a continuous appearance space: an object colour and a background colour. Its
two hues are continuous (a point of the hue torus, both hues in turns); its saturations and values
are drawn inside ranges that keep every object far brighter and more saturated than every
background, so objects stand apart from the background whatever the two hues. The images of a class
jitter slightly around its point (hues by `hue_jitter`, saturations and values by `tone_jitter`),
with the usual random layouts of 1-3 circles, squares and triangles drawn independently per image.

Training classes: a `grid` x `grid` grid over the hue torus, each point moved by up to `grid_jitter`
of a cell along each hue. Unseen classes: the cell corners of every `unseen_stride`-th row and
column, so they lie inside the same ranges, spread over the whole space, between training classes;
each is at least `margin` (hue torus distance, in turns) from every training class, checked. A
model that reads "object colour" and "background colour" from K examples can render an unseen class;
one that memorised the training classes falls onto a neighbour. FUNIT's paper makes the point that
unseen-class quality grows with the number of training classes (119 to 444 there); a 12-class grid
was tried first and nothing generalised from it.

The class points are the same for every `seed` (the benchmark does not move with the seed); the
images are drawn from (seed, split, class, index). A translation must keep the content image's
objects in place (content_iou) and take the target class's colours (class_acc, colour_err):
`metrics.synthetic.score_fewshot` scores them from the ground truth exposed here (evaluation
episodes, content masks, class colours).
"""

import colorsys
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from i2i.data.fewshot import content_of, evaluation_episodes, target_of
from i2i.data.synthetic.base import SPLITS, SyntheticScenario
from i2i.data.synthetic.shapes import RGB, Rendered, render, rng_for, sample_layout
from i2i.errors import ConfigError, check_integer, check_non_negative, check_positive

CLASS_SPACE_KEY = 2026  # seeds the class points (grid jitter, tones), independent of `seed`
Range = Sequence[float]  # [low, high]


def hue_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance on the hue torus between points (..., 2) of hues in turns."""
    difference = np.abs(a - b) % 1.0
    return np.hypot(*np.moveaxis(np.minimum(difference, 1.0 - difference), -1, 0))


def hsv(hue: float, saturation: float, value: float) -> RGB:
    """An RGB triple in [0, 1] from a hue in turns (any real: taken modulo 1), saturation and value."""
    return colorsys.hsv_to_rgb(hue % 1.0, float(np.clip(saturation, 0, 1)), float(np.clip(value, 0, 1)))


class ShapesFewShot(SyntheticScenario):
    """`grid`^2 training classes and ceil(grid / unseen_stride)^2 unseen ones; see the module docstring.

    `num_train`/`num_test` are images per class; `shots` is K at evaluation. A class's "test" images
    are the evaluation content images of a training class and the examples of an unseen class. An
    evaluation episode (`evaluation_episodes`) shows an unseen class by K examples. Class names:
    `train_<i>` and `unseen_<i>` (labels in name order, row-major over the grid).
    """

    def __init__(
        self,
        *,
        shots: int,
        grid: int,
        grid_jitter: float,
        unseen_stride: int,
        margin: float,
        object_saturation: Range,
        object_value: Range,
        background_saturation: Range,
        background_value: Range,
        hue_jitter: float,
        tone_jitter: float,
        **scenario: int,
    ) -> None:
        super().__init__(**scenario)
        check_positive("data.domains.shots", shots)
        check_integer("data.domains.grid", grid, 2)
        check_integer("data.domains.unseen_stride", unseen_stride, 1, grid)
        for key, value in (
            ("grid_jitter", grid_jitter),
            ("hue_jitter", hue_jitter),
            ("tone_jitter", tone_jitter),
        ):
            check_non_negative(f"data.domains.{key}", value)
        check_positive("data.domains.margin", margin)
        tones = {
            "object_saturation": object_saturation,
            "object_value": object_value,
            "background_saturation": background_saturation,
            "background_value": background_value,
        }
        for key, (low, high) in tones.items():
            if not 0 <= low <= high <= 1:
                raise ConfigError(
                    f"data.domains.{key}", [low, high], "must be a range [low, high] inside [0, 1]"
                )
        if min(object_value) <= max(background_value):
            raise ConfigError(
                "data.domains.object_value",
                list(object_value),
                f"must lie above data.domains.background_value {list(background_value)} "
                "(objects brighter than every background keep the two apart)",
            )
        self.shots, self.hue_jitter, self.tone_jitter = shots, hue_jitter, tone_jitter
        self.margin = margin
        self.hues = self._class_hues(grid, grid_jitter, unseen_stride)
        self.domains = tuple(sorted(self.hues))
        self._check_margin(grid, grid_jitter)
        space = np.random.default_rng(np.random.SeedSequence([CLASS_SPACE_KEY, 1]))
        self.tones = {  # per class: (object saturation, object value, background saturation, value)
            name: tuple(float(space.uniform(*tones[key])) for key in tones) for name in self.domains
        }

    @staticmethod
    def _class_hues(grid: int, grid_jitter: float, stride: int) -> dict[str, tuple[float, float]]:
        """(object hue, background hue) of every class: the jittered grid and the cell corners."""
        space = np.random.default_rng(np.random.SeedSequence([CLASS_SPACE_KEY, 0]))
        cells = [(row, column) for row in range(grid) for column in range(grid)]
        moves = space.uniform(-grid_jitter, grid_jitter, (len(cells), 2))
        width = len(str(len(cells) - 1))
        hues = {
            f"train_{i:0{width}d}": (((row + dy) / grid) % 1.0, ((column + dx) / grid) % 1.0)
            for i, ((row, column), (dy, dx)) in enumerate(zip(cells, moves))
        }
        corners = [
            (row + 0.5, column + 0.5) for row in range(0, grid, stride) for column in range(0, grid, stride)
        ]
        width = len(str(len(corners) - 1))
        hues |= {f"unseen_{i:0{width}d}": (r / grid, c / grid) for i, (r, c) in enumerate(corners)}
        return hues

    def _check_margin(self, grid: int, grid_jitter: float) -> None:
        nearest = self.nearest_unseen_to_training()
        if nearest < self.margin:
            raise ConfigError(
                "data.domains.margin",
                self.margin,
                f"an unseen class lies {nearest:.4f} from a training class with grid={grid} and "
                f"grid_jitter={grid_jitter}; lower data.domains.grid_jitter (below 0.5) or the margin",
            )

    # ------------------------------------------------------------------ the ClassDomains interface
    def classes(self, split: str) -> tuple[str, ...]:
        prefix = "train_" if split == "train" else "unseen_"
        return tuple(name for name in self.domains if name.startswith(prefix))

    def count(self, name: str, split: str) -> int:
        return self.size(split)

    def location(self, name: str, split: str) -> str:
        return f"shapes_fewshot class {name} ({split} images)"

    # ------------------------------------------------------------------ rendering and ground truth
    def class_colors(self, name: str) -> tuple[RGB, RGB]:
        """The (object, background) RGB colours of class `name`'s point, in [0, 1]."""
        object_hue, background_hue = self.hues[name]
        object_saturation, object_value, background_saturation, background_value = self.tones[name]
        return (
            hsv(object_hue, object_saturation, object_value),
            hsv(background_hue, background_saturation, background_value),
        )

    def _jittered(self, rng: np.random.Generator, hue: float, saturation: float, value: float) -> RGB:
        jitter = self.tone_jitter
        return hsv(
            hue + rng.uniform(-self.hue_jitter, self.hue_jitter),
            saturation + rng.uniform(-jitter, jitter),
            value + rng.uniform(-jitter, jitter),
        )

    def render(self, domain: str, split: str, index: int) -> Rendered:
        rng = rng_for(self.seed, SPLITS[split], self.domains.index(domain), index)
        layout = sample_layout(rng, self.image_size)
        object_hue, background_hue = self.hues[domain]
        object_saturation, object_value, background_saturation, background_value = self.tones[domain]
        background = self._jittered(rng, background_hue, background_saturation, background_value)
        colors = tuple(self._jittered(rng, object_hue, object_saturation, object_value) for _ in layout)
        return render(rng, self.image_size, layout, background, colors)

    def evaluation_episodes(self, indices: Sequence[int]) -> tuple[Tensor, list[str], Tensor]:
        """Content images (n, 3, H, W), target classes and K = `shots` shots (n, K, 3, H, W) of the
        given evaluation indices (`data.fewshot.evaluation_episodes`)."""
        return evaluation_episodes(self, indices, self.shots)

    def content_classes(self, indices: Sequence[int]) -> list[str]:
        """The training class of each of the given evaluation content images."""
        return [content_of(self, i)[0] for i in indices]

    def target_classes(self, indices: Sequence[int]) -> list[str]:
        """The unseen class each of the given evaluation content images is translated to."""
        return [target_of(self, i) for i in indices]

    def content_masks(self, indices: Sequence[int]) -> Tensor:
        """Ground-truth object masks of the given evaluation content images, (n, H, W) bool."""
        contents = (content_of(self, i) for i in indices)
        masks = [self.sample(name, "test", image).mask for name, image in contents]
        return torch.stack([torch.from_numpy(mask) for mask in masks])

    def nearest_unseen_to_training(self) -> float:
        """The smallest hue torus distance from an unseen class to a training class (>= `margin`)."""
        train = np.array([self.hues[name] for name in self.classes("train")])
        unseen = np.array([self.hues[name] for name in self.classes("test")])
        return float(hue_distance(unseen[:, None], train[None]).min())
