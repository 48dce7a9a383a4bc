"""DUNIT (Bhattacharjee et al., CVPR 2020, "Detection-based Unsupervised Image-to-Image Translation"):
DRIT++ that also translates each object instance apart and fuses it into the scene before decoding.

The global branch is DRIT++ (`models/drit.py`, its networks from `nets/drit.py`): DUNIT is `DRIT` with
one change to its decoder and one loss term more, so it subclasses it (the one model file besides
COCO-FUNIT that imports another, DESIGN §2). Every decode of DRIT++'s objective and of its inference
(cross translations, self-reconstructions, cross-cycle, random attributes, styles, references, grids)
goes through `_decode`, which here runs the instance branch of the target domain first
(`nets/instance.InstanceBranch`, one per target domain; its design note lists the choices made):

    fused = instance_branch[target](E_c(x), z, boxes of x, valid, image size)
    y = G_target(fused, z)

Each decoded content map comes with the boxes of the image it encodes: x_a's for A's content and for
the content encoded back from x_a's translation (a translation keeps its source's geometry). With no
box in an image the fused map is the content map bit for bit, so DUNIT translates such an image
exactly as DRIT++ with the same global weights (tests/test_dunit.py).

The objective is DRIT++'s (same terms, same weights, same updates and schedule) plus the instance
consistency of `losses/instance.py` in the EG update, both directions, at the source's boxes:
    L_EG(DUNIT) = L_EG(DRIT++) + instance_w * [consistency(x_a -> u_b) + consistency(x_b -> u_a)]
- `boxes: annotations` (default): the boxes come with the batch (`data=shapes_instances`, or
  `data=folder data.domains.boxes=true`); the term is `roi_feature_consistency` of the content maps,
  E^c_A(x_a) against E^c_B(u_b) (DRIT's cross-cycle already encodes u_b: no extra pass), RoIAligned as
  the instance branch does. Neither side is detached (as DRIT's cross-cycle, which trains both). Both
  maps carry E^c's training noise (DRIT's Gaussian noise layer), so in training the term stays above 0.
- `boxes: detector`: a frozen Faster R-CNN (`nets/instance.Detector`, weights from a local file) finds
  the boxes of the encoded images at every update (no gradient; once per iteration and domain, shared
  by the updates through `carry`) and at test time; the term is `detection_consistency`, its RoI box
  head at the source's boxes on source and translation.
Its instance branches train with E^c and G (the "generator" optimizer, DRIT's Adam settings) and get
DRIT's init.

Choices the paper leaves open besides those of the instance branch (no code of DUNIT exists):
- The instance branch decodes in every generator pass, self-reconstruction and cross-cycle included,
  not only in the cross translation: the generator then always sees fused maps, at training as at test
  time.
- Inference without boxes (`translate`, `translate_styles`, `translate_reference` with none given, and
  `boxes: annotations`) is the global branch's translation; with `boxes: detector` the detector's boxes
  are used whenever none are given.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from i2i.errors import ConfigError, check_choice
from i2i.losses.instance import detection_consistency, roi_feature_consistency
from i2i.models.base import Carry, Logs
from i2i.models.drit import DRIT, Boxes, CrossTranslations, DRITLoss, boxes_of
from i2i.nets.drit import Domain
from i2i.nets.init import WeightInit
from i2i.nets.instance import Detector, InstanceBranch
from i2i.types import Batch, Direction

BOX_SOURCES = ("annotations", "detector")


@dataclass(frozen=True)
class DUNITLoss(DRITLoss):
    """DRIT++'s loss weights and the instance-consistency weight."""

    instance_w: float


