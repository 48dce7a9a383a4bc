"""Object boxes in the data: the shapes_instances scenario and its metrics, boxes in batches, COCO-style
boxes for image folders (transformed with their images), and the export of boxes."""

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config
from hydra.utils import instantiate
from PIL import Image

from i2i.callbacks.metrics import score_scenario
from i2i.data.boxes import pad_boxes
from i2i.data.download import main as data_main
from i2i.data.folder import BoxedFolderSource, UnpairedFolders
from i2i.data.synthetic.instances import LOOKS, ShapesInstances, paint
from i2i.data.synthetic.shapes import rng_for
from i2i.errors import ConfigError, DataError
from i2i.train import train


# ---------------------------------------------------------------------- the scenario
def test_shapes_instances_are_deterministic_from_seed_split_domain_and_index():
    first, again = ShapesInstances(seed=3), ShapesInstances(seed=3)
    assert torch.equal(first.image("A", "train", 5), again.image("A", "train", 5))
    assert torch.equal(first.boxes("B", "test", 2), again.boxes("B", "test", 2))
    others = [
        first.image("A", "train", 6),
        first.image("A", "test", 5),
        first.image("B", "train", 5),
        ShapesInstances(seed=4).image("A", "train", 5),
    ]
    assert not any(torch.equal(first.image("A", "train", 5), other) for other in others)


@pytest.mark.parametrize("size", [64, 128])
def test_objects_are_several_small_apart_off_the_border_with_exact_boxes_and_masks(size):
    scenario = ShapesInstances(image_size=size)
    scale = size / 64
    counts, sides = set(), []
    for domain in scenario.domains:
        for index in range(80 * 64 // size):
            truth = scenario.sample(domain, "train", index)
            boxes = truth.boxes
            counts.add(len(boxes))
            sides += list(boxes[:, 2] - boxes[:, 0])
            assert np.allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])  # square boxes
            assert boxes.min() >= 3 * scale and boxes.max() <= size - 3 * scale
            for i, j in itertools.combinations(range(len(boxes)), 2):
                gap_x = max(boxes[i, 0] - boxes[j, 2], boxes[j, 0] - boxes[i, 2])
                gap_y = max(boxes[i, 1] - boxes[j, 3], boxes[j, 1] - boxes[i, 3])
                assert max(gap_x, gap_y) >= 4 * scale - 1e-9
            for box, mask in zip(boxes, truth.object_masks):
                ys, xs = np.nonzero(mask)  # the mask fills its box to within a pixel on every side
                assert xs.min() >= np.floor(box[0]) and xs.max() + 1 <= np.ceil(box[2])
                assert ys.min() >= np.floor(box[1]) and ys.max() + 1 <= np.ceil(box[3])
                assert xs.min() <= box[0] + 1 and xs.max() + 1 >= box[2] - 1
            assert (truth.ring_masks.sum((1, 2)) > 0).all() and (truth.core_masks.sum((1, 2)) > 0).all()
    assert counts == {2, 3, 4, 5}
    assert 8 * scale <= min(sides) < 9 * scale and 15 * scale < max(sides) <= 16 * scale


def test_a_draws_outlines_and_b_fills_the_objects_on_their_backgrounds():
    scenario = ShapesInstances()
    for domain in scenario.domains:
        look = LOOKS[domain]
        for index in range(10):
            truth = scenario.sample(domain, "test", index)
            image = torch.from_numpy(truth.image)
            core = image[torch.from_numpy(truth.core_masks).any(0)].mean(0)
            ring = image[torch.from_numpy(truth.ring_masks).any(0)].mean(0)
            background = image[~torch.from_numpy(truth.mask)].mean(0)
            inside = look.object_color if look.filled else look.background
            assert torch.dist(core, torch.tensor(inside)) < 0.1
            assert torch.dist(ring, torch.tensor(look.object_color)) < 0.15
            assert torch.dist(background, torch.tensor(look.background)) < 0.1


