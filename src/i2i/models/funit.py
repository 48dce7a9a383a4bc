"""FUNIT (Liu et al., ICCV 2019): few-shot unsupervised image-to-image translation.

A content image is translated to a class never seen in training, shown by K example images: a
content encoder keeps the layout, a class encoder maps each example to a class code, the K codes
are averaged, and an MLP turns the code into the AdaIN parameters of the decoder. A discriminator
with one output per training class (or a projection discriminator) judges images as their class.

x_a is a content image of class a, x_b the K images ("shots") of class b != a, c = content(x_a):

    x_t = G(c, mean_k class(x_b))     the translation        x_r = G(c, class(x_a))   the reconstruction
    L_D = gan_w * [hinge_real(D(x_b, b)) + hinge_fake(D(x_t, b))] + r1_w * R1
    L_G = gan_w * 0.5 * [-D(x_t, b) - D(x_r, a)] + recon_w * |x_r - x_a|_1
        + fm_class_w * |f(x_t) - f(x_b)|_1 + fm_recon_w * |f(x_r) - f(x_a)|_1

D(x, y) scores x as class y; f is the global average of D's trunk features (averaged over the K
shots). R1 = E_x ||d mean(D(x_b, b)) / d x_b||^2 on the real shots, the official `calc_grad2`
(NVlabs/FUNIT funit_model.py, hard-coded weight 10). The original sets every weight above
(gan 1, recon 0.1, fm 1 + 1, r1 10); imaginaire drops R1 and the reconstruction's feature matching.

The generator step decodes the translation and the reconstruction in one pass and lets D score
them in one pass (`i2i.nets.batching`: the generator's norms are per sample and D has no norm; with
imaginaire's spectral-norm D, one power iteration per pass). The D step keeps real and fake apart:
R1's double back-propagation would otherwise run through the fakes too.

The generator's weight average (FUNIT's `gen_test`, decay 0.999 after every generator step) is a
submodule, so checkpoints carry it and resume it exactly; `EMAUpdate` (callbacks.ema) updates it,
and translation, sample grids and metrics use it. imaginaire trains COCO-FUNIT with this same
objective (its `trainers/funit.py`): `models/coco_funit.py` subclasses FUNIT with its generator.

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

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import check_divisible
from i2i.losses.adversarial import AdversarialLoss
from i2i.losses.penalties import r1_penalty
from i2i.losses.weights import LossWeights
from i2i.models.base import Carry, Logs, TranslationModule
from i2i.nets.batching import in_one_pass
from i2i.nets.fewshot import FewShotGenerator
from i2i.nets.init import WeightInit
from i2i.types import Batch


@dataclass(frozen=True)
class FUNITLoss(LossWeights):
    """Loss weights of FUNIT and COCO-FUNIT (module docstring); a weight of 0 skips its term."""

    gan_mode: str
    gan_w: float
    recon_w: float
    fm_class_w: float
    fm_recon_w: float
    r1_w: float


class FUNIT(TranslationModule):
    """FUNIT; the networks come from config (`conf/model/funit.yaml`, `funit_imaginaire.yaml`).

    Batches (data kind "fewshot"): {"content": (B, 3, H, W), "content_label": (B,),
    "class_images": (B, K, 3, H, W), "class_label": (B,)}.

    Args:
        content_encoder, class_encoder: factories of the two encoders.
        decoder: factory taking the content width (`in_channels=`).
        mlp: factory taking (class code width, the decoder's AdaIN input width).
        discriminator: factory of the class-conditional discriminator.
        loss: the loss weights.
        image_size: the training image size, checked against the encoders and the discriminator.
        init: the initialisation of G and D (`i2i.nets.init.WeightInit`).
        style_conditioning: factory taking (content width, class code width) of a module that conditions
            the class code on the content before the MLP; None for FUNIT (COCO-FUNIT supplies one).
        **spine: the options of `TranslationModule`.
    """

    data_kind = "fewshot"

    def __init__(
        self,
        *,
        content_encoder: Callable[[], nn.Module],
        class_encoder: Callable[[], nn.Module],
        decoder: Callable[..., nn.Module],
        mlp: Callable[[int, int], nn.Module],
        discriminator: Callable[[], nn.Module],
        loss: FUNITLoss,
        image_size: int,
        init: WeightInit,
        style_conditioning: Callable[[int, int], nn.Module] | None = None,
        **spine: Any,
    ) -> None:
        generator = FewShotGenerator.assemble(
            content_encoder=content_encoder,
            class_encoder=class_encoder,
            decoder=decoder,
            mlp=mlp,
            style_conditioning=style_conditioning,
        )
        super().__init__(**spine)
        self.weights = loss
        self.G = generator
        self.D = discriminator()
        init.apply(generators=(self.G,), discriminators=(self.D,))
        factor = self.G.content_encoder.downsampling_factor
        halvings = f"the content encoder halves it {factor.bit_length() - 1} times"
        check_divisible("data.image_size", image_size, factor, halvings)
        self.D.check_input_size(image_size)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.adv = AdversarialLoss(loss.gan_mode)

    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {"generator": list(self.G.parameters()), "discriminator": list(self.D.parameters())}

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.G_ema, self.G)]

    def discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        w = self.weights
        with torch.no_grad():
            translation = self.G(batch["content"], batch["class_images"])
        shots, shot_labels = _flat_shots(batch)
        real = shots.detach().requires_grad_(w.r1_w > 0)  # a new leaf: the batch is left untouched
        real_scores, _ = self.D(real, shot_labels)
        d_real = self.adv.d_real(real_scores)
        d_fake = self.adv.d_fake(self.D(translation, batch["class_label"])[0])
        r1 = real_scores.new_zeros((), dtype=torch.float32)
        if w.r1_w > 0:
            r1 = r1_penalty(real_scores, real, score_reduction="mean")
        total = w.gan_w * (d_real + d_fake) + w.r1_w * r1
        return total, {"real": d_real, "fake": d_fake, "r1": r1}

    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        w = self.weights
        x_a, label_a, label_b = batch["content"], batch["content_label"], batch["class_label"]
        content = self.G.encode_content(x_a)
        code_b, code_a = self.G.class_code(batch["class_images"]), self.G.class_code(x_a[:, None])
        # joined passes: the decoder renders both images at once, D scores them at once
        translation, reconstruction = in_one_pass(self.G.decode, (content, code_b), (content, code_a))
        (score_t, features_t), (score_r, features_r) = in_one_pass(
            self.D, (translation, label_b), (reconstruction, label_a)
        )
        with torch.no_grad():  # the feature-matching targets
            shots, shot_labels = _flat_shots(batch)
            targets = [(shots, shot_labels)] + ([(x_a, label_a)] if w.fm_recon_w > 0 else [])
            features = [scored[1] for scored in in_one_pass(self.D, *targets)]
            features_b = features[0].view(len(x_a), -1, features_t.shape[1]).mean(dim=1)
            features_a = features[1] if w.fm_recon_w > 0 else None
        gan = 0.5 * (self.adv.g(score_t) + self.adv.g(score_r))
        recon = F.l1_loss(reconstruction.float(), x_a.float())
        fm_class = F.l1_loss(features_t.float(), features_b.float())
        fm_recon = recon.new_zeros(())
        if features_a is not None:
            fm_recon = F.l1_loss(features_r.float(), features_a.float())
        total = w.gan_w * gan + w.recon_w * recon + w.fm_class_w * fm_class + w.fm_recon_w * fm_recon
        return total, {"gan": gan, "recon": recon, "fm_class": fm_class, "fm_recon": fm_recon}

    @torch.inference_mode()
    def translate_to_class(self, x: Tensor, class_images: Tensor) -> Tensor:
        """Translate x (B, 3, H, W) to the class shown by `class_images`: shots (K, 3, H, W) shared by
        the batch, or (B, K, 3, H, W) one set per input; the class code is the mean of the K shots'
        codes. Uses the weight average. Few-shot translation has no direction."""
        if class_images.dim() == 4:
            code = self.G_ema.class_code(class_images[None]).expand(len(x), -1)
        elif class_images.dim() == 5 and len(class_images) == len(x):
            code = self.G_ema.class_code(class_images)
        else:
            shape = tuple(class_images.shape)
            raise ValueError(f"class_images must be (K, 3, H, W) or ({len(x)}, K, 3, H, W), got {shape}")
        return self.G_ema.decode(self.G_ema.encode_content(x), code)

    @torch.no_grad()
    def sample_rows(self, images: Mapping[str, Tensor]) -> list[tuple[str, Tensor]]:
        """Rows of a sample grid from evaluation episodes {"content", "class_images"}: the content
        images, the first shot of each target class, the translations, the reconstructions."""
        content, shots = images["content"], images["class_images"]
        return [
            ("content", content),
            ("class_example", shots[:, 0]),
            ("translation", self.translate_to_class(content, shots)),
            ("reconstruction", self.translate_to_class(content, content[:, None])),
        ]


def _flat_shots(batch: Batch) -> tuple[Tensor, Tensor]:
    """The batch's class images as (B * K, 3, H, W) and each one's label."""
    class_images = batch["class_images"]
    return class_images.flatten(0, 1), batch["class_label"].repeat_interleave(class_images.shape[1])
