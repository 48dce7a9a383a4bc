"""DUNIT's instance branch (Bhattacharjee et al., CVPR 2020, "Detection-based Unsupervised Image-to-Image
Translation"), as building blocks on plain tensors; `models/dunit.py` puts them around DRIT++'s networks.

No code of DUNIT exists (research/ugatit_others.md §4.4) and the paper's PDF is not at hand, so this
follows the paper's description as issue 28 and the abstract give it: the scene is translated globally
(DRIT's content encoder, attribute code and generator) and each object instance separately; the instance
representations are fused with the global one into one representation that the generator decodes;
an instance-consistency loss keeps the detections of the translation consistent with the source's; a
detector inside the model provides the instances at test time. The pipeline, one direction (A -> B):

    content = E_c(x)                                  (B, C, h, w): C = 256, h = H / 4 in DRIT
    rois = boxes_to_rois(boxes, valid)                (K, 5): the valid boxes of every image
    instances = roi_features(content, rois, ...)      (K, C, S, S): RoIAlign, S = roi_size
    instances = InstanceNetwork(instances, z)         z: the target attribute code of each box's image
    instance_map, covered = paste_instances(...)      instances resized back to their boxes
    fused = InstanceFusion(content, instance_map, covered)
    y = G(fused, z)                                   DRIT's generator, unchanged

`InstanceBranch` does the middle five lines. Every choice the description leaves open, and what is
chosen here:

1. Where the instance representation comes from: RoIAlign of the global content map, then a network of
   its own. The paper extracts "separate representations for the global image and for the instances";
   sharing the content encoder's layers costs no second encoder pass, and the instance branch then
   refines exactly the content the global decoder reads.
2. RoIAlign: `aligned=True` (a box's edges, in pixels, map to feature cell edges: cell i of a stride-4
   map spans pixels [4i, 4i + 4), so a box (x1, y1, x2, y2) with x2 exclusive, COCO's x + w, reads
   exactly its cells); output S x S (`roi_size`) with `sampling_ratio` points per bin and axis.
   `spatial_scale` is feature size / image size (torchvision's convention: 1/4 for DRIT's encoder).
3. Conditioning on the target attribute: concatenated per pixel (tiled) at the input of every block, as
   DRIT's default generator `G_concat` concatenates z to its content map and again before each of its
   up-sampling stages. It needs nothing from the global generator, so it serves either of DRIT's
   generators: both attribute encoders give an 8-d code, and the feature-wise one of `--concat 0`
   (an MLP to per-block codes) would tie the branch to that generator's layer widths. One code per
   image, shared by its instances: the image is translated to one target style.
4. The translator is residual (instances + f(instances, z)) with instance norm and reflection padding,
   DRIT's block kind: an instance keeps its content unless the network learns to change it, and at
   initialisation the pasted features stay close to the global ones.
5. Pasting: each translated instance is resized bilinearly (`grid_sample`, the inverse of the RoIAlign
   above) onto every feature cell its box overlaps, so a box smaller than a cell still writes one cell
   (DUNIT's point is small objects). Where boxes of one image overlap, their features are averaged:
   the result does not depend on the boxes' order, and every overlapping instance gets a gradient.
6. Fusion (`fusion`): "gated" (default), a learned weighted sum, global + g * (instance - global) with a
   per-cell gate g = sigmoid(conv3x3([global, instance])); or "replace", the instance features alone.
   A box is a rectangle and an object is not: the gate lets the background cells inside a box keep the
   global translation, which "replace" overwrites with the instance branch's output.
7. Outside the boxes the fused map IS the global map (`torch.where`, bit for bit), so an image without
   boxes is translated exactly by the global branch. The branch still runs on a batch without boxes
   (on zero instances), so its parameters are in every step's graph (DDP needs no unused-parameter
   search).
8. The detector (`boxes: detector`): a frozen torchvision Faster R-CNN, built with no weights and
   loaded from a local file; only the Faster R-CNN family, because the instance-consistency loss
   (`losses/instance.py`) applies its RoI box head at given boxes, which one-stage detectors lack. It is
   no `nn.Module` of the model: it is never trained and never enters a checkpoint (as the perceptual
   loss's VGG).
"""

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import detection
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import roi_align

