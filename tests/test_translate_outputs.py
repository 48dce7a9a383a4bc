"""`i2i-translate` never destroys the user's files: no output folder inside the inputs, no silent
overwrite, no two inputs written to one name, and nothing at all written when it refuses."""

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, FAST_SHAPES, compose_config, run_cli
from PIL import Image

from i2i import translate as translate_cli
from i2i.train import train


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    train(
        compose_config(
            [*FAST, *FAST_SHAPES, "model=cyclegan", "trainer.max_steps=1", "data.image_size=32"], run
        )
    )
    return run / "checkpoints" / "last.ckpt"


def write_images(folder: Path, names: list[str]) -> dict[Path, bytes]:
    """Random 40x40 images under `names`; returns every file's bytes, to check nothing changed."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        pixels = np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)
    return snapshot(folder)


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def translate(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    run_cli(translate_cli.main, monkeypatch, "direction=AtoB", "device=cpu", *args)


def refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one error line of a translation that must be refused with exit status 2."""
    with pytest.raises(SystemExit) as exit_info:
        translate(monkeypatch, *args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("where", ["same", "inside", "symlink"])
def test_an_output_dir_in_the_input_dir_is_refused_and_the_inputs_stay_intact(
    checkpoint, tmp_path, monkeypatch, capsys, where
):
    inputs = tmp_path / "photos"
    before = write_images(inputs, ["a.png", "b.png"])
    output_dir = {"same": inputs, "inside": inputs / "translated", "symlink": tmp_path / "link"}[where]
    if where == "symlink":
        os.symlink(inputs, output_dir)
    line = refused(
        monkeypatch, capsys, f"ckpt_path={checkpoint}", f"input_dir={inputs}", f"output_dir={output_dir}"
    )
    assert f"output_dir='{output_dir}'" in line and "input_dir" in line
    assert snapshot(inputs) == before


def test_existing_outputs_are_kept_unless_overwrite_is_true(checkpoint, tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "in", ["a.png", "b.jpg", "c.png"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"the user's own file")
    arguments = [f"ckpt_path={checkpoint}", f"input_dir={tmp_path / 'in'}", f"output_dir={out}"]
    line = refused(monkeypatch, capsys, *arguments)
    assert "b.png" in line and "overwrite=true" in line
    assert snapshot(out) == {
        out / "b.png": b"the user's own file"
    }  # refused before the first write: no a.png

    translate(monkeypatch, *arguments, "overwrite=true")
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    assert Image.open(out / "b.png").size == (32, 32)  # replaced by the translation
    assert f"wrote 3 images to {out}" in capsys.readouterr().out  # the count is the files written


def test_two_inputs_that_would_write_one_name_are_refused_naming_both(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """Before, `a.png` and `a.jpg` became one `a.png` while the CLI reported "wrote 2 images"."""
    write_images(tmp_path / "in", ["a.png", "a.jpg", "b.png"])
    line = refused(
        monkeypatch,
        capsys,
        f"ckpt_path={checkpoint}",
        f"input_dir={tmp_path / 'in'}",
        f"output_dir={tmp_path / 'out'}",
    )
    assert str(tmp_path / "in" / "a.jpg") in line and str(tmp_path / "in" / "a.png") in line
    assert not (tmp_path / "out").exists()


def test_an_output_dir_that_is_a_file_is_one_line(checkpoint, tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "in", ["a.png"])
    (tmp_path / "out").write_bytes(b"notes")
    line = refused(
        monkeypatch,
        capsys,
        f"ckpt_path={checkpoint}",
        f"input_dir={tmp_path / 'in'}",
        f"output_dir={tmp_path / 'out'}",
    )
    assert f"output_dir='{tmp_path / 'out'}'" in line and "is a file" in line
    assert (tmp_path / "out").read_bytes() == b"notes"
