"""`i2i-eval fake_dir=... real_dir=...`: FID/KID of two plain folders, with the checkpoint protocols."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train import run_cli
from torchmetrics.image.fid import FrechetInceptionDistance

from i2i import evaluate as eval_cli
from i2i.data.export import ExportRequest, export
from i2i.metrics.extractors import build_extractor

# the random stand-ins of metric_weights.py are not the published files
UNPUBLISHED = "metrics.allow_unpublished_weights=true"
ROW_KEYS = {"metric", "value", "std", "protocol", "n_images", "extractor", "weights_sha256", "commit"}


@pytest.fixture
def torch_home(metric_weights_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(metric_weights_home))
    return metric_weights_home


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """shapes_color's testA and testB, 6 images each at 32 px, and an image of another size."""
    folder = tmp_path_factory.mktemp("images") / "shapes"
    export(ExportRequest("shapes_color", folder, num_test=6, image_size=32))
    return folder


def run_eval(monkeypatch, *arguments: str) -> None:
    run_cli(eval_cli.main, monkeypatch, *arguments, "device=cpu", UNPUBLISHED)


def uint8_images(folder: Path) -> torch.Tensor:
    return torch.stack(
        [torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1) for p in sorted(folder.iterdir())]
    )


@pytest.mark.slow
def test_two_folders_give_fid_and_kid_rows_with_the_checkpoint_protocols(
    images, torch_home, monkeypatch, capsys
):
    run_eval(monkeypatch, f"fake_dir={images / 'testA'}", f"real_dir={images / 'testB'}")
    output = images / "testA_eval.json"  # beside the scored folder, not inside it
    report = json.loads(output.read_text())
    assert set(report) == {"fake_dir", "real_dir", "commit", "scores"}
    assert report["fake_dir"] == str(images / "testA") and report["real_dir"] == str(images / "testB")
    rows = {row["metric"]: row for row in report["scores"]}
    assert set(rows) == {"fid", "kid"}
    for row in rows.values():
        assert set(row) == ROW_KEYS | {"warning"}
        assert (
            row["n_images"] == 6
            and row["extractor"] == "inception-v3-compat"
            and len(row["weights_sha256"]) == 64
        )
    assert rows["kid"]["protocol"].startswith(
        "KID x100, torchmetrics polynomial-kernel MMD (degree 3, coef 1), mean"
    )
    assert f"6 translations vs 6 real images of folder {images / 'testB'}" in rows["fid"]["protocol"]
    # the same FID as torchmetrics' own estimator fed the same uint8 images through the same network
    extractor = build_extractor(
        "inception", None, allow_download=False, antialias=False, allow_unpublished=True
    )
    reference = FrechetInceptionDistance(feature=extractor.network)
    reference.update(uint8_images(images / "testB"), real=True)
    reference.update(uint8_images(images / "testA"), real=False)
    assert rows["fid"]["value"] == pytest.approx(float(reference.compute()), rel=1e-4)
    assert rows["fid"]["value"] > 1 and rows["kid"]["value"] > 0 and rows["kid"]["std"] >= 0
    assert rows["fid"]["warning"].startswith(
        "FID of 6 images (fewer than the 2048 feature dimensions): the covariance"
    )
    assert rows["kid"]["warning"].startswith(
        "KID of 6 images (fewer than the protocol's subsets of 1000): unbiased"
    )
    captured = capsys.readouterr()
    assert f"warning: fid: {rows['fid']['warning']}" in captured.err.splitlines()
    assert f"warning: kid: {rows['kid']['warning']}" in captured.err.splitlines()
    assert "fid" in captured.out and "kid" in captured.out  # the table


@pytest.mark.slow
def test_identical_folders_have_fid_zero(images, torch_home, tmp_path, monkeypatch):
    output = tmp_path / "same.json"
    same = images / "testB"
    run_eval(monkeypatch, f"fake_dir={same}", f"real_dir={same}", f"output={output}", "metrics.names=[fid]")
    (row,) = json.loads(output.read_text())["scores"]
    assert row["metric"] == "fid" and abs(row["value"]) < 1e-2


@pytest.mark.slow
def test_enough_images_carry_no_warning(images, torch_home, tmp_path, monkeypatch, capsys):
    output = tmp_path / "kid.json"
    run_eval(
        monkeypatch, f"fake_dir={images / 'testA'}", f"real_dir={images / 'testB'}", f"output={output}",
        "metrics.names=[kid]", "metrics.kid_max_subset_size=4",
    )  # fmt: skip
    (row,) = json.loads(output.read_text())["scores"]
    assert row["metric"] == "kid" and set(row) == ROW_KEYS
    assert "warning" not in capsys.readouterr().err


@pytest.mark.slow
def test_images_of_different_sizes_and_modes_are_all_scored(images, torch_home, tmp_path, monkeypatch):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for index, path in enumerate(sorted((images / "testA").iterdir())):
        image = Image.open(path)
        (image.resize((48, 48)) if index % 2 else image.convert("L")).save(
            mixed / path.name
        )  # grey becomes RGB
    output = tmp_path / "mixed.json"
    real = images / "testB"
    run_eval(monkeypatch, f"fake_dir={mixed}", f"real_dir={real}", f"output={output}", "metrics.names=[fid]")
    (row,) = json.loads(output.read_text())["scores"]
    assert row["n_images"] == 6 and np.isfinite(row["value"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["fake_dir=."],
            "error: real_dir=None is not allowed: fake_dir and real_dir go together: give both folders",
        ),
        (["fake_dir=.", "real_dir=/no/such/folder"], "error: real_dir=/no/such/folder: no such folder"),
        (
            ["ckpt_path=x.ckpt", "fake_dir=.", "real_dir=."],
            "error: ckpt_path='x.ckpt' is not allowed: give either",
        ),
        (
            [],
            "error: ckpt_path=None is not allowed: give ckpt_path=<checkpoint>, "
            "or fake_dir=<images> real_dir=",
        ),
    ],
)
def test_bad_folder_arguments_are_one_line(arguments, message, torch_home, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_eval(monkeypatch, *arguments)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1