from i2i.errors import ConfigError, check_choice, check_integer, check_number
from i2i.nets.blocks import ConvBlock

FUSIONS = ("gated", "replace")
# The config key of the detector's weights file, named by its one-line errors.
DETECTOR_WEIGHTS_KEY = "model.detector.weights_path"
# torchvision's Faster R-CNN builders, and the published COCO weights of each (named in the error for a
# missing file; nothing downloads them).
DETECTORS = {
    "fasterrcnn_resnet50_fpn": (
        detection.fasterrcnn_resnet50_fpn,
        detection.FasterRCNN_ResNet50_FPN_Weights.COCO_V1,
    ),
    "fasterrcnn_resnet50_fpn_v2": (
        detection.fasterrcnn_resnet50_fpn_v2,
        detection.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1,
    ),
    "fasterrcnn_mobilenet_v3_large_fpn": (
        detection.fasterrcnn_mobilenet_v3_large_fpn,
        detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1,
    ),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (
        detection.fasterrcnn_mobilenet_v3_large_320_fpn,
        detection.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1,
    ),
}
# A box narrower than this (in feature cells) is pasted as if it were this wide: no division by zero.
MIN_BOX_CELLS = 1e-3


def boxes_to_rois(boxes: Tensor, valid: Tensor) -> Tensor:
    """The (K, 5) rows (image index, x1, y1, x2, y2) that `torchvision.ops.roi_align` takes, one per
    valid box, image by image and in slot order; coordinates stay in image pixels.

    boxes: float (B, M, 4) (x1, y1, x2, y2) in pixels; valid: bool (B, M), False on padding rows.
    """
    image, slot = valid.nonzero(as_tuple=True)
    return torch.cat([image[:, None].to(boxes.dtype), boxes[image, slot]], dim=1)


def feature_scale(image_size: tuple[int, int], feature_size: tuple[int, int]) -> float:
    """RoIAlign's `spatial_scale`: feature-map size / image size, the same along both axes (1/4 for a
    64-pixel image and a 16-cell content map)."""
    scales = {features / pixels for features, pixels in zip(feature_size, image_size)}
    if len(scales) != 1:
        raise ValueError(f"a {feature_size} feature map has different strides along the axes of {image_size}")
    return scales.pop()


def roi_features(
    features: Tensor, rois: Tensor, spatial_scale: float, output_size: int, sampling_ratio: int
) -> Tensor:
    """(K, C, S, S): RoIAlign of `features` (B, C, h, w) at `rois` (K, 5) in image pixels, pixel-exact
    (`aligned=True`: a box edge at pixel x reads from feature coordinate x * spatial_scale)."""
    return roi_align(
        features,
        rois.to(features.dtype),
        output_size,
        spatial_scale=spatial_scale,
        sampling_ratio=sampling_ratio,
        aligned=True,
    )


