"""DUNIT's instance branch (nets/instance.py) and instance-consistency loss (losses/instance.py): boxes to
RoIs, RoIAlign geometry, pasting and fusion (bitwise the global map without boxes), gradients, the
offline detector and its one-line errors, and the consistency terms."""

import socket
from pathlib import Path

import pytest
import torch
import torchvision.models._api as torchvision_weights

from i2i.errors import ConfigError
from i2i.losses.instance import detection_consistency, roi_feature_consistency
from i2i.nets import instance as instance_nets
from i2i.nets.instance import (
    DETECTOR_WEIGHTS_KEY,
    FUSIONS,
    Detector,
    InstanceBranch,
    boxes_to_rois,
    build_torchvision_detector,
    detections_to_boxes,
    feature_scale,
    paste_instances,
    roi_features,
)

IMAGE = (64, 64)
FEATURES = (16, 16)  # DRIT's content map of a 64-pixel image: stride 4
CONTENT, CODE = 8, 3
ARCH = "fasterrcnn_mobilenet_v3_large_320_fpn"  # the smallest torchvision Faster R-CNN
NUM_CLASSES = 3


def branch(fusion: str = "gated") -> InstanceBranch:
    torch.manual_seed(0)
    return InstanceBranch(
        content_channels=CONTENT,
        attribute_dim=CODE,
        channels=8,
        n_blocks=1,
        roi_size=4,
        sampling_ratio=2,
        fusion=fusion,
    )


def two_images_boxes() -> tuple[torch.Tensor, torch.Tensor]:
    """Image 0: two boxes (slot 1 padding); image 1: none."""
    boxes = torch.zeros(2, 3, 4)
    boxes[0, 0] = torch.tensor([8.0, 16.0, 24.0, 32.0])
    boxes[0, 2] = torch.tensor([40.0, 40.0, 52.0, 60.0])
    valid = torch.tensor([[True, False, True], [False, False, False]])
    return boxes, valid


def test_rois_keep_the_valid_boxes_with_their_image_index_in_pixels():
    boxes = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    valid = torch.tensor([[True, False, True], [False, True, False]])
    rois = boxes_to_rois(boxes, valid)
    expected = torch.stack(
        [torch.cat([torch.tensor([image]), boxes[image, slot]]) for image, slot in ((0, 0), (0, 2), (1, 1))]
    )
    assert torch.equal(rois, expected)
    assert boxes_to_rois(boxes, torch.zeros(2, 3, dtype=torch.bool)).shape == (0, 5)


def test_spatial_scale_is_feature_size_over_image_size():
    assert feature_scale(IMAGE, FEATURES) == 0.25
    assert feature_scale((216, 216), (54, 54)) == 0.25
    with pytest.raises(ValueError, match="strides"):
        feature_scale((64, 64), (16, 32))


def test_roi_align_reads_the_cells_of_the_box_in_the_right_image():
    columns = torch.arange(16.0).expand(16, 16)
    ramps = torch.stack([columns, columns.T])  # channel 0: a cell's column, channel 1: its row
    features = torch.stack([ramps, ramps + 100])
    # pixels x 8..24 and y 16..32 of image 1: feature columns 2..5 and rows 4..7
    rois = torch.tensor([[1.0, 8.0, 16.0, 24.0, 32.0]])
    read = roi_features(features, rois, feature_scale(IMAGE, FEATURES), output_size=4, sampling_ratio=2)
    assert torch.allclose(read[0, 0], 100 + torch.tensor([2.0, 3, 4, 5]).expand(4, 4))
    assert torch.allclose(read[0, 1], 100 + torch.tensor([4.0, 5, 6, 7])[:, None].expand(4, 4))


def test_pasting_puts_instances_back_on_the_cells_of_their_box():
    instances = torch.randn(1, CONTENT, 4, 4)
    rois = torch.tensor([[1.0, 8.0, 16.0, 24.0, 32.0]])  # feature columns 2..5, rows 4..7
    instance_map, covered = paste_instances(instances, rois, 0.25, FEATURES, batch_size=2)
    assert torch.allclose(instance_map[1, :, 4:8, 2:6], instances[0], atol=1e-6)
    expected_cover = torch.zeros(2, 1, *FEATURES, dtype=torch.bool)
    expected_cover[1, :, 4:8, 2:6] = True
    assert torch.equal(covered, expected_cover)
    assert not instance_map[~expected_cover.expand_as(instance_map)].any()


def test_overlapping_boxes_are_averaged_and_a_box_smaller_than_a_cell_writes_one():
    instances = torch.stack([torch.full((CONTENT, 4, 4), 1.0), torch.full((CONTENT, 4, 4), 3.0)])
    rois = torch.tensor([[0.0, 8.0, 8.0, 24.0, 24.0], [0.0, 8.0, 8.0, 24.0, 24.0]])
    instance_map, _ = paste_instances(instances, rois, 0.25, FEATURES, batch_size=1)
    assert torch.allclose(instance_map[0, :, 2:6, 2:6], torch.tensor(2.0))
    tiny = torch.tensor([[0.0, 41.0, 21.0, 42.0, 22.0]])  # 1 x 1 pixel inside feature cell (row 5, column 10)
    _, covered = paste_instances(instances[:1], tiny, 0.25, FEATURES, batch_size=1)
    assert covered.sum() == 1 and covered[0, 0, 5, 10]


