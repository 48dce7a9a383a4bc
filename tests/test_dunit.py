"""DUNIT: DRIT++ plus the instance branch. Without boxes it is exactly DRIT++; boxes from the batch or
from the detector reach the instance branches and the instance-consistency term; parameter counts;
translation with a boxes file; a tiny end-to-end run, checkpoint round trip, resume and DDP."""

import json

import pytest
import torch
from helpers.params import count
from hydra.utils import instantiate
from test_drit import TINY_COUNTS, assert_resume_continues_exactly, ddp_trained_ranks
from test_train import run_cli, write_pngs

from i2i import translate as translate_cli
from i2i.abilities import InstanceTranslator
from i2i.checkpoints import load_model
from i2i.errors import ConfigError
from i2i.models.dunit import DUNIT
from i2i.nets.instance import build_torchvision_detector
from i2i.train import build_model, train

SIZE = 64


def images(n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {d: torch.rand(n, 3, SIZE, SIZE, generator=generator) * 2 - 1 for d in ("A", "B")}


def with_boxes(batch: dict[str, torch.Tensor], valid_rows: int = 2) -> dict[str, torch.Tensor]:
    """`batch` with 3 box rows per image, the first `valid_rows` of them real: 12-16 px objects."""
    n = len(batch["A"])
    boxes = torch.tensor([[4.0, 6.0, 18.0, 20.0], [30.0, 28.0, 42.0, 44.0], [50.0, 2.0, 62.0, 14.0]])
    valid = torch.arange(3) < valid_rows
    for domain in ("A", "B"):
        batch[f"boxes_{domain}"] = boxes.expand(n, -1, -1).clone()
        batch[f"boxes_{domain}_valid"] = valid.expand(n, -1).clone()
    return batch


def seeded(build, *args):
    torch.manual_seed(0)
    return build(*args)


def test_dunit_is_an_instance_translator_with_drit_s_objective_and_weights(make_cfg):
    cfg = make_cfg("model=dunit", "data=shapes_instances")
    model = build_model(cfg)
    assert isinstance(model, InstanceTranslator) and model.boxes == "annotations" and model.detector is None
    drit_loss = make_cfg("model=drit").loss
    assert {k: v for k, v in cfg.loss.items() if k not in ("_target_", "instance_w")} == {
        k: v for k, v in drit_loss.items() if k != "_target_"
    }
    generator = {id(p) for p in model.optimizer_parameters()["generator"]}
    assert all(id(p) in generator for p in model.instance_branch.parameters())
    assert set(model.instance_branch) == {"A", "B"}  # one branch per target domain


@pytest.mark.parametrize("fusion", ["gated", "replace"])
def test_without_boxes_dunit_translates_exactly_as_drit_with_the_same_global_weights(make_cfg, fusion):
    """Built from the same seed, DUNIT's global networks are DRIT++'s (its instance branches are
    built after them); images whose box rows are all padding get bitwise DRIT++'s translations,
    reconstructions, references and objective."""
    drit = seeded(build_model, make_cfg("model=drit"))
    dunit = seeded(build_model, make_cfg("model=dunit", f"model.instance.fusion={fusion}"))
    global_state = drit.state_dict()
    assert all(torch.equal(value, dunit.state_dict()[key]) for key, value in global_state.items())
    batch = with_boxes(images(2), valid_rows=0)
    for name in ("discriminator_loss", "generator_loss", "random_attribute_loss"):
        expected, expected_logs = seeded(getattr(drit, name), batch, {})
        actual, logs = seeded(getattr(dunit, name), batch, {})
        assert torch.equal(actual, expected), name
        assert all(torch.equal(logs[k], v) for k, v in expected_logs.items())
        assert set(logs) - set(expected_logs) == ({"instance"} if name == "generator_loss" else set())
    assert seeded(dunit.generator_loss, batch, {})[1]["instance"] == 0
    drit.eval(), dunit.eval()
    x, boxes, valid = batch["A"], batch["boxes_A"], batch["boxes_A_valid"]
    for direction in ("AtoB", "BtoA"):
        expected = seeded(drit.translate, x, direction)
        assert torch.equal(seeded(dunit.translate_instances, x, direction, boxes, valid), expected)
        assert torch.equal(seeded(dunit.translate, x, direction), expected)
    styles = drit.translate_styles(x, "AtoB", 3, style_seed=1)
    assert torch.equal(dunit.translate_styles(x, "AtoB", 3, 1, (boxes, valid)), styles)
    reference = drit.translate_reference(x, "BtoA", batch["B"][:1])
    assert torch.equal(dunit.translate_reference(x, "BtoA", batch["B"][:1], (boxes, valid)), reference)
    rows = zip(drit.sample_rows(batch), dunit.sample_rows(batch), strict=True)
    assert all(name == other and torch.equal(row, expected) for (name, row), (other, expected) in rows)


def test_the_batch_s_boxes_reach_each_direction_s_instance_branch_and_the_loss(make_cfg):
    model = build_model(make_cfg("model=dunit", "data=shapes_instances"))
    batch = with_boxes(images(4))
    seen = {domain: [] for domain in ("A", "B")}
    for domain, branch in model.instance_branch.items():
        branch.register_forward_hook(lambda _, inputs, __, domain=domain: seen[domain].append(inputs[2:4]))
    total, logs = model.generator_loss(batch, {})
    encoded = slice(0, 2)  # the first half of the batch is encoded (DRIT's halves)
    # to B: A's content with A's boxes (u_b, recon_b's B boxes, the cross-cycle v_b with B's boxes)
    assert any(torch.equal(boxes, batch["boxes_A"][encoded]) for boxes, _ in seen["B"])
    assert all(len(boxes) in (2, 4) and valid.shape[1] == 3 for boxes, valid in seen["A"] + seen["B"])
    assert logs["instance"] > 0
    total.backward()
    translator = model.instance_branch["B"].translator
    assert translator.out.weight.grad is not None and translator.out.weight.grad.abs().sum() > 0
    moved = with_boxes(images(4))
    moved["boxes_A"][:, :, [0, 2]] += 8
    assert model.generator_loss(moved, {})[1]["instance"] != logs["instance"]


def test_param_counts_are_drit_s_plus_two_instance_branches(make_cfg):
    """Each instance branch (content channels C, attribute A = 8, width W, n = 2 blocks) has
    9(C+A)W + W (encode) + n [9(W+A)W + W + 9W^2 + W] (blocks) + WC + C (out) + 9 * 2C + 1 (gate):
    203,777 at C = W = 64 (tiny) and 3,076,097 at C = W = 256 (paper), counted by hand from the
    layers of nets/instance.py; the rest is DRIT++'s official count (tests/test_drit.py)."""
    with torch.device("meta"):
        tiny = build_model(make_cfg("model=dunit", "preset=tiny", "data.image_size=64", fast=False))
        paper = build_model(make_cfg("model=dunit", "preset=paper", "data.image_size=216", fast=False))
    counts = {name: count(module) for name, module in tiny.named_children()}
    assert counts == TINY_COUNTS | {"instance_branch": 2 * 203_777}
    assert count(paper.instance_branch) == 2 * 3_076_097
    assert count(paper) == 65_039_315 + 2 * 3_076_097


@pytest.fixture
def detector_file(tmp_path):
    """A torchvision Faster R-CNN (the smallest of DETECTORS, 2 classes) with random weights, saved
    as a state dict: the file `boxes: detector` loads (nothing downloads)."""
    torch.manual_seed(0)
    arch = "fasterrcnn_mobilenet_v3_large_320_fpn"
    network = build_torchvision_detector(arch, num_classes=2, min_size=SIZE, max_size=SIZE)
    path = tmp_path / "detector.pth"
    torch.save(network.state_dict(), path)
    return [
        "model.boxes=detector",
        f"model.detector.arch={arch}",
        "model.detector.num_classes=2",
        f"model.detector.weights_path={path}",
        f"model.detector.min_size={SIZE}",
        f"model.detector.max_size={SIZE}",
        "model.detector.score_threshold=0.0",  # random weights: keep what it finds
        "model.detector.max_boxes=3",
    ]


def test_boxes_detector_finds_the_boxes_once_per_iteration_and_uses_its_box_head(make_cfg, detector_file):
    model = build_model(make_cfg("model=dunit", *detector_file))
    assert model.detector is not None and not any("detector" in key for key in model.state_dict())
    batch, carry = images(4), {}
    calls = []
    detect = model.detector.detect
    model.detector.detect = lambda x: calls.append(len(x)) or detect(x)
    _, logs = model.discriminator_loss(batch, carry)
    assert calls == [2, 2] and carry["boxes_A"].shape == (2, 3, 4) and carry["boxes_A_valid"].any()
    total, logs = model.generator_loss(batch, carry)  # the same iteration: no second detection
    assert calls == [2, 2] and torch.isfinite(total) and logs["instance"] > 0
    model.eval()
    found = model.detector.detect(batch["A"])
    torch.manual_seed(1)
    translated = model.translate(batch["A"], "AtoB")
    torch.manual_seed(1)
    assert torch.equal(translated, model.translate_instances(batch["A"], "AtoB", *found))


def test_a_missing_detector_file_is_one_line_naming_the_key(make_cfg, detector_file, tmp_path):
    missing = [o for o in detector_file if "weights_path" not in o]
    with pytest.raises(ConfigError, match="model.detector.weights_path=.*no such file"):
        build_model(make_cfg("model=dunit", *missing, f"model.detector.weights_path={tmp_path / 'no.pth'}"))
    with pytest.raises(ConfigError, match="model.boxes='boxes'"):
        build_model(make_cfg("model=dunit", "model.boxes=boxes"))


def test_dunit_on_data_without_boxes_is_refused_naming_the_key(make_cfg):
    with pytest.raises(
        ConfigError, match="model.boxes='annotations' .* no object boxes: use data=shapes_inst"
    ):
        train(make_cfg("model=dunit", "data=shapes_color", "trainer.max_steps=1"))


@pytest.mark.slow
def test_tiny_end_to_end_run_checkpoint_round_trip_and_translation_with_a_boxes_file(
    make_cfg, tmp_path, monkeypatch, capsys
):
    cfg = make_cfg("model=dunit", "data=shapes_instances", "data.batch_size=2", "trainer.max_steps=6")
    metrics, objects = train(cfg)
    trained = objects["model"].eval()
    assert trained.iteration == 6
    assert {"instance_acc_AtoB", "instance_iou_BtoA", "domain_acc_AtoB"} <= set(metrics)
    log = (tmp_path / "csv" / "metrics.csv").read_text()
    assert "train/g_instance" in log and "train/g_cross_cycle" in log
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    loaded, _ = load_model(checkpoint)
    assert isinstance(loaded, DUNIT) and loaded.iteration == 6
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in loaded.state_dict().items())
    datamodule = instantiate(cfg.data, _convert_="all")
    x, boxes, valid = datamodule.test_boxed_images("A", 2)
    torch.manual_seed(3)
    expected = trained.translate_instances(x, "AtoB", boxes, valid)
    torch.manual_seed(3)
    torch.testing.assert_close(loaded.translate_instances(x, "AtoB", boxes, valid), expected)

    # i2i-translate: boxes from a COCO-style file, in pixels of the image files (here 2x the model's size)
    write_pngs(tmp_path / "in", 2, size=2 * SIZE)
    annotations = {
        "images": [{"id": 1, "file_name": "photo0.jpg", "width": 2 * SIZE, "height": 2 * SIZE}],
        "annotations": [{"image_id": 1, "bbox": [8, 8, 40, 30]}],
    }
    (tmp_path / "boxes.json").write_text(json.dumps(annotations))
    common = [f"ckpt_path={checkpoint}", f"input_dir={tmp_path / 'in'}", "direction=AtoB"]
    given = [f"boxes={tmp_path / 'boxes.json'}", "device=cpu"]
    seen = []
    translate_instances = DUNIT.translate_instances
    monkeypatch.setattr(
        DUNIT, "translate_instances", lambda self, *a: seen.append(a[2:]) or translate_instances(self, *a)
    )
    run_cli(translate_cli.main, monkeypatch, *common, f"output_dir={tmp_path / 'out'}", *given)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo0.png", "photo1.png"]
    ((boxes, valid),) = seen  # one batch; photo1 is not listed: no objects
    torch.testing.assert_close(boxes[0, 0], torch.tensor([4.0, 4.0, 24.0, 19.0]))  # scaled by 1/2
    assert valid.tolist() == [[True], [False]]
    assert "note: no boxes" not in capsys.readouterr().err
    run_cli(translate_cli.main, monkeypatch, *common, f"output_dir={tmp_path / 'global'}")
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "boxes=<COCO JSON>" in notes[0]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            translate_cli.main, monkeypatch, *common, f"output_dir={tmp_path / 'k'}", *given, "n_styles=2"
        )
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: n_styles=2 is not allowed: with boxes")
    annotations["images"][0]["width"] = SIZE
    (tmp_path / "boxes.json").write_text(json.dumps(annotations))
    for output, message in (("k", "photo0.jpg gives its size as 64x128, but"), ("m", "boxes file not found")):
        if output == "m":
            (tmp_path / "boxes.json").unlink()
        with pytest.raises(SystemExit) as exit_info:
            run_cli(translate_cli.main, monkeypatch, *common, f"output_dir={tmp_path / output}", *given)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and err.startswith("error: ") and message in err and "\n" not in err


