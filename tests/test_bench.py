"""The benchmark code paths at a trivial size, so they cannot rot (no timing is asserted)."""

import json
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch
from conftest import FAST, FAST_SHAPES
from hydra.utils import instantiate

from bench import official, official_quality, quality, speed
from bench.quality import ROOT, compose
from i2i.data.synthetic.color import ShapesColor
from i2i.train import build_model


@pytest.mark.slow
@pytest.mark.parametrize("model", speed.model_names())
def test_speed_case_runs_for_every_model(model):
    case = speed.Case(speed.SMOKE_SIZE, "fp32", warmup=1, iterations=2, block=1, profile=True)
    result = speed.run_case(model, case, smoke=True)
    assert len(result) > 5 and result["flops_per_iteration"] > 0
    assert result["lightning_median"] > 0 and result["plain_median"] > 0
    assert result["inference_inputs_per_s"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["channels_last", "bf16"])
def test_speed_variants_run(variant):
    case = speed.Case(32, variant, warmup=1, iterations=1, block=1)
    (result,) = speed.run_cases("cyclegan", [case], smoke=True)
    assert result["variant"] == variant and result["peak_rss_mib"] > 0
    assert "flops_per_iteration" not in result


def test_machine_reference_and_data_pipeline_and_table():
    machine = speed.conv_peak(repeats=1)
    assert machine["conv_peak_gflops_nchw"] > 0 and machine["conv_peak_gflops_channels_last"] > 0
    machine["data_images_per_s"] = speed.data_pipeline_rate(batches=2, num_workers=0)
    row = {
        "model": "m",
        "image_size": 32,
        "variant": "fp32",
        "iterations": 4,
        "overrides": ["x.y=1"],
        "lightning_median": 1.0,
        "lightning_min": 0.9,
        "plain_median": 0.95,
        "plain_min": 0.9,
        "overhead_median": 0.05,
        "flops_per_iteration": 2e9,
        "gflops_per_s": 2.0,
        "peak_rss_mib": 100.0,
        "inference_inputs_per_s": 3.0,
    }
    failed = {"model": "m", "image_size": 256, "variant": "compile", "iterations": 1, "error": "boom"}
    table = speed.markdown([row, failed], machine | {"device": "cpu"})
    assert (
        "| m (x.y=1) | 32 | fp32 | 4 | 1.000 (0.900) | 0.950 (0.900) | +5.0% | 2.0 |" in table
        and "| m | 256 | compile | 1 | failed: boom |" in table
    )
    assert "the fastest case here (m 32 px fp32) consumes 2.2 images/s" in table
    assert "bf16-mixed not timed: cpu has no native bf16" in table


def test_interleave_times_any_other_side():
    cfg = speed.compose_case("cyclegan", 32, smoke=True)
    calls = []
    interleave = speed.Interleave(1, 1, 2, lambda trainer, module, batch: calls.append(batch), "official")
    trainer = speed.timing_trainer(interleave, precision="32-true")
    trainer.fit(build_model(cfg), datamodule=instantiate(cfg.data, _convert_="all"))
    assert len(interleave.timing.lightning) == 2 and len(calls) == len(interleave.timing.other) == 2
    assert set(interleave.timing.summary()) == {
        "lightning_min",
        "lightning_median",
        "official_min",
        "official_median",
    }


def test_official_names_the_missing_checkout_and_the_fix(tmp_path, monkeypatch, capsys):
    (tmp_path / "trainer.py").write_text("")
    with pytest.raises(
        official.NotACheckout, match=r"not a checkout of NVlabs/MUNIT \(no networks.py\); clone"
    ):
        official.check_checkout("munit", tmp_path)
    monkeypatch.setattr(sys, "argv", ["official", "--model", "unit", "--official", str(tmp_path)])
    with pytest.raises(SystemExit):
        official.main()
    assert "is not a checkout of mingyuliutw/UNIT" in capsys.readouterr().err


def test_official_row():
    result = {
        "model": "ugatit",
        "variant": "light",
        "image_size": 128,
        "lightning_median": 2.0,
        "lightning_min": 1.9,
        "official_median": 4.0,
        "official_min": 3.9,
        "speedup_median": 2.0,
        "speedup_min": 2.05,
        "ours_trained_parameters": 10,
        "official_trained_parameters": 10,
    }
    row = official.markdown_row(result)
    assert row == "| ugatit (light) | 128 | 2.000 (1.900) | 4.000 (3.900) | 2.00x (2.05x) | 10 / 10 (same) |"


