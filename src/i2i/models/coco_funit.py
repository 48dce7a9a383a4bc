"""COCO-FUNIT (Saito et al., ECCV 2020): few-shot translation with a content-conditioned style code.

FUNIT's class code alone carries whatever the example images show, pose and background included,
so translations can lose the content image's structure. COCO-FUNIT conditions the code on the
content being translated (imaginaire `generators/coco_funit.py`, research/nvidia.md §1.8):

    code = style_mlp([mean_k class(x_b), usb]) * content_mlp(GAP(content(x_a)))

then FUNIT's MLP and AdaIN decoder. `usb`, the universal style bias, is a learned (1, 1024)
constant; `content_mlp` (1024 -> 256 -> 64) and `style_mlp` (1088 -> 256 -> 64) have a ReLU after
every layer, so both factors are non-negative. Everything else is imaginaire's improved FUNIT, as
the official code reuses it: encoders, decoder, projection discriminator, the objective and the
trainer, Adam (0, 0.999) 1e-4 halved every 100k iterations, weight average 0.999. COCO-FUNIT
exists only in imaginaire, so its one preset is imaginaire's
(configs/projects/coco_funit/animal_faces/base64_bs8_class119.yaml): G 121,562,307 and
D 92,008,257 weights for 119 classes.

So COCOFUNIT is FUNIT (`models/funit.py`, the objective and the training) with this generator: the
one model file that imports another (DESIGN §2), as imaginaire's COCO-FUNIT reuses its FUNIT trainer.
"""

from collections.abc import Callable
from typing import Any

from torch import nn

from i2i.models.funit import FUNIT
from i2i.nets.fewshot import ContentConditionedStyle


class COCOFUNIT(FUNIT):
    """COCO-FUNIT; the networks come from config (`conf/model/coco_funit.yaml`).

    Args:
        content_mlp: factory taking (content width, class code width): GAP(content) -> a gate.
        style_mlp: factory taking (class code width + usb_dims, class code width).
        usb_dims: width of the universal style bias.
        **funit: the encoders, decoder, MLP, discriminator, loss weights, init and spine options (`FUNIT`).
    """

    def __init__(
        self,
        *,
        content_mlp: Callable[[int, int], nn.Module],
        style_mlp: Callable[[int, int], nn.Module],
        usb_dims: int,
        **funit: Any,
    ) -> None:
        def conditioning(content_channels: int, code_dim: int) -> ContentConditionedStyle:
            return ContentConditionedStyle(
                content_mlp=content_mlp(content_channels, code_dim),
                style_mlp=style_mlp(code_dim + usb_dims, code_dim),
                usb_dims=usb_dims,
            )

        super().__init__(style_conditioning=conditioning, **funit)