class DUNIT(DRIT):
    """DUNIT; the networks come from config (`conf/model/dunit.yaml`).

    Args:
        instance: factory of one target domain's `InstanceBranch`, taking the content channels and the
            attribute size.
        boxes: where the boxes come from, "annotations" (the batch) or "detector".
        detector: factory of the `Detector`, built only for `boxes: detector`.
        init: the weight init of DRIT++'s networks, also applied to the instance branches.
        **drit: the networks, loss weights and options of DRIT++ (`DRIT`) and the spine's.
    """

    def __init__(
        self,
        *,
        instance: Callable[..., InstanceBranch],
        boxes: str,
        detector: Callable[[], Detector],
        loss: DUNITLoss,
        init: WeightInit,
        **drit: Any,
    ) -> None:
        super().__init__(loss=loss, init=init, **drit)
        check_choice("model.boxes", boxes, BOX_SOURCES)
        self.boxes = boxes
        self.instance_branch = nn.ModuleDict(
            {
                domain: instance(content_channels=self.E_c.out_channels, attribute_dim=self.attribute_dim)
                for domain in ("A", "B")
            }
        )
        init.apply(generators=(self.instance_branch,), discriminators=())
        # frozen and never saved: no module of the model (nets/instance.py, choice 8)
        self.detector = detector() if boxes == "detector" else None

    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        groups = super().optimizer_parameters()
        groups["generator"] += list(self.instance_branch.parameters())
        return groups

    def on_fit_start(self) -> None:
        super().on_fit_start()
        has_boxes = getattr(self.trainer.datamodule, "has_boxes", True)  # no datamodule: batches are given
        if self.boxes == "annotations" and not has_boxes:
            raise ConfigError(
                "model.boxes",
                self.boxes,
                "this data has no object boxes: use data=shapes_instances, data=folder with "
                "data.domains.boxes=true, or model.boxes=detector",
            )

    # ------------------------------------------------------------------ the boxes and the decoder
    def _boxes(self, batch: Batch, carry: Carry, domain: Domain, images: Tensor) -> Boxes:
        if self.detector is None:
            boxes, valid = boxes_of(batch, domain)
            return self._halves(boxes)[0], self._halves(valid)[0]
        if f"boxes_{domain}" not in carry:  # detected once per iteration, for every update
            carry[f"boxes_{domain}"], carry[f"boxes_{domain}_valid"] = self.detector.detect(images)
        return boxes_of(carry, domain)

    def _decode(self, content: Tensor, code: Tensor, domain: Domain, boxes: Boxes) -> Tensor:
        """G_domain of the content map with the instances in `boxes` fused in by the instance branch
        translating to `domain`; without boxes, DRIT++'s decoder."""
        if boxes is not None:
            image_size = tuple(side * self.E_c.downsampling_factor for side in content.shape[-2:])
            content = self.instance_branch[domain](content, code, *boxes, image_size)
        return self.G(content, code, domain)

    # ------------------------------------------------------------------ the objective
    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        t = self.cross_translations(batch, carry)
        total, logs = self.cross_objective(t)
        instance = self._instance_consistency(t)
        return total + self.weights.instance_w * instance, logs | {"instance": instance}

    def _instance_consistency(self, t: CrossTranslations) -> Tensor:
        """The instance-consistency term of both directions at the source's boxes (module docstring)."""
        assert t.boxes_a is not None and t.boxes_b is not None, "DUNIT decodes with boxes"
        if self.detector is not None:
            to_b = detection_consistency(self.detector, t.x_a, t.u_b, *t.boxes_a)
            return to_b + detection_consistency(self.detector, t.x_b, t.u_a, *t.boxes_b)
        branch, size = self.instance_branch["A"], tuple(t.x_a.shape[-2:])  # both branches RoIAlign alike
        roi = {"image_size": size, "output_size": branch.roi_size, "sampling_ratio": branch.sampling_ratio}
        to_b = roi_feature_consistency(t.c_a, t.c_a_cycle, *t.boxes_a, **roi)
        return to_b + roi_feature_consistency(t.c_b, t.c_b_cycle, *t.boxes_b, **roi)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def sample_rows(self, images: Mapping[str, Tensor]) -> list[tuple[str, Tensor]]:
        """DRIT++'s rows, every translation and reconstruction with the inputs' boxes (the detector's
        where they have none and the boxes come from a detector)."""
        images = dict(images)
        for domain in ("A", "B"):
            found = self._found(images[domain], boxes_of(images, domain))
            if found is not None:
                images[f"boxes_{domain}"], images[f"boxes_{domain}_valid"] = found
        return super().sample_rows(images)

    def _found(self, x: Tensor, boxes: Boxes) -> Boxes:
        """`boxes` when given, else the detector's boxes of x (`boxes: detector`), else none."""
        if boxes is None and self.detector is not None:
            return self.detector.detect(x)
        return boxes

    @torch.inference_mode()
    def translate_instances(self, x: Tensor, direction: Direction, boxes: Tensor, valid: Tensor) -> Tensor:
        """x translated with one attribute sampled from the prior per input, its objects' boxes (B, M, 4)
        in pixels, of which `valid` (B, M) are real, translated by the instance branch."""
        return self.translate_styles(x, direction, 1, boxes=(boxes, valid))[:, 0]

    @torch.inference_mode()
    def translate_styles(
        self,
        x: Tensor,
        direction: Direction,
        n_styles: int,
        style_seed: int | None = None,
        boxes: Boxes = None,
    ) -> Tensor:
        return super().translate_styles(x, direction, n_styles, style_seed, self._found(x, boxes))

    @torch.inference_mode()
    def translate_reference(
        self, x: Tensor, direction: Direction, reference: Tensor, boxes: Boxes = None
    ) -> Tensor:
        return super().translate_reference(x, direction, reference, self._found(x, boxes))