# ---------------------------------------------------------------------- the metrics
class Repainter:
    """Translates a test image by painting its ground-truth objects again in the look `look_of(source,
    target)` gives: the target's look is the perfect translation."""

    device = torch.device("cpu")

    def __init__(self, scenario: ShapesInstances, look_of) -> None:
        self.scenario, self.look_of = scenario, look_of
        self.painted_boxes: list[torch.Tensor] = []

    def translate(self, x, direction):
        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        return torch.stack([self._paint(self._index(image, source), source, target) for image in x])

    def _index(self, image, domain) -> int:
        return next(
            i
            for i in range(self.scenario.num_test)
            if torch.equal(self.scenario.image(domain, "test", i), image)
        )

    def _paint(self, index, source, target, instances=None):
        instances = self.scenario.sample(source, "test", index).instances if instances is None else instances
        look = self.look_of(source, target)
        painted = paint(rng_for(99, index), self.scenario.image_size, instances, look).image
        return torch.from_numpy(painted).permute(2, 0, 1) * 2 - 1


class Identity:
    device = torch.device("cpu")

    def translate(self, x, direction):
        return x


def perfect(source, target):
    return LOOKS[target]


def global_only(source, target):
    """The target's background, the source's objects."""
    return replace(LOOKS[source], background=LOOKS[target].background)


def colour_mapped(source, target):
    """Every colour mapped to the target's (light -> dark, blue -> orange), pixel by pixel: outlines stay
    outlines and filled objects stay filled."""
    return replace(
        LOOKS[source], background=LOOKS[target].background, object_color=LOOKS[target].object_color
    )


def erased(source, target):
    """The target's background and no object at all."""
    return replace(LOOKS[target], object_color=LOOKS[target].background)


SCORED = 12


@pytest.fixture(scope="module")
def scenario() -> ShapesInstances:
    return ShapesInstances(num_test=SCORED)


def metric(metrics: dict[str, float], name: str) -> list[float]:
    return [metrics[f"{name}_{direction}"] for direction in ("AtoB", "BtoA")]


def test_the_perfect_translation_scores_one(scenario):
    metrics = score_scenario(scenario, Repainter(scenario, perfect), SCORED)
    for name in ("domain_acc", "instance_acc", "instance_acc_small", "instance_acc_large"):
        assert metric(metrics, name) == [1.0, 1.0]
    for name in ("instance_iou", "instance_iou_small", "instance_iou_large"):
        assert min(metric(metrics, name)) > 0.95


def test_the_identity_scores_zero_on_domain_and_instances_and_keeps_the_objects(scenario):
    metrics = score_scenario(scenario, Identity(), SCORED)
    assert metric(metrics, "domain_acc") == [0.0, 0.0] and metric(metrics, "instance_acc") == [0.0, 0.0]
    assert min(metric(metrics, "instance_iou")) > 0.95


@pytest.mark.parametrize("translation", [global_only, colour_mapped])
def test_a_global_translation_takes_the_domain_but_no_instance(scenario, translation):
    metrics = score_scenario(scenario, Repainter(scenario, translation), SCORED)
    assert metric(metrics, "domain_acc") == [1.0, 1.0]
    for name in ("instance_acc", "instance_acc_small", "instance_acc_large"):
        assert metric(metrics, name) == [0.0, 0.0]
    assert min(metric(metrics, "instance_iou")) > 0.95  # the objects are kept, as outlines or filled


def flooded(source, target):
    """The whole image in the target's object colour: no object stands out from the background."""
    return replace(LOOKS[target], background=LOOKS[target].object_color)


def test_the_target_object_colour_everywhere_takes_no_instance(scenario):
    metrics = score_scenario(scenario, Repainter(scenario, flooded), SCORED)
    assert metric(metrics, "instance_acc") == [0.0, 0.0]


def test_objects_that_vanish_score_no_instance_and_no_iou(scenario):
    metrics = score_scenario(scenario, Repainter(scenario, erased), SCORED)
    assert metric(metrics, "domain_acc") == [1.0, 1.0] and metric(metrics, "instance_acc") == [0.0, 0.0]
    assert metric(metrics, "instance_iou") == [0.0, 0.0]


class LargeOnly(Repainter):
    """The perfect translation of the objects at least `scenario.small_side` wide; the small ones erased."""

    def _paint(self, index, source, target, instances=None):
        objects = self.scenario.sample(source, "test", index).instances
        return super()._paint(
            index, source, target, [o for o in objects if o.side >= self.scenario.small_side]
        )


