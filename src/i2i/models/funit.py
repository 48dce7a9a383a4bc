"""FUNIT (Liu et al., ICCV 2019): few-shot unsupervised image-to-image translation.

A content image is translated to a class never seen in training, shown by K example images: a
content encoder keeps the layout, a class encoder maps each example to a class code, the K codes
are averaged, and an MLP turns the code into the AdaIN parameters of the decoder. A discriminator
with one output per training class (or a projection discriminator) judges images as their class.
The objective, the R1 penalty and the generator's weight average are in `models/fewshot.py`.

Two presets, both with every official value in YAML (research/nvidia.md §1.6-1.7):
- `model=funit` (default), the original `NVlabs/FUNIT` (configs/funit_animals.yaml): content
  encoder 3 down-samplings to 512 channels with IN, class encoder 4 down-samplings to a 64-d code,
  one MLP (64 -> 256 -> 256 -> 4096) feeding every AdaIN layer, decoder with IN up-sampling;
  `GPPatchMcResDis` (10 activation-first residual blocks, output channel picked by the label);
  hinge + R1 10, feature matching on the translation and the reconstruction; RMSprop 1e-4 with
  weight decay 1e-4, constant rate; kaiming init. Animal Faces, 119 classes: G 29,866,435 and
  D 54,252,599 weights.
- `model=funit_imaginaire`, imaginaire's "improved FUNIT" (configs/projects/funit/animal_faces):
  content encoder 4 down-samplings to 1024 with affine IN, class encoder 5, an MLP to a 256-d style
  that every AdaIN layer projects itself, residual up-sampling decoder; a spectral-norm projection
  discriminator (`ProjectionResDiscriminator`, 6 stages); no R1, no reconstruction feature
  matching; Adam (0, 0.999) 1e-4 halved every 100k iterations; PyTorch's default init. 119
  classes: G 120,987,203 and D 92,008,257 weights.
"""

from collections.abc import Callable
from typing import Any

from torch import nn

from i2i.models.fewshot import FewShotTranslationModule
from i2i.nets.fewshot import FewShotGenerator


class FUNIT(FewShotTranslationModule):
    """FUNIT; the networks come from config (`conf/model/funit.yaml`, `funit_imaginaire.yaml`).

    Args:
        content_encoder, class_encoder: factories of the two encoders.
        decoder: factory taking the content width (`in_channels=`).
        mlp: factory taking (class code width, the decoder's AdaIN input width).
        **fewshot: the discriminator, loss weights, init and spine options (`FewShotTranslationModule`).
    """

    def __init__(
        self,
        *,
        content_encoder: Callable[[], nn.Module],
        class_encoder: Callable[[], nn.Module],
        decoder: Callable[..., nn.Module],
        mlp: Callable[[int, int], nn.Module],
        **fewshot: Any,
    ) -> None:
        generator = FewShotGenerator.assemble(
            content_encoder=content_encoder, class_encoder=class_encoder, decoder=decoder, mlp=mlp
        )
        super().__init__(generator=generator, **fewshot)
