"""End to end through `train(cfg)` and the CLIs: resume exactness, atomic checkpoints, errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import run_cli
from PIL import Image

from i2i import train as train_cli
from i2i import translate as translate_cli
from i2i.checkpoints import load_model
from i2i.errors import ConfigError, DataError
from i2i.train import build_model, train

# Enough to cross an epoch boundary (4 images) and to make the image pools (size 2) swap at random.
RESUME = [
    "model=cyclegan",
    "trainer.max_steps={n}",
    "model.scheduler.lr_lambda.total=6",
    "data.domains.num_train=4",
    "model.pool_size=2",
]


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [3, 4])  # mid-epoch and on the epoch boundary
def test_resume_continues_exactly(make_cfg, tmp_path, stop_at):
    overrides = lambda n: [o.format(n=n) for o in RESUME]
    _, straight = train(make_cfg(*overrides(6), output_dir=tmp_path / "straight"))
    train(make_cfg(*overrides(stop_at), output_dir=tmp_path / "first"))
    checkpoint = tmp_path / "first" / "checkpoints" / "last.ckpt"
    _, resumed = train(make_cfg(*overrides(6), f"ckpt_path={checkpoint}", output_dir=tmp_path / "resumed"))
    assert resumed["model"].iteration == 6
    expected, actual = weights(straight["model"]), weights(resumed["model"])
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


@pytest.mark.slow
def test_a_failed_save_leaves_the_previous_checkpoint_intact(make_cfg, tmp_path, monkeypatch):
    real_save = pl.Trainer.save_checkpoint
    calls = []

    def failing_save(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError("disk full")
        return real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(pl.Trainer, "save_checkpoint", failing_save)
    with pytest.raises(OSError, match="disk full"):
        train(make_cfg())
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["i2i"]["iteration"] == 2


def test_bad_config_value_is_one_line_naming_the_key(monkeypatch, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            train_cli.main,
            monkeypatch,
            "model=cyclegan",
            "loss.cycle_w=-1",
            f"hydra.run.dir={tmp_path}",
            "print_config=false",
        )
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "error: loss.cycle_w=-1.0 is not allowed: must be >= 0"


def test_bad_image_size_is_one_line_naming_the_key(monkeypatch, capsys, tmp_path):
    with pytest.raises(SystemExit):
        run_cli(
            train_cli.main,
            monkeypatch,
            "data.image_size=40",
            f"hydra.run.dir={tmp_path}",
            "print_config=false",
        )
    assert capsys.readouterr().err.strip().startswith("error: data.image_size=40 is not allowed")


def test_missing_resume_checkpoint_is_named(monkeypatch, capsys, tmp_path):
    with pytest.raises(SystemExit):
        run_cli(
            train_cli.main,
            monkeypatch,
            "ckpt_path=/no/such.ckpt",
            f"hydra.run.dir={tmp_path}",
            "print_config=false",
        )
    assert "ckpt_path=/no/such.ckpt does not exist" in capsys.readouterr().err


def test_unknown_model_lists_the_available_ones(monkeypatch, capsys, tmp_path):
    with pytest.raises(SystemExit):
        run_cli(train_cli.main, monkeypatch, "model=pix2pix", f"hydra.run.dir={tmp_path}")
    err = capsys.readouterr().err
    assert "Could not find 'model/pix2pix'" in err and "cyclegan" in err


@pytest.fixture
def trained_checkpoint(make_cfg, tmp_path) -> Path:
    train(make_cfg("model=cyclegan", "trainer.max_steps=2"))
    return tmp_path / "checkpoints" / "last.ckpt"


def write_pngs(folder: Path, count: int, size: int = 40) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        pixels = np.random.default_rng(i).integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"photo{i}.jpg")


@pytest.mark.slow
def test_translate_writes_one_png_per_input(trained_checkpoint, tmp_path, monkeypatch):
    write_pngs(tmp_path / "in", 3)
    run_cli(
        translate_cli.main,
        monkeypatch,
        f"ckpt_path={trained_checkpoint}",
        f"input_dir={tmp_path / 'in'}",
        f"output_dir={tmp_path / 'out'}",
        "direction=BtoA",
    )
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == ["photo0.png", "photo1.png", "photo2.png"]
    assert Image.open(tmp_path / "out" / "photo0.png").size == (32, 32)  # the size the model trained on
    model, config = load_model(trained_checkpoint)
    assert config["model"]["_target_"] == "i2i.models.cyclegan.CycleGAN" and not model.training


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "checkpoint not found"),
        (b"garbage", "is not a readable PyTorch checkpoint"),
        ({"state_dict": {}}, "is not an i2i checkpoint"),
    ],
)
def test_translate_refuses_missing_and_foreign_checkpoints(tmp_path, monkeypatch, capsys, content, message):
    path = tmp_path / "model.ckpt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    write_pngs(tmp_path / "in", 1)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            translate_cli.main,
            monkeypatch,
            f"ckpt_path={path}",
            f"input_dir={tmp_path / 'in'}",
            "output_dir=o",
        )
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_runs_from_any_directory(tmp_path):
    script = Path(sys.executable).parent / "i2i-train"
    result = subprocess.run(
        [str(script), "--cfg", "job", "--package", "model"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "i2i.models.munit.MUNIT" in result.stdout  # the default model


def test_translate_style_options_are_refused_for_a_unimodal_model_and_checked(make_cfg, tmp_path):
    cyclegan = build_model(make_cfg("model=cyclegan"))
    with pytest.raises(ConfigError) as error:
        translate_cli.style_options(cyclegan, 3, None, None, 32)
    assert str(error.value) == (
        "n_styles=3 is not allowed: CycleGAN is unimodal (one translation per input); "
        "only multimodal models take styles"
    )
    assert translate_cli.style_options(cyclegan, None, None, None, 32) == {}
    munit = build_model(make_cfg("model=munit"))
    assert translate_cli.style_options(munit, 4, 1, None, 64) == {"n_styles": 4, "style_seed": 1}
    with pytest.raises(ConfigError, match="give either n_styles .* or reference, not both"):
        translate_cli.style_options(munit, 4, None, "style.png", 64)
    with pytest.raises(ConfigError, match="n_styles=0 is not allowed: must be > 0"):
        translate_cli.style_options(munit, 0, None, None, 64)
    with pytest.raises(DataError, match="reference image not found"):
        translate_cli.style_options(munit, None, None, str(tmp_path / "none.png"), 64)
    write_pngs(tmp_path / "ref", 1)
    reference = translate_cli.style_options(munit, None, None, str(tmp_path / "ref" / "photo0.jpg"), 64)[
        "reference"
    ]
    assert reference.shape == (1, 3, 64, 64)