def test_the_size_split_scores_small_and_large_objects_apart(scenario):
    metrics = score_scenario(scenario, LargeOnly(scenario, perfect), SCORED)
    assert metric(metrics, "instance_acc_large") == [1.0, 1.0]
    assert metric(metrics, "instance_acc_small") == [0.0, 0.0]
    sides = [o.side for i in range(SCORED) for o in scenario.sample("A", "test", i).instances]
    share_large = np.mean([side >= scenario.small_side for side in sides])
    assert metrics["instance_acc_AtoB"] == pytest.approx(share_large)
    assert 0 < share_large < 1 and scenario.small_side == 12  # the middle of the 8-16 px range at 64 px


class BoxPainter(Repainter):
    """An `InstanceTranslator` that draws perfect objects only where the boxes it is given say."""

    def translate(self, x, direction):
        raise AssertionError("an InstanceTranslator is scored with its boxes")

    def translate_instances(self, x, direction, boxes, valid):
        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        self.painted_boxes.append(boxes[valid])
        outputs = []
        for image, image_boxes, image_valid in zip(x, boxes, valid):
            index = self._index(image, source)
            objects = self.scenario.sample(source, "test", index).instances
            given = {tuple(box) for box in image_boxes[image_valid].tolist()}
            kept = [o for o in objects if tuple(torch.tensor(o.box, dtype=torch.float32).tolist()) in given]
            outputs.append(self._paint(index, source, target, kept))
        return torch.stack(outputs)


