"""DUNIT's instance-consistency loss: the objects of a translation are the objects of its source.

The paper's term keeps the detections of the translation consistent with the source's. Detections
themselves are not differentiable (proposals, NMS, thresholds), so both forms below compare what is
computed at the SOURCE's boxes, in source and translation alike (the translation has the source's
geometry); each is exactly 0 where the translation equals the source, 0 for a batch without boxes,
and differentiable in the translation. Which form a model uses follows `boxes`:

- `boxes: detector` (`detection_consistency`): the frozen detector's RoI box head (backbone, RoI
  pooling, box head and predictor) at the source's boxes on the source (no gradient: the target) and
  on the translation. Loss = KL(p_source || p_translation) of the class distributions, plus the mean
  L1 between the two box-regression deltas of the class the source's head finds most likely among the
  objects (background excluded): the translation should be seen as the same object, in the same box.
- `boxes: annotations` (`roi_feature_consistency`): no detector, so the content encoder stands in for
  its features: the mean L1 between the RoIAligned content maps of source and translation at the
  source's boxes (`nets/instance.roi_features`), i.e. each object keeps its content code.

Both are means over the boxes; the loss weight (`instance_w`) is the model's.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from i2i.nets.instance import Detector, boxes_to_rois, feature_scale, roi_features


def roi_feature_consistency(
    source_features: Tensor,
    translation_features: Tensor,
    boxes: Tensor,
    valid: Tensor,
    image_size: tuple[int, int],
    output_size: int,
    sampling_ratio: int,
) -> Tensor:
    """Mean |RoIAlign(translation_features) - RoIAlign(source_features)| at the source's valid boxes
    (B, M, 4) in pixels of an image of `image_size`; content maps (B, C, h, w). 0 without boxes. The
    source's features carry their gradient unless the caller detaches them."""
    rois = boxes_to_rois(boxes, valid)
    if len(rois) == 0:
        return translation_features.new_zeros(())
    scale = feature_scale(image_size, tuple(translation_features.shape[-2:]))
    translated = roi_features(translation_features, rois, scale, output_size, sampling_ratio)
    return F.l1_loss(translated, roi_features(source_features, rois, scale, output_size, sampling_ratio))


def detection_consistency(
    detector: Detector, source: Tensor, translation: Tensor, boxes: Tensor, valid: Tensor
) -> Tensor:
    """KL(p_source || p_translation) of the detector's class distributions at the source's valid boxes,
    plus the mean L1 between their box deltas for the source's most likely object class; images in
    [-1, 1] of one size, boxes (B, M, 4) in their pixels. 0 without boxes."""
    if not bool(valid.any()):
        return translation.new_zeros(())
    with torch.no_grad():
        source_logits, source_deltas = detector.box_head(source, boxes, valid)
    logits, deltas = detector.box_head(translation, boxes, valid)
    classes = F.kl_div(
        logits.log_softmax(dim=1), source_logits.log_softmax(dim=1), reduction="batchmean", log_target=True
    )
    label = source_logits[:, 1:].argmax(dim=1) + 1  # class 0 is torchvision's background
    rows = torch.arange(len(label), device=label.device)
    return classes + F.l1_loss(deltas[rows, label], source_deltas[rows, label])
