"""COCO-FUNIT (Saito et al., ECCV 2020): few-shot translation with a content-conditioned style code.

FUNIT's class code alone carries whatever the example images show, pose and background included,
so translations can lose the content image's structure. COCO-FUNIT conditions the code on the
content being translated (imaginaire `generators/coco_funit.py`, research/nvidia.md §1.8):

    code = style_mlp([mean_k class(x_b), usb]) * content_mlp(GAP(content(x_a)))

then FUNIT's MLP and AdaIN decoder. `usb`, the universal style bias, is a learned (1, 1024)
constant; `content_mlp` (1024 -> 256 -> 64) and `style_mlp` (1088 -> 256 -> 64) have a ReLU after
every layer, so both factors are non-negative. Everything else is imaginaire's improved FUNIT, as
the official code reuses it: encoders, decoder, projection discriminator, the objective and the
trainer (`models/fewshot.py`), Adam (0, 0.999) 1e-4 halved every 100k iterations, weight average
0.999. COCO-FUNIT exists only in imaginaire, so its one preset is imaginaire's
(configs/projects/coco_funit/animal_faces/base64_bs8_class119.yaml): G 121,562,307 and
D 92,008,257 weights for 119 classes.
"""

from collections.abc import Callable
from typing import Any

from torch import nn

from i2i.models.fewshot import FewShotTranslationModule
from i2i.nets.fewshot import ContentConditionedStyle, FewShotGenerator


class COCOFUNIT(FewShotTranslationModule):
    """COCO-FUNIT; the networks come from config (`conf/model/coco_funit.yaml`).

    Args:
        content_encoder, class_encoder, decoder, mlp: as FUNIT's.
        content_mlp: factory taking (content width, class code width): GAP(content) -> a gate.
        style_mlp: factory taking (class code width + usb_dims, class code width).
        usb_dims: width of the universal style bias.
        **fewshot: the discriminator, loss weights, init and spine options (`FewShotTranslationModule`).
    """

    def __init__(
        self,
        *,
        content_encoder: Callable[[], nn.Module],
        class_encoder: Callable[[], nn.Module],
        decoder: Callable[..., nn.Module],
        mlp: Callable[[int, int], nn.Module],
        content_mlp: Callable[[int, int], nn.Module],
        style_mlp: Callable[[int, int], nn.Module],
        usb_dims: int,
        **fewshot: Any,
    ) -> None:
        def conditioning(content_channels: int, code_dim: int) -> ContentConditionedStyle:
            return ContentConditionedStyle(
                content_mlp=content_mlp(content_channels, code_dim),
                style_mlp=style_mlp(code_dim + usb_dims, code_dim),
                usb_dims=usb_dims,
            )

        generator = FewShotGenerator.assemble(
            content_encoder=content_encoder,
            class_encoder=class_encoder,
            decoder=decoder,
            mlp=mlp,
            style_conditioning=conditioning,
        )
        super().__init__(generator=generator, **fewshot)
