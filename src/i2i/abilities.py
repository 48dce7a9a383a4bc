"""What a model can do for its callers, as typed protocols (DESIGN §3).

The callbacks, the metrics and the entry points never ask a model what it is: they ask which of
these abilities it has, with `isinstance(model, Ability)`, and call the ability's methods. Each
ability has methods of its own names, so one `isinstance` tells them apart; a model has an ability
by defining its methods, and a new model therefore touches only `models/`, `nets/`, `conf/` and the
tests. The abilities of the models of today:

| ability | methods | models |
|---|---|---|
| `Translator` | `translate(x, direction)` | CycleGAN, UNIT, MUNIT, U-GAT-IT, CUT, DRIT |
| `InstanceTranslator` | `translate_instances(x, direction, boxes, valid)` (and `translate`) | (DUNIT) |
| `OneWayTranslator` | `trained_direction()` (and `translate`) | CUT, FastCUT |
| `StyleTranslator` | `translate_styles`, `translate_reference` (and `translate`) | MUNIT, DRIT |
| `ReferenceTranslator` | `translate_like(x, reference)` | TUNIT, LOMIT |
| `ExemplarMaskTranslator` | `translate_with_masks` (and `translate_like`) | LOMIT |
| `FewShotTranslator` | `translate_to_class(x, class_images)` | FUNIT, COCO-FUNIT |
| `Clusterer` | `cluster(x)` | TUNIT |
| `WeightAveraged` | `ema_pairs()` | FUNIT, COCO-FUNIT, TUNIT |
| `AttentionMaps` | `attention_maps(x, direction)` | U-GAT-IT |
| `SampleGrid` | `sample_rows(images)` | every model (`TranslationModule`) |

Besides its abilities a model declares the kind of data it trains on (`DataKind`, the class
attribute `data_kind`), which must equal its datamodule's `kind`.

Images are (B, 3, H, W) tensors in [-1, 1] on the model's `device`; every translation is too.
"""

from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from i2i.types import DIRECTIONS, Direction

#: the kinds of training data: two unpaired domains; classes shown by K images each (few-shot);
#: images of unlabelled domains; image pairs with attribute vectors
DataKind = Literal["unpaired", "fewshot", "unlabeled", "attributes"]


@runtime_checkable
class Translator(Protocol):
    """Translates between two domains A and B."""

    device: torch.device

    def translate(self, x: Tensor, direction: Direction) -> Tensor:
        """x of the source domain of `direction` as images of its target domain, one per input; a
        model with styles uses one style per input, sampled from the global generator."""
        ...


@runtime_checkable
class InstanceTranslator(Translator, Protocol):
    """Translates a scene and, apart, each object in given boxes (DUNIT)."""

    def translate_instances(self, x: Tensor, direction: Direction, boxes: Tensor, valid: Tensor) -> Tensor:
        """x translated as `translate` does, with its objects' boxes (B, M, 4) float (x1, y1, x2, y2) in
        pixels and which rows hold a box (B, M) bool (the batch format of `i2i.data.boxes`)."""
        ...


@runtime_checkable
class OneWayTranslator(Translator, Protocol):
    """Translates in the one direction it learned; `translate` refuses the other."""

    def trained_direction(self) -> Direction:
        """The direction `translate` accepts."""
        ...


def translation_directions(model: Translator) -> tuple[Direction, ...]:
    """The directions `model` translates: its one direction if it is a `OneWayTranslator`, else both."""
    return (model.trained_direction(),) if isinstance(model, OneWayTranslator) else DIRECTIONS


@runtime_checkable
class StyleTranslator(Translator, Protocol):
    """Translates with styles: sampled from the prior, or taken from a reference image."""

    def translate_styles(
        self, x: Tensor, direction: Direction, n_styles: int, style_seed: int | None = None
    ) -> Tensor:
        """(B, n_styles, 3, H, W): each input translated with `n_styles` styles sampled from the prior;
        with `style_seed`, the same reproducible styles for every input."""
        ...

    def translate_reference(self, x: Tensor, direction: Direction, reference: Tensor) -> Tensor:
        """x translated in the style of `reference`, target-domain images (1 for all, or one per input)."""
        ...


@runtime_checkable
class ReferenceTranslator(Protocol):
    """Translates each image into the domain (or attribute) a reference image shows: no direction."""

    device: torch.device

    def translate_like(self, x: Tensor, reference: Tensor) -> Tensor:
        """x translated towards `reference` (1 image for all, or one per input)."""
        ...


@runtime_checkable
class ExemplarMaskTranslator(ReferenceTranslator, Protocol):
    """Translates towards an exemplar where a mask says: predicted, or given by the user."""

    def translate_with_masks(
        self,
        x: Tensor,
        reference: Tensor,
        input_mask: Tensor | None = None,
        reference_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(translation, input mask, reference mask), the masks (B, 1, H, W) in [0, 1]; a given mask
        (1 = translate here) replaces the predicted one."""
        ...


@runtime_checkable
class FewShotTranslator(Protocol):
    """Translates to a class shown by K example images ("shots"): no direction."""

    device: torch.device

    def translate_to_class(self, x: Tensor, class_images: Tensor) -> Tensor:
        """x translated to the class of `class_images`: (K, 3, H, W) shared by the batch, or
        (B, K, 3, H, W) one class per input."""
        ...


@runtime_checkable
class Clusterer(Protocol):
    """Groups images into the domains it found without labels."""

    device: torch.device

    def cluster(self, x: Tensor) -> Tensor:
        """The cluster of each image, (B,) indices."""
        ...


@runtime_checkable
class WeightAveraged(Protocol):
    """Keeps moving averages of network weights, updated by `callbacks.ema.EMAUpdate`."""

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(average, live) module pairs."""
        ...


@runtime_checkable
class AttentionMaps(Protocol):
    """Shows where its generator attends."""

    def attention_maps(self, x: Tensor, direction: Direction) -> Tensor:
        """(B, 1, H, W) in [0, 1], one map per input at the input's size."""
        ...


@runtime_checkable
class SampleGrid(Protocol):
    """Shows what it does as the named rows of an image grid."""

    def sample_rows(self, images: dict[str, Tensor]) -> list[tuple[str, Tensor]]:
        """Named rows (B, 3, H, W) from the datamodule's `sample_inputs`."""
        ...
