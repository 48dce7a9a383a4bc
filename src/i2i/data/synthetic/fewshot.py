"""`shapes_fewshot` (DESIGN §6), the few-shot scenario of FUNIT and COCO-FUNIT.

A class is an (object colour, background) pair: 4 saturated object colours x 4 background tones =
16 classes. The four classes on the diagonal (red on sand, green on night, blue on moss, yellow on
slate) are held out: never seen in training, shown only by K example images at evaluation. Every
held-out class's colour and background appear in training, each with three other partners, so a
model that has learnt to read "object colour" and "background" from a few examples can compose
them; one that memorised the training classes cannot. Layouts (1-3 circles, squares, triangles) are
drawn independently per image, so a translation must keep the content image's objects in place
(content_iou) and take the target class's look (class_acc).

Why tones and not spatial textures (stripes, checks): FUNIT's generator is convolutional with
reflection padding throughout, so on a uniform background its content code is uniform and the
decoder cannot place a periodic pattern there; a background "texture" it can render from K
examples is its tone. The object colour and the background are separate regions the translation
must recolour independently.
"""

from itertools import product

import torch

from i2i.data.fewshot import content_of, evaluation_episodes
from i2i.data.synthetic.base import SPLITS, SyntheticScenario
from i2i.data.synthetic.shapes import RGB, Rendered, jitter, render, rng_for, sample_layout
from i2i.errors import check_positive
from i2i.metrics.shapes import border_color, mask_iou, mean_color, nearest_entry, segment_objects
from i2i.types import Translator

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
    class. `metrics` translates the first `n_images` evaluation content images of every training
    class to the held-out classes in turn, each from K examples.
    """

    domains = tuple(f"{color}_{background}" for color, background in product(OBJECT_COLORS, BACKGROUNDS))

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

    # ------------------------------------------------------------------ rendering and scoring
    def render(self, domain: str, split: str, index: int) -> Rendered:
        color, background = domain.split("_")
        rng = rng_for(self.seed, SPLITS[split], self.domains.index(domain), index)
        layout = sample_layout(rng, self.image_size)
        colors = tuple(jitter(rng, OBJECT_COLORS[color], OBJECT_JITTER) for _ in layout)
        return render(rng, self.image_size, layout, jitter(rng, BACKGROUNDS[background], BACKGROUND_JITTER), colors)

    def metrics(self, model: Translator, n_images: int) -> dict[str, float]:
        """On unseen classes, in [0, 1]: `class_acc` (the translation's object colour and background
        are both nearest the target class's: the FUNIT question), its two halves `object_acc` and
        `background_acc`, and `content_iou` (object mask of the translation vs the input's).

        `n_images` counts per training class, as the other scenarios count per source domain: the
        first `n_images` evaluation content images of every training class are each translated once,
        to the unseen classes in turn (`n_images` = `num_test` scores the whole test split)."""
        n_images = min(n_images, self.num_test) * len(self.classes("train"))
        scores: dict[str, list[torch.Tensor]] = {key: [] for key in ("class_acc", "object_acc", "background_acc", "content_iou")}
        for start in range(0, n_images, 16):
            indices = range(start, min(start + 16, n_images))
            content, targets, shots = evaluation_episodes(self, indices, self.shots)
            translated = model.translate(content.to(model.device), class_images=shots.to(model.device))
            outputs = (translated.float().cpu().clamp(-1, 1) + 1) / 2
            contents = (content_of(self, i) for i in indices)
            masks = torch.stack([torch.from_numpy(self.sample(name, "test", image).mask) for name, image in contents])
            object_ok, background_ok = self._looks_like(outputs, masks, targets)
            scores["class_acc"].append((object_ok & background_ok).float())
            scores["object_acc"].append(object_ok.float())
            scores["background_acc"].append(background_ok.float())
            scores["content_iou"].append(mask_iou(segment_objects(outputs), masks))
        return {name: torch.cat(values).mean().item() for name, values in scores.items()}

    @staticmethod
    def _looks_like(outputs: torch.Tensor, masks: torch.Tensor, targets: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image: is the object colour (mean over the object pixels found inside the input's
        mask) nearest the target's colour, and the background (border median) nearest its tone?"""
        target_color = torch.tensor([list(OBJECT_COLORS).index(t.split("_")[0]) for t in targets])
        target_background = torch.tensor([list(BACKGROUNDS).index(t.split("_")[1]) for t in targets])
        objects = mean_color(outputs, segment_objects(outputs) & masks)
        found = ~objects.isnan().any(dim=1)
        object_ok = found & (nearest_entry(objects.nan_to_num(), list(OBJECT_COLORS.values())) == target_color)
        background_ok = nearest_entry(border_color(outputs), list(BACKGROUNDS.values())) == target_background
        return object_ok, background_ok