def paste_instances(
    instances: Tensor, rois: Tensor, spatial_scale: float, feature_size: tuple[int, int], batch_size: int
) -> tuple[Tensor, Tensor]:
    """(instance map (B, C, h, w), covered (B, 1, h, w) bool): each instance (K, C, S, S) resized
    bilinearly to its box on the feature map (the inverse of `roi_features`) and written on every cell
    the box overlaps; cells of several boxes of one image get their mean, cells of none zero and
    covered False."""
    height, width = feature_size
    x1, y1, x2, y2 = (rois[:, 1:].float() * spatial_scale).unbind(1)  # cell i spans [i, i + 1)
    columns = torch.arange(width, device=rois.device, dtype=torch.float32)
    rows = torch.arange(height, device=rois.device, dtype=torch.float32)
    # grid_sample's coordinates of every cell centre: -1 and 1 at the box's edges (align_corners=False)
    u = 2 * (columns + 0.5 - x1[:, None]) / (x2 - x1).clamp(min=MIN_BOX_CELLS)[:, None] - 1
    v = 2 * (rows + 0.5 - y1[:, None]) / (y2 - y1).clamp(min=MIN_BOX_CELLS)[:, None] - 1
    grid = torch.stack(torch.broadcast_tensors(u[:, None, :], v[:, :, None]), dim=-1)  # (K, h, w, 2)
    pasted = F.grid_sample(
        instances, grid.to(instances.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )
    in_columns = (columns + 1 > x1[:, None]) & (columns < x2[:, None])  # (K, w): the box overlaps the cell
    in_rows = (rows + 1 > y1[:, None]) & (rows < y2[:, None])
    inside = (in_rows[:, :, None] & in_columns[:, None, :])[:, None].to(pasted.dtype)  # (K, 1, h, w)
    image = rois[:, 0].long()
    channels = instances.shape[1]
    total = pasted.new_zeros(batch_size, channels, height, width).index_add(0, image, pasted * inside)
    count = pasted.new_zeros(batch_size, 1, height, width).index_add(0, image, inside)
    return total / count.clamp(min=1), count > 0


def with_code(features: Tensor, code: Tensor) -> Tensor:
    """`features` (N, C, S, S) and `code` (N, A) tiled over every pixel, concatenated: (N, C + A, S, S)."""
    return torch.cat([features, code[:, :, None, None].expand(-1, -1, *features.shape[-2:])], dim=1)


class ConcatResidualBlock(nn.Module):
    """x + [conv3-IN-ReLU, conv3-IN]([x, tile(z)]): DRIT's INSResBlock with the attribute code
    concatenated at its input, as `G_concat` feeds z to every stage."""

    def __init__(self, channels: int, attribute_dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBlock(channels + attribute_dim, channels, 3, 1, 1, norm="in", pad_type="reflect"),
            ConvBlock(channels, channels, 3, 1, 1, norm="in", activation="none", pad_type="reflect"),
        )

    def forward(self, x: Tensor, code: Tensor) -> Tensor:
        return x + self.body(with_code(x, code))


class InstanceNetwork(nn.Module):
    """DUNIT's instance encoder/translator: RoI content features (K, C, S, S) and the target attribute
    code of each (K, A) -> translated instance features (K, C, S, S).

    A conv3-IN-ReLU from [x, tile(z)] to `channels`, `n_blocks` `ConcatResidualBlock`s, a 1x1 conv
    back to C, added to the input (module docstring, choices 3 and 4)."""

    def __init__(self, *, content_channels: int, attribute_dim: int, channels: int, n_blocks: int) -> None:
        super().__init__()
        self.encode = ConvBlock(
            content_channels + attribute_dim, channels, 3, 1, 1, norm="in", pad_type="reflect"
        )
        self.blocks = nn.ModuleList(ConcatResidualBlock(channels, attribute_dim) for _ in range(n_blocks))
        self.out = nn.Conv2d(channels, content_channels, 1)

    def forward(self, instances: Tensor, code: Tensor) -> Tensor:
        hidden = self.encode(with_code(instances, code))
        for block in self.blocks:
            hidden = block(hidden, code)
        return instances + self.out(hidden)


class InstanceFusion(nn.Module):
    """The global content map (B, C, h, w) with the instance map written on the covered cells (module
    docstring, choices 6 and 7): "gated" blends them with a learned per-cell gate, "replace" takes the
    instance features. Uncovered cells are the global map's, bit for bit."""

    def __init__(self, *, channels: int, kind: str) -> None:
        super().__init__()
        check_choice("fusion", kind, FUSIONS)
        self.gate = nn.Conv2d(2 * channels, 1, 3, padding=1) if kind == "gated" else None

    def forward(self, global_features: Tensor, instance_map: Tensor, covered: Tensor) -> Tensor:
        inside = instance_map
        if self.gate is not None:
            gate = torch.sigmoid(
                self.gate(torch.cat([global_features, instance_map.to(global_features.dtype)], 1))
            )
            inside = global_features + gate * (instance_map - global_features)
        return torch.where(covered, inside.to(global_features.dtype), global_features)


class InstanceBranch(nn.Module):
    """RoIAlign at the boxes, `InstanceNetwork`, `paste_instances` and `InstanceFusion`: the content
    map DUNIT's generator decodes, from DRIT's content map and attribute code and the boxes.

    roi_size: RoIAlign's output S (>= 2: the translator's reflection padding); sampling_ratio: RoIAlign
    points per bin and axis (>= 1); channels, n_blocks: the translator's width and depth; fusion: one
    of FUSIONS."""

    def __init__(
        self,
        *,
        content_channels: int,
        attribute_dim: int,
        channels: int,
        n_blocks: int,
        roi_size: int,
        sampling_ratio: int,
        fusion: str,
    ) -> None:
        super().__init__()
        check_integer("roi_size", roi_size, minimum=2)
        check_integer("sampling_ratio", sampling_ratio, minimum=1)
        self.roi_size = roi_size
        self.sampling_ratio = sampling_ratio
        self.translator = InstanceNetwork(
            content_channels=content_channels,
            attribute_dim=attribute_dim,
            channels=channels,
            n_blocks=n_blocks,
        )
        self.fusion = InstanceFusion(channels=content_channels, kind=fusion)

    def forward(
        self, content: Tensor, code: Tensor, boxes: Tensor, valid: Tensor, image_size: tuple[int, int]
    ) -> Tensor:
        """The fused map (B, C, h, w) from `content` (B, C, h, w), the target attribute `code` (B, A),
        `boxes` (B, M, 4) in pixels of an image of `image_size` (H, W) and `valid` (B, M)."""
        rois = boxes_to_rois(boxes, valid)
        feature_size = tuple(content.shape[-2:])
        scale = feature_scale(image_size, feature_size)
        instances = roi_features(content, rois, scale, self.roi_size, self.sampling_ratio)
        instances = self.translator(instances, code[rois[:, 0].long()])
        instance_map, covered = paste_instances(instances, rois, scale, feature_size, content.shape[0])
        return self.fusion(content, instance_map, covered)


def build_torchvision_detector(arch: str, *, num_classes: int, min_size: int, max_size: int) -> nn.Module:
    """torchvision's Faster R-CNN `arch` (a key of DETECTORS) with random weights: `weights=None` and
    `weights_backbone=None`, so nothing is downloaded (torchvision's default backbone weights would
    be). min_size, max_size: the detector's own resizing of its input (its short side to min_size)."""
    check_choice("model.detector.arch", arch, DETECTORS)
    builder, _ = DETECTORS[arch]
    return builder(
        weights=None, weights_backbone=None, num_classes=num_classes, min_size=min_size, max_size=max_size
    )


def load_detector(
    arch: str, *, num_classes: int, weights_path: str | None, min_size: int, max_size: int
) -> nn.Module:
    """`build_torchvision_detector`'s network with the state dict in the file `weights_path`, read with
    `weights_only=True` (nothing in it can run code) before anything is built; every problem (no path,
    no file, not a state dict, not this detector's) is one ConfigError line naming DETECTOR_WEIGHTS_KEY
    and the file wanted."""
    check_choice("model.detector.arch", arch, DETECTORS)
    wanted = f"a state dict of torchvision's {arch} with num_classes={num_classes}"
    published = f"torchvision's COCO one, num_classes=91, is {DETECTORS[arch][1].url}"
    if not weights_path:
        raise ConfigError(
            DETECTOR_WEIGHTS_KEY,
            weights_path,
            f"boxes=detector needs {wanted}: set {DETECTOR_WEIGHTS_KEY}=<that file> ({published})",
        )
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise ConfigError(
            DETECTOR_WEIGHTS_KEY, weights_path, f"no such file: put {wanted} there ({published})"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        why = f"not a readable PyTorch file ({type(error).__name__})"
        raise ConfigError(DETECTOR_WEIGHTS_KEY, str(path), why) from error
    if not isinstance(state, Mapping):
        raise ConfigError(DETECTOR_WEIGHTS_KEY, str(path), f"holds a {type(state).__name__}, not {wanted}")
    network = build_torchvision_detector(arch, num_classes=num_classes, min_size=min_size, max_size=max_size)
    try:
        loaded = network.load_state_dict(state, strict=False)
        problems = {"missing": loaded.missing_keys, "unexpected": loaded.unexpected_keys}
    except RuntimeError as error:  # tensors of another shape: num_classes or arch differ
        problems = {"unloadable": [line.strip() for line in str(error).splitlines()[1:] if line.strip()]}
    found = [f"{len(keys)} {kind} (first: {keys[0]})" for kind, keys in problems.items() if keys]
    if found:
        raise ConfigError(DETECTOR_WEIGHTS_KEY, str(path), f"not {wanted}: {'; '.join(found)}")
    return network


def detections_to_boxes(
    detections: list[dict[str, Tensor]], max_boxes: int, score_threshold: float
) -> tuple[Tensor, Tensor]:
    """torchvision's detections (per image a dict with `boxes` (N, 4) and `scores` (N,)) as the batch's
    box format: boxes (B, max_boxes, 4) and valid (B, max_boxes), the best-scoring detections at or
    above `score_threshold` first, zeros and False after them."""
    device = detections[0]["boxes"].device if detections else None
    boxes = torch.zeros(len(detections), max_boxes, 4, device=device)
    valid = torch.zeros(len(detections), max_boxes, dtype=torch.bool, device=device)
    for image, found in enumerate(detections):
        scores = found["scores"]
        kept = (scores >= score_threshold).nonzero(as_tuple=True)[0]
        kept = kept[scores[kept].argsort(descending=True)][:max_boxes]
        boxes[image, : len(kept)] = found["boxes"][kept].float()
        valid[image, : len(kept)] = True
    return boxes, valid


class Detector:
    """A frozen torchvision Faster R-CNN for `boxes: detector`, its weights read from the local file
    `weights_path` (`load_detector`); not an `nn.Module` of the model (module docstring,
    choice 8), so it moves to the device of the images it is given.

    `detect(images)` gives the batch's box format; `box_head(images, boxes, valid)` the RoI box head's
    outputs at given boxes, differentiable in the images (the instance-consistency loss). Images are in
    [-1, 1], as everywhere in i2i; the detector sees them in [0, 1] and normalises them itself."""

    def __init__(
        self,
        *,
        arch: str,
        num_classes: int,
        weights_path: str | None,
        min_size: int,
        max_size: int,
        score_threshold: float,
        max_boxes: int,
    ) -> None:
        check_integer("model.detector.num_classes", num_classes, minimum=2)  # background and one class
        check_number("model.detector.score_threshold", score_threshold)
        check_integer("model.detector.max_boxes", max_boxes, minimum=1)
        self.network = load_detector(
            arch, num_classes=num_classes, weights_path=weights_path, min_size=min_size, max_size=max_size
        )
        self.network.eval().requires_grad_(False)
        self.score_threshold = score_threshold
        self.max_boxes = max_boxes

    def _on(self, images: Tensor) -> nn.Module:
        return self.network.to(images.device)

    @torch.no_grad()
    def detect(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """boxes (B, max_boxes, 4) in pixels and valid (B, max_boxes) of the objects in `images`."""
        detections = self._on(images)(list((images.float() + 1) / 2))
        return detections_to_boxes(detections, self.max_boxes, self.score_threshold)

    def box_head(self, images: Tensor, boxes: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """(class logits (K, N), box deltas (K, N, 4)) of the RoI box head at the valid `boxes` (pixels
        of `images`), in `boxes_to_rois` order: the backbone, RoI pooling and box head, no proposals,
        no NMS, so the outputs are differentiable in `images`."""
        network = self._on(images)
        image_list, _ = network.transform(list((images + 1) / 2))
        features = network.backbone(image_list.tensors)
        size = list(images.shape[-2:])
        proposals = [
            resize_boxes(image_boxes[image_valid], size, list(resized))
            for image_boxes, image_valid, resized in zip(boxes, valid, image_list.image_sizes)
        ]
        heads = network.roi_heads
        pooled = heads.box_roi_pool(features, proposals, image_list.image_sizes)
        logits, deltas = heads.box_predictor(heads.box_head(pooled))
        return logits, deltas.view(len(logits), -1, 4)