@pytest.mark.parametrize("fusion", FUSIONS)
def test_an_image_without_boxes_gets_exactly_the_global_map(fusion):
    content, code = torch.randn(2, CONTENT, *FEATURES), torch.randn(2, CODE)
    boxes, valid = two_images_boxes()
    fused = branch(fusion)(content, code, boxes, valid, IMAGE)
    assert torch.equal(fused[1], content[1])  # image 1 has no box
    no_boxes = torch.zeros_like(valid)
    assert torch.equal(branch(fusion)(content, code, boxes, no_boxes, IMAGE), content)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_fusion_writes_only_inside_the_boxes(fusion):
    content, code = torch.randn(2, CONTENT, *FEATURES), torch.randn(2, CODE)
    boxes, valid = two_images_boxes()
    changed = (branch(fusion)(content, code, boxes, valid, IMAGE) != content).any(dim=1)
    inside = torch.zeros(2, *FEATURES, dtype=torch.bool)
    inside[0, 4:8, 2:6] = True  # box (8, 16, 24, 32)
    inside[0, 10:15, 10:13] = True  # box (40, 40, 52, 60): columns 10..12, rows 10..14
    assert torch.equal(changed, inside)


def test_each_instance_is_translated_with_the_code_of_its_own_image():
    content, code = torch.randn(2, CONTENT, *FEATURES), torch.randn(2, CODE)
    boxes = torch.tensor([[[8.0, 16.0, 24.0, 32.0]], [[8.0, 16.0, 24.0, 32.0]]])
    valid = torch.ones(2, 1, dtype=torch.bool)
    network = branch()
    fused = network(content, code, boxes, valid, IMAGE)
    other_code = torch.stack([torch.randn(CODE), code[1]])  # image 0's code changes, image 1's does not
    refused = network(content, other_code, boxes, valid, IMAGE)
    assert torch.equal(refused[1], fused[1])
    assert not torch.equal(refused[0], fused[0])


def test_gradients_reach_the_instance_network_from_existing_boxes_and_every_parameter_always_gets_one():
    content = torch.randn(2, CONTENT, *FEATURES, requires_grad=True)
    code = torch.randn(2, CODE, requires_grad=True)
    boxes, valid = two_images_boxes()
    network = branch()
    network(content, code, boxes, valid, IMAGE).square().sum().backward()
    for name, parameter in network.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert code.grad[0].abs().sum() > 0 and not code.grad[1].any()  # image 1 has no box
    network.zero_grad(set_to_none=True)
    network(content, code, boxes, torch.zeros_like(valid), IMAGE).square().sum().backward()
    # no box in the batch: every parameter is still in the graph (DDP), its gradient zero
    assert all(p.grad is not None and not p.grad.any() for p in network.translator.parameters())


def test_detections_become_the_padded_box_format_best_first():
    detections = [
        {
            "boxes": torch.arange(16, dtype=torch.float32).view(4, 4),
            "scores": torch.tensor([0.2, 0.9, 0.6, 0.95]),
        },
        {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0)},
    ]
    boxes, valid = detections_to_boxes(detections, max_boxes=3, score_threshold=0.5)
    assert torch.equal(valid, torch.tensor([[True, True, True], [False, False, False]]))
    assert torch.equal(boxes[0], detections[0]["boxes"][[3, 1, 2]])
    assert not boxes[1].any()
    boxes, valid = detections_to_boxes(detections, max_boxes=2, score_threshold=0.5)
    assert torch.equal(boxes[0], detections[0]["boxes"][[3, 1]]) and valid[0].all()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network and an empty torch hub cache: any download or connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("something tried to download or connect")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torchvision_weights, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def detector_file(offline: None, tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A state dict of the test detector, made by the same builder the model uses. Freshly initialised,
    its activations vanish with depth (batch norm in eval mode with unit statistics) and its outputs
    hardly depend on the image; so its batch-norm statistics are measured on random images and its
    predictor scaled to logits of order 1 first."""
    torch.manual_seed(1)
    network = build_torchvision_detector(ARCH, num_classes=NUM_CLASSES, min_size=64, max_size=64)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # the running statistics become the mean over the batches seen
    with torch.no_grad():
        network.backbone.train()(torch.rand(8, 3, *IMAGE))
        for parameter in network.roi_heads.box_predictor.parameters():
            parameter.mul_(0.01)
    state = network.state_dict()
    path = tmp_path / "detector.pth"
    torch.save(state, path)
    return path, state


def detector(path: Path | str | None, num_classes: int = NUM_CLASSES, size: int = 64) -> Detector:
    return Detector(
        arch=ARCH,
        num_classes=num_classes,
        weights_path=None if path is None else str(path),
        min_size=size,
        max_size=size,
        score_threshold=0.0,
        max_boxes=5,
    )


def test_detector_builds_offline_and_loads_the_file_frozen(detector_file):
    path, state = detector_file
    frozen = detector(path)
    loaded = frozen.network.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    assert not frozen.network.training
    assert not any(p.requires_grad for p in frozen.network.parameters())
    images = torch.rand(2, 3, *IMAGE) * 2 - 1
    boxes, valid = frozen.detect(images)
    assert boxes.shape == (2, 5, 4) and valid.any() and not valid.all()
    assert torch.equal(valid, valid.sort(dim=1, descending=True).values)  # detections first, padding after
    assert not boxes[~valid].any() and (boxes >= 0).all() and (boxes <= IMAGE[0]).all()
    frozen.score_threshold = 1.01
    boxes, valid = frozen.detect(images)
    assert not valid.any() and not boxes.any()


def test_a_file_in_the_published_format_loads(detector_file, tmp_path):
    """torchvision's published detectors were saved with frozen batch norm: no num_batches_tracked."""
    _, state = detector_file
    published = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert len(published) < len(state)
    torch.save(published, tmp_path / "published.pth")
    loaded = detector(tmp_path / "published.pth").network.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in published.items())