def test_an_instance_translator_is_scored_with_the_input_boxes(scenario):
    model = BoxPainter(scenario, perfect)
    metrics = score_scenario(scenario, model, SCORED)
    assert metric(metrics, "instance_acc") == [1.0, 1.0]
    expected = sum(len(scenario.sample("A", "test", i).instances) for i in range(SCORED))
    assert len(torch.cat(model.painted_boxes[: len(model.painted_boxes) // 2])) == expected


# ---------------------------------------------------------------------- boxes in batches
def datamodule(make_cfg, *overrides: str):
    data = instantiate(make_cfg("model=cyclegan", *overrides).data, _convert_="all")
    data.setup()
    return data


def test_batches_of_shapes_instances_carry_padded_boxes_of_their_images(make_cfg):
    data = datamodule(make_cfg, "data=shapes_instances", "data.batch_size=4", "data.domains.num_train=8")
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"A", "B", "boxes_A", "boxes_B", "boxes_A_valid", "boxes_B_valid"}
    assert batch["A"].shape == (4, 3, 32, 32)
    assert batch["boxes_A"].shape == (4, 5, 4) and batch["boxes_A"].dtype == torch.float32
    assert batch["boxes_B_valid"].shape == (4, 5) and batch["boxes_B_valid"].dtype == torch.bool
    scenario = data.scenario
    for name in ("A", "B"):
        for image, boxes, valid in zip(batch[name], batch[f"boxes_{name}"], batch[f"boxes_{name}_valid"]):
            index = next(i for i in range(8) if torch.equal(scenario.image(name, "train", i), image))
            truth = scenario.boxes(name, "train", index)
            assert valid.tolist() == [True] * len(truth) + [False] * (5 - len(truth))
            assert torch.equal(boxes[: len(truth)], truth) and not boxes[len(truth) :].any()
            assert boxes[valid].max() <= 32  # pixels of the 32 px image


def test_test_images_with_boxes_for_scoring_and_sample_grids(make_cfg):
    data = datamodule(make_cfg, "data=shapes_instances")
    images, boxes, valid = data.test_boxed_images("B", 3)
    assert torch.equal(images, data.test_images("B", 3))
    assert boxes.shape == (3, 5, 4) and valid.shape == (3, 5)
    assert torch.equal(boxes[1][valid[1]], data.scenario.boxes("B", "test", 1))
    inputs = data.sample_inputs(2)
    assert set(inputs) == {"A", "B", "boxes_A", "boxes_B", "boxes_A_valid", "boxes_B_valid"}
    assert torch.equal(inputs["boxes_A"], data.test_boxed_images("A", 2)[1])


def test_data_without_boxes_adds_no_box_keys(make_cfg):
    data = datamodule(make_cfg, "data=shapes_color")
    assert set(next(iter(data.train_dataloader()))) == {"A", "B"} and set(data.sample_inputs(1)) == {"A", "B"}
    with pytest.raises(DataError, match="this data has no object boxes"):
        data.test_boxed_images("A", 1)


def test_max_instances_must_hold_every_image_s_objects(make_cfg):
    with pytest.raises(ConfigError, match=r"data.max_instances=4 .* >= data.domains.max_objects=5"):
        datamodule(make_cfg, "data=shapes_instances", "data.max_instances=4")
    with pytest.raises(ConfigError, match="data.max_instances=None .* this data has object boxes"):
        datamodule(make_cfg, "data=shapes_instances", "data.max_instances=null")


@pytest.mark.parametrize("model", ["cyclegan", "munit"])
def test_models_that_ignore_boxes_train_and_are_scored_on_shapes_instances(make_cfg, tmp_path, model):
    cfg = make_cfg(f"model={model}", "data=shapes_instances", "trainer.max_steps=2", "data.batch_size=2")
    metrics, _ = train(cfg)
    report = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())["metrics"]
    assert {"domain_acc_AtoB", "instance_acc_BtoA", "instance_iou_AtoB"} <= set(report)
    assert all(0 <= value <= 1 for value in report.values())


# ---------------------------------------------------------------------- boxes of image folders
def write_scene(path: Path, size: tuple[int, int], rectangle: tuple[int, int, int, int]) -> None:
    """A black image (width, height) with one white rectangle (x1, y1, x2, y2), pixels x1..x2-1."""
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    x1, y1, x2, y2 = rectangle
    pixels[y1:y2, x1:x2] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_coco(path: Path, images: list[dict], annotations: list[dict]) -> None:
    path.write_text(json.dumps({"images": images, "annotations": annotations}))


def coco_of(folder: Path, boxes: dict[str, list[list[float]]], size: tuple[int, int]) -> None:
    """`<folder>.json` giving each named image of `folder` its boxes [x, y, w, h]."""
    images = [
        {"id": i, "file_name": name, "width": size[0], "height": size[1]} for i, name in enumerate(boxes)
    ]
    annotations = [{"image_id": i, "bbox": bbox} for i, name in enumerate(boxes) for bbox in boxes[name]]
    write_coco(folder.with_suffix(".json"), images, annotations)


@pytest.mark.parametrize("resize", ["square", "shorter_side"])
def test_a_box_follows_its_object_through_resize_crop_and_flip(tmp_path, resize):
    folder = tmp_path / "trainA"
    rectangle = (10, 20, 34, 36)  # in a 80 x 60 image
    write_scene(folder / "0.png", (80, 60), rectangle)
    x1, y1, x2, y2 = rectangle
    coco_of(folder, {"0.png": [[x1, y1, x2 - x1, y2 - y1]]}, (80, 60))
    source = BoxedFolderSource(
        folder, annotations=folder.with_suffix(".json"), load_size=48, crop_size=40, train=True, resize=resize
    )
    sides, crops = set(), set()
    for seed in range(12):
        image, boxes = source.load_boxed(0, seed)
        assert torch.equal(image, source.load(0, seed))  # the same crop and flip as without boxes
        bright = (image.mean(0) > 0).nonzero()
        if len(boxes) == 0:  # cropped away: no more than a pixel of it can be left
            assert len(bright) == 0 or (bright.max(0).values - bright.min(0).values < 2).any()
            continue
        (bx1, by1, bx2, by2) = boxes[0].tolist()
        ys, xs = bright[:, 0].float() + 0.5, bright[:, 1].float() + 0.5  # pixel centres
        # the transformed rectangle is covered by the transformed box (bicubic blurs one pixel out)
        assert bx1 - 1 <= xs.min() and xs.max() <= bx2 + 1 and by1 - 1 <= ys.min() and ys.max() <= by2 + 1
        assert xs.min() <= bx1 + 1 and xs.max() >= bx2 - 1 and ys.min() <= by1 + 1 and ys.max() >= by2 - 1
        sides.add((bx1 + bx2) / 2 > 20)  # the object is in the left half of the image unless flipped
        crops.add(tuple(round(v) for v in boxes[0].tolist()))
    assert len(crops) > 3  # the crops moved the box around
    if resize == "square":  # (with the shorter side resized, the crop alone can move it to the right)
        assert sides == {False, True}


def test_a_cut_box_is_clipped_and_a_box_cropped_away_is_dropped(tmp_path):
    folder = tmp_path / "testA"
    write_scene(folder / "0.png", (40, 40), (0, 0, 2, 2))
    coco_of(folder, {"0.png": [[0, 0, 2, 2], [2, 10, 30, 6], [0, 30, 1, 10]]}, (40, 40))
    source = BoxedFolderSource(
        folder, annotations=folder.with_suffix(".json"), load_size=40, crop_size=32, train=False
    )
    _, boxes = source.load_boxed(0, seed=0)  # the centre crop: x and y from 4 to 36
    assert boxes.tolist() == [[0.0, 6.0, 28.0, 12.0]]  # the first and the last box fall outside


def test_images_the_annotations_do_not_list_have_no_boxes(tmp_path):
    folder = tmp_path / "testA"
    for name in ("0.png", "1.png"):
        write_scene(folder / name, (32, 32), (4, 4, 8, 8))
    coco_of(folder, {"1.png": [[4, 4, 4, 4]]}, (32, 32))
    source = BoxedFolderSource(
        folder, annotations=folder.with_suffix(".json"), load_size=32, crop_size=32, train=False
    )
    assert len(source.load_boxed(0, 0)[1]) == 0 and source.load_boxed(1, 0)[1].tolist() == [[4, 4, 8, 8]]


def folder_with_boxes(root: Path, annotation: dict | None = None) -> Path:
    """A CycleGAN-layout folder of 40 px images (0.png, 1.png), each folder's JSON giving 0.png one box."""
    for split in ("trainA", "trainB", "testA", "testB"):
        for name in ("0.png", "1.png"):
            write_scene(root / split / name, (40, 40), (5, 5, 15, 15))
        coco_of(root / split, {"0.png": [[5, 5, 10, 10]], "1.png": []}, (40, 40))
    return root


BAD_ANNOTATIONS = {
    "missing": (None, r"missing box annotations .*trainA\.json .* data\.domains\.boxes=false"),
    "malformed": (b'{"images": [', r"cannot read .*trainA\.json: not JSON"),
    "not-coco": (b'{"pictures": []}', r"trainA\.json: expected a COCO-style object with the lists 'images'"),
    "image-without-size": (
        {"images": [{"id": 0, "file_name": "0.png"}], "annotations": []},
        r"trainA\.json: images\[0\] \(0\.png\) needs 'width' and 'height'",
    ),
    "duplicate-id": (
        {"images": [{"id": 0, "file_name": n, "width": 40, "height": 40} for n in ("0.png", "1.png")]},
        r"trainA\.json: images\[1\] \(1\.png\) needs an 'id' no other image has, got 0",
    ),
    "unknown-image": (
        {"annotations": [{"image_id": 7, "bbox": [1, 1, 2, 2]}]},
        r"trainA\.json: annotations\[0\] names image_id 7, which no entry of 'images' has",
    ),
    "bbox-outside": (
        {"annotations": [{"image_id": 0, "bbox": [30, 30, 20, 5]}]},
        r"trainA\.json: annotations\[0\] \(image 0\.png\): bbox \[30, 30, 20, 5\] .* leaves the 40x40 image",
    ),
    "bbox-malformed": (
        {"annotations": [{"image_id": 0, "bbox": [1, 2, 3]}]},
        r"trainA\.json: annotations\[0\] \(image 0\.png\): 'bbox' must be \[x, y, width, height\]",
    ),
    "bbox-empty": (
        {"annotations": [{"image_id": 0, "bbox": [1, 2, 0, 3]}]},
        r"trainA\.json: annotations\[0\] \(image 0\.png\): bbox \[1, 2, 0, 3\] has no area",
    ),
    "wrong-size": (
        {"images": [{"id": 0, "file_name": "0.png", "width": 80, "height": 40}]},
        r"trainA\.json: the entry of 0\.png gives its size as 80x40, but .*0\.png is 40x40",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_bad_annotations_are_one_data_error_naming_the_file_and_the_entry(tmp_path, case):
    root = folder_with_boxes(tmp_path / "data")
    content, message = BAD_ANNOTATIONS[case]
    path = root / "trainA.json"
    if content is None:
        path.unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:  # a valid document with the case's part replaced
        document = {"images": [{"id": 0, "file_name": "0.png", "width": 40, "height": 40}], "annotations": []}
        path.write_text(json.dumps(document | content))
    folders = UnpairedFolders(root=str(root), load_size=40, crop_size=32, boxes=True)
    with pytest.raises(DataError, match=message) as raised:
        folders.source("A", "train")
    assert "\n" not in str(raised.value)


def test_more_boxes_than_max_instances_names_the_file_and_the_key(make_cfg, tmp_path):
    root = folder_with_boxes(tmp_path / "data")
    coco_of(root / "testB", {"1.png": [[1, 1, 2, 2]] * 3}, (40, 40))
    overrides = ["data=folder", f"data.domains.root={root}", "data.domains.boxes=true", "data.num_workers=0"]
    overrides += ["data.domains.load_size=40", "data.max_instances=2"]
    with pytest.raises(DataError, match=r"testB\.json: 1\.png has 3 boxes, more than data\.max_instances=2"):
        datamodule(make_cfg, *overrides)


def test_the_boxes_switch_takes_true_or_false_only(tmp_path):
    with pytest.raises(ConfigError, match="data.domains.boxes='yes' is not allowed: must be true or false"):
        UnpairedFolders(root=str(folder_with_boxes(tmp_path)), boxes="yes")


def test_folder_data_with_boxes_fills_batches_and_without_them_reads_no_json(make_cfg, tmp_path):
    root = folder_with_boxes(tmp_path / "data")
    overrides = [
        "data=folder",
        f"data.domains.root={root}",
        "data.num_workers=0",
        "data.domains.load_size=40",
    ]
    data = datamodule(make_cfg, *overrides, "data.domains.boxes=true", "data.batch_size=2")
    batch = next(iter(data.train_dataloader()))
    assert batch["boxes_A"].shape == (2, 16, 4) and batch["boxes_A_valid"].sum() == 1  # 0.png's one box
    (root / "trainA.json").unlink()
    assert set(next(iter(datamodule(make_cfg, *overrides).train_dataloader()))) == {"A", "B"}


# ---------------------------------------------------------------------- export
def test_exported_boxes_read_back_through_folder_data_with_boxes(make_cfg, tmp_path):
    out = tmp_path / "out"
    data_main(["export", "shapes_instances", str(out), "--num-test", "3", "--num-train", "2", "--seed", "4"])
    assert sorted(p.name for p in out.iterdir()) == [
        "testA", "testA.json", "testB", "testB.json", "trainA", "trainA.json", "trainB", "trainB.json"
    ]  # fmt: skip
    scenario = instantiate(compose_config(["data=shapes_instances", "seed=4"]).data.domains)
    folder = datamodule(
        make_cfg,
        "data=folder",
        f"data.domains.root={out}",
        "data.domains.boxes=true",
        "data.image_size=64",
        "data.domains.load_size=64",
        "data.num_workers=0",
    )
    for domain in ("A", "B"):
        images, boxes, valid = folder.test_boxed_images(domain, 3)
        for index in range(3):
            assert torch.equal(boxes[index][valid[index]], scenario.boxes(domain, "test", index))
        # the PNG holds the image to within the 8-bit rounding
        assert (images - scenario.images(domain, "test", 3)).abs().max() <= 1 / 255 + 1e-6
        train_source = folder.train_set.source_a if domain == "A" else folder.train_set.source_b
        for index in range(2):
            boxes = train_source.load_boxed(index, seed=index)[1]
            expected = scenario.boxes(domain, "train", index)
            flipped = torch.stack(
                [64 - expected[:, 2], expected[:, 1], 64 - expected[:, 0], expected[:, 3]], 1
            )
            assert torch.equal(boxes, expected) or torch.equal(boxes, flipped)  # the training flip


def test_pad_boxes_puts_the_boxes_first_and_zero_rows_after():
    boxes, valid = pad_boxes(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), 3)
    assert boxes.tolist() == [[1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 0, 0]] and valid.tolist() == [
        True,
        False,
        False,
    ]
    assert pad_boxes(torch.zeros(0, 4), 2)[1].tolist() == [False, False]
