"""`i2i-data export`: a synthetic scenario's images as a CycleGAN-layout folder, inputs for i2i-translate."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST, compose_config
from hydra.utils import instantiate
from PIL import Image
from test_train import run_cli

from i2i import translate as translate_cli
from i2i.data.download import main as data_main
from i2i.train import train


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_export_writes_the_test_images_data_trains_on(tmp_path, capsys):
    data_main(["export", "shapes_geometry", str(tmp_path / "out"), "--num-test", "3", "--image-size", "32"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["testA", "testB"]
    assert sorted(p.name for p in (tmp_path / "out" / "testB").iterdir()) == [
        "0000.png",
        "0001.png",
        "0002.png",
    ]
    # the very images `data=shapes_geometry data.image_size=32` evaluates on, as the PNG a model
    # output would be
    scenario = instantiate(compose_config(["data=shapes_geometry", "data.image_size=32"]).data.domains)
    for domain in ("A", "B"):
        expected = ((scenario.image(domain, "test", 2) + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)
        written = pixels(tmp_path / "out" / f"test{domain}" / "0002.png")
        assert written.shape == (32, 32, 3)
        assert np.array_equal(written, expected.permute(1, 2, 0).numpy())
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'out' / 'testA'}: 3 images",
        f"{tmp_path / 'out' / 'testB'}: 3 images",
    ]


def test_export_with_train_images_makes_a_folder_data_folder_trains_on(tmp_path):
    data_main(
        [
            "export",
            "shapes_color",
            str(tmp_path / "out"),
            "--num-test",
            "2",
            "--num-train",
            "3",
            "--seed",
            "1",
        ]
    )
    counts = {p.name: len(list(p.iterdir())) for p in (tmp_path / "out").iterdir()}
    assert counts == {"testA": 2, "testB": 2, "trainA": 3, "trainB": 3}
    assert Image.open(tmp_path / "out" / "trainA" / "0000.png").size == (64, 64)  # the config's size
    first_seed = tmp_path / "seed0"
    data_main(["export", "shapes_color", str(first_seed), "--num-test", "1"])
    seed1 = pixels(tmp_path / "out" / "testA" / "0000.png")
    assert not np.array_equal(pixels(first_seed / "testA" / "0000.png"), seed1)


def test_export_never_writes_into_a_folder_that_holds_anything(tmp_path, capsys):
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        data_main(["export", "shapes_color", str(target), "--num-test", "1"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert (
        error == f"error: {target} is not an empty folder; export into a new one (nothing is overwritten)\n"
    )
    assert [p.name for p in target.iterdir()] == ["mine.txt"] and (
        target / "mine.txt"
    ).read_text() == "keep me"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["shapes_fewshot"],
            "error: cannot export 'shapes_fewshot': choose one of shapes_color, shapes_geometry",
        ),
        (["shapes_color", "--num-test", "0"], "error: --num-test=0 is not allowed: must be > 0"),
        (
            ["shapes_color", "--image-size", "40"],
            "error: data.image_size=40 is not allowed: must be a positive",
        ),
    ],
)
def test_export_refuses_bad_arguments_in_one_line(tmp_path, capsys, arguments, message):
    name, *options = arguments
    with pytest.raises(SystemExit) as exit_info:
        data_main(["export", name, str(tmp_path / "out"), *options])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1
    assert not (tmp_path / "out" / "testA").exists()


@pytest.mark.slow
def test_translate_runs_on_the_exported_test_images(tmp_path, monkeypatch):
    overrides = [*FAST, "model=cyclegan", "trainer.max_steps=2", "data.domains.num_train=4"]
    train(compose_config(overrides, tmp_path / "run"))
    data_main(["export", "shapes_color", str(tmp_path / "inputs"), "--num-test", "3"])
    run_cli(
        translate_cli.main, monkeypatch, f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}",
        f"input_dir={tmp_path / 'inputs' / 'testA'}", f"output_dir={tmp_path / 'translated'}",
    )  # fmt: skip
    outputs = sorted((tmp_path / "translated").iterdir())
    assert [p.name for p in outputs] == ["0000.png", "0001.png", "0002.png"]
    translated = pixels(outputs[0])
    assert translated.shape == (32, 32, 3)  # the 64 px inputs resized to the size the model trained on
    assert translated.std() > 0