def test_a_missing_detector_file_is_one_line_naming_the_key_and_the_file(offline, tmp_path, monkeypatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the detector was built before its file was read")

    monkeypatch.setattr(instance_nets, "build_torchvision_detector", refuse)
    for path in (None, tmp_path / "absent.pth"):
        with pytest.raises(ConfigError) as error:
            detector(path)
        message = str(error.value)
        assert "\n" not in message and message.startswith(DETECTOR_WEIGHTS_KEY)
        assert ARCH in message and f"num_classes={NUM_CLASSES}" in message
        assert path is None or f"put a state dict of torchvision's {ARCH}" in message


def test_weights_of_another_detector_are_refused_in_one_line(detector_file):
    path, _ = detector_file
    with pytest.raises(
        ConfigError, match=f"not a state dict of torchvision's {ARCH} with num_classes=5"
    ) as error:
        detector(path, num_classes=5)
    assert "\n" not in str(error.value)


class Payload:
    """Pickled, it asks the loader to run code (write a file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def test_a_detector_file_that_would_run_code_is_refused_unrun(offline, tmp_path):
    marker, path = tmp_path / "ran", tmp_path / "detector.pth"
    torch.save(Payload(marker), path)
    with pytest.raises(ConfigError, match="not a readable PyTorch file"):
        detector(path)
    assert not marker.exists()


def test_roi_feature_consistency_compares_only_the_boxes_and_has_a_gradient():
    source = torch.randn(2, CONTENT, *FEATURES)
    boxes, valid = two_images_boxes()
    arguments = {"image_size": IMAGE, "output_size": 4, "sampling_ratio": 2}
    outside_changed = source.clone()
    outside_changed[:, :, :, 14:] += 1  # columns right of every box (the rightmost box ends at column 13)
    outside_changed[1] += 1  # image 1 has no box
    assert roi_feature_consistency(source, outside_changed, boxes, valid, **arguments) == 0
    translation = (source + 0.1 * torch.randn_like(source)).requires_grad_()
    loss = roi_feature_consistency(source, translation, boxes, valid, **arguments)
    assert loss > 0
    loss.backward()
    assert translation.grad[0, :, 4:8, 2:6].abs().sum() > 0
    assert roi_feature_consistency(source, translation, boxes, torch.zeros_like(valid), **arguments) == 0


def test_detection_consistency_is_zero_on_the_source_and_differentiable_in_the_translation(detector_file):
    path, _ = detector_file
    frozen = detector(path)
    torch.manual_seed(2)
    source = torch.rand(2, 3, *IMAGE) * 2 - 1
    boxes, valid = two_images_boxes()
    assert detection_consistency(frozen, source, source.clone().requires_grad_(), boxes, valid) == 0
    translation = (source + 0.2 * torch.randn_like(source)).requires_grad_()
    loss = detection_consistency(frozen, source, translation, boxes, valid)
    assert loss > 0
    loss.backward()
    assert torch.isfinite(translation.grad).all() and translation.grad[0].abs().sum() > 0
    assert detection_consistency(frozen, source, translation, boxes, torch.zeros_like(valid)) == 0


def test_the_box_head_sees_the_boxes_where_the_detector_resizes_the_image(detector_file):
    path, _ = detector_file
    torch.manual_seed(3)
    images = torch.rand(1, 3, *IMAGE) * 2 - 1
    boxes, valid = torch.tensor([[[8.0, 16.0, 24.0, 32.0]]]), torch.ones(1, 1, dtype=torch.bool)
    upsampling = detector(path, size=128)  # resizes the 64-pixel image to 128 itself
    doubled = torch.nn.functional.interpolate(images, size=128, mode="bilinear", align_corners=False)
    for got, expected in zip(
        upsampling.box_head(images, boxes, valid), upsampling.box_head(doubled, 2 * boxes, valid)
    ):
        assert torch.allclose(got, expected, rtol=1e-3, atol=1e-3)  # normalised after resizing here