def test_a_model_without_instances_refuses_a_boxes_file(make_cfg, tmp_path, monkeypatch, capsys):
    train(make_cfg("model=cyclegan", "trainer.max_steps=1", "~callbacks.synthetic_metrics"))
    write_pngs(tmp_path / "in", 1)
    arguments = [
        f"ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}",
        f"input_dir={tmp_path / 'in'}",
        f"output_dir={tmp_path / 'out'}",
        f"boxes={tmp_path / 'boxes.json'}",
    ]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(translate_cli.main, monkeypatch, *arguments)
    assert exit_info.value.code == 2
    # the last line: a logging handler of an earlier test in this process may have written before it
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: boxes=") and "CycleGAN translates no object instances" in err


@pytest.mark.slow
def test_resume_continues_exactly(make_cfg, tmp_path):
    """Stopped after iteration 4, resumed to 6: the weights of a straight run (the instance branches'
    too), so the counter, the draws and the boxes of the batches are restored."""
    assert_resume_continues_exactly(make_cfg, tmp_path, "model=dunit", "data=shapes_instances")


@pytest.mark.slow
def test_two_ddp_processes_on_cpu_train_dunit_in_step(tmp_path):
    """Each rank translates its own images and boxes; averaged gradients keep the ranks' weights, the
    instance branches' included, equal."""
    ranks = ddp_trained_ranks(tmp_path, "model=dunit", "data=shapes_instances")
    assert any(key.startswith("instance_branch.") for key in ranks[0]["state_dict"])


def test_the_bars_of_dunit_and_of_drit_on_its_data():
    from bench.quality import BARS, check

    metrics = {"domain_acc_AtoB": 0.95, "instance_acc_AtoB": 0.7, "instance_iou_AtoB": 0.85}
    metrics |= {"instance_acc_small_AtoB": 0.1}  # by size: reported, not barred
    assert check(metrics, BARS["dunit"]) == {
        "domain_acc_AtoB": True,
        "instance_acc_AtoB": False,
        "instance_iou_AtoB": True,
    }
    assert check(metrics, BARS["drit_instances"]) == {"domain_acc_AtoB": True, "instance_iou_AtoB": True}
    assert check(metrics, BARS["drit"]) == check(metrics, BARS["drit_instances"])  # as DUNIT's baseline