def test_full_plan_measures_every_model_at_both_sizes():
    for model in speed.model_names():
        small, *paper = speed.cases(model, smoke=False, compiled=["munit"], bf16=False)
        assert small[0].variant == "fp32" and small[0].profile and small[0].iterations >= 4
        paper = paper[0] if paper else small[:1]  # one process where the small size is the paper's
        assert [case.variant for case in paper] == ["fp32"]
        assert paper[0].image_size == speed.PAPER_SIZE.get(model, 256)
        variants = [case.variant for case in small[1:]]
        assert variants == (["channels_last", "compile"] if model == "munit" else ["channels_last"])
        assert all(case.warmup >= 1 for case in small + paper)
    for process in speed.cases("munit", smoke=False, compiled=[], bf16=False):
        assert all("loss.recon_x_cyc_w=0" in case.overrides for case in process)
    ugatit_small = speed.cases("ugatit", smoke=False, compiled=[], bf16=True)[0]
    assert [case.variant for case in ugatit_small] == ["fp32", "channels_last", "bf16"]
    assert (ugatit_small[0].image_size, ugatit_small[0].overrides) == (128, ("model.generator.light=true",))


@pytest.mark.slow
def test_cases_run_in_their_own_process_and_failures_are_reported():
    fp32 = speed.Case(32, "fp32", warmup=1, iterations=1, block=1, overrides=("data.batch_size=1",))
    assert speed.Case.from_dict(json.loads(json.dumps(asdict(fp32)))) == fp32
    rows = speed.run_in_subprocess("cyclegan", [fp32, speed.Case(32, "channels_last", 1, 1, 1)], smoke=True)
    assert [row["variant"] for row in rows] == ["fp32", "channels_last"]
    assert rows[0]["peak_rss_mib"] > 0 and "peak_rss_mib" not in rows[1]  # memory of the first case only
    assert all(row["lightning_median"] > 0 and row["case_seconds"] > 0 for row in rows)
    assert "(in the process above)" in speed.markdown(rows, speed.conv_peak(repeats=1) | {"device": "cpu"})
    broken = speed.run_in_subprocess(
        "cyclegan", [fp32, speed.Case(32, "fp32", 1, 1, 1, ("model.nope=1",))], True
    )
    assert "error" not in broken[0] and "nope" in broken[1]["error"]


# ---------------------------------------------------------------------------- official FUNIT on our data
# A stand-in for an NVlabs/FUNIT checkout: its Trainer keeps the official interface (dis_update,
# gen_update, model.gen / gen_test / dis) around a generator that returns its content image, so the
# plumbing runs without the official code; what its networks learn is not under test.
FAKE_TRAINER = """
import torch
from torch import nn

CALLS = []


class Generator(nn.Module):
    def __init__(self, nf):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(nf))

    def enc_content(self, x):
        return x

    def enc_class_model(self, x):
        return x.mean(dim=(2, 3))[:, :, None, None]

    def decode(self, content, code):
        return content


class Trainer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model = nn.Module()
        self.model.gen, self.model.gen_test = Generator(config["gen"]["nf"]), Generator(config["gen"]["nf"])
        self.model.dis = nn.Linear(1, config["dis"]["num_classes"])

    def dis_update(self, co_data, cl_data, hp):
        assert co_data[0].dim() == cl_data[0].dim() == 4
        CALLS.append("dis")

    def gen_update(self, co_data, cl_data, hp, multigpus):
        CALLS.append("gen")
"""
SMALL_FEWSHOT = [
    "trainer.max_steps=3",
    "data.domains.num_train=4",
    "data.domains.num_test=3",
    "data.test_shots=2",
]


@pytest.fixture
def fake_funit_checkout(tmp_path, monkeypatch):
    for marker in official.OFFICIAL["funit"].markers:
        (tmp_path / marker).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / marker).write_text("")
    (tmp_path / "trainer.py").write_text(FAKE_TRAINER)
    (tmp_path / "configs" / "funit_animals.yaml").write_text(
        "gen: {nf: 64, nf_mlp: 256}\ndis: {nf: 64}\nr_w: 0.1\n"
    )
    monkeypatch.setattr(official_quality, "shim_old_apis", lambda: None)  # it patches torch process-wide
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    sys.modules.pop("trainer", None)


def test_official_funit_gets_our_recipe_architecture_and_refuses_what_it_cannot_run(fake_funit_checkout):
    cfg = compose("funit", [])
    config = official_quality.official_config(fake_funit_checkout, cfg)
    assert config["gen"] == {
        "nf": cfg.model.content_encoder.dim,
        "nf_mlp": cfg.model.mlp.hidden_dim,
        "n_res_blks": cfg.model.content_encoder.n_res,
        "n_downs_content": cfg.model.content_encoder.n_downsample,
        "n_downs_class": cfg.model.class_encoder.n_downsample,
        "latent_dim": cfg.model.class_encoder.style_dim,
        "n_mlp_blks": cfg.model.mlp.n_blocks,
    }
    assert config["dis"] == {"nf": 16, "n_res_blks": 10, "num_classes": 100} and config["batch_size"] == 4
    overrides = ("loss.r1_w=5.0", "data.train_shots=2", "loss.fm_recon_w=0.0", "model.class_encoder.dim=8")
    for override in overrides:
        with pytest.raises(ValueError, match=rf"{override}: the official code can only run with"):
            official_quality.official_config(fake_funit_checkout, compose("funit", [override]))


def test_official_funit_trains_on_our_episodes_and_is_scored_by_our_metrics(fake_funit_checkout):
    report = official_quality.train_official(fake_funit_checkout, SMALL_FEWSHOT)
    assert report["iterations"] == 3 and sys.modules["trainer"].CALLS == ["dis", "gen"] * 3
    for generator in ("live", "average"):  # the stand-in returns its input: the content, never the class
        for metrics in (report["metrics"][generator], report["metrics_1_shot"][generator]):  # K = 2, K = 1
            assert metrics["class_acc"] == 0.0 and metrics["content_iou"] > 0.95
    assert report["parameters"]["official_generator"] == 16 and report["parameters"]["ours_generator"] > 16


def test_the_one_shot_column_scores_the_same_episodes_with_their_first_shot():
    data = instantiate(compose("funit", SMALL_FEWSHOT).data, _convert_="all")
    shots_seen = []

    class Identity:
        device = torch.device("cpu")

        def translate_to_class(self, x, class_images):
            shots_seen.append(class_images.shape[1])
            return x

    metrics = quality.score_one_shot(data.scenario, Identity())
    assert set(shots_seen) == {1} and data.scenario.shots == 2  # the recipe's scenario keeps its K
    assert metrics["class_acc"] == 0.0 and metrics["content_iou"] > 0.95
    assert quality.score_one_shot(ShapesColor(image_size=32, num_test=2), Identity()) is None  # not few-shot


def test_quality_reruns_train_afresh_into_a_new_run_directory_and_refusals_are_one_line(
    tmp_path, monkeypatch, capsys
):
    """Re-running `make bench-quality` once a run exists used to stop on a CheckpointError traceback (the
    run directory already held checkpoints): each run now has its own directory and keeps the last."""
    monkeypatch.setattr(quality, "RESULTS", tmp_path)
    monkeypatch.setattr(quality, "machine_gflops", lambda: 0.0)
    small = [*(o for o in FAST if o != "~callbacks.progress_bar"), *FAST_SHAPES, "trainer.max_steps=2"]
    monkeypatch.setattr(sys, "argv", ["bench.quality", "--model", "cyclegan", *small])
    for _ in range(2):
        with pytest.raises(SystemExit):  # the bar is not met in two iterations
            quality.main()
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all((run / "checkpoints" / "last.ckpt").is_file() for run in runs)
    report = json.loads((tmp_path / "quality_cyclegan.json").read_text())
    assert report["run_directory"] == str(runs[-1]) and report["iterations"] == 2

    refused = subprocess.run(
        [sys.executable, "-m", "bench.quality", "--model", "cyclegan", "trainer.max_steps=-3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: ") and len(refused.stderr.strip().splitlines()) == 1
    assert "max_steps" in refused.stderr
