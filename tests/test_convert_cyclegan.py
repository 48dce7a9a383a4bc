"""`i2i-convert cyclegan latest_net_G_A.pth latest_net_G_B.pth out.ckpt`: the CycleGAN repo's
ResnetGenerator state dicts become an i2i CycleGAN checkpoint that i2i-translate and i2i-eval use.

The official files are stood in for by `official_layout` (the key names, shapes and order of
`ResnetGenerator` in junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py) filled with the weights
of our own generator (`official_state`). Checked once by hand against the official constructor (its
networks.py fetched at commit 78913853, run here, never committed): the state dict of
`ResnetGenerator(3, 3, 64, norm_layer=nn.InstanceNorm2d, use_dropout=False, n_blocks=9)` has the
keys of `official_layout(64, 9)` in the same order with the same shapes (48 tensors, 11,378,179
parameters), and an i2i checkpoint converted from two such generators (N(0, 0.02) init, as the
official `init_weights`) translates a 256 px image as the official generator does, max absolute
difference 0.0 (bitwise equal) in both directions.
"""

import json
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from test_train import run_cli, write_pngs

from i2i import convert as convert_cli
from i2i import evaluate as evaluate_cli
from i2i import translate as translate_cli
from i2i.checkpoints import load_model
from i2i.errors import CheckpointError
from i2i.nets.resnet import ResnetGenerator

Layout = OrderedDict[str, tuple[int, ...]]


def official_layout(ngf: int, n_blocks: int, out_channels: int = 3, norm: str = "instance") -> Layout:
    """ResnetGenerator's state dict keys and shapes: `model.<index in its nn.Sequential>`. Stem
    (pad, conv, norm, relu), two stride-2 convs (conv, norm, relu), one index per ResnetBlock (its
    convs at conv_block.1 and .5), two transposed convs (convT, norm, relu), pad, conv, tanh. With
    instance norm (no affine) the convs have biases and the norms no tensors; with batch norm the
    inner convs have no bias and each norm has weight, bias and running statistics."""
    layout: Layout = OrderedDict()

    def conv(index: str | int, cout: int, cin: int, k: int, bias: bool = norm == "instance") -> None:
        layout[f"model.{index}.weight"] = (cout, cin, k, k)
        if bias:
            layout[f"model.{index}.bias"] = (cout,)

    def norm_layer(index: str | int, channels: int) -> None:
        if norm == "batch":
            for name in ("weight", "bias", "running_mean", "running_var"):
                layout[f"model.{index}.{name}"] = (channels,)
            layout[f"model.{index}.num_batches_tracked"] = ()

    conv(1, ngf, 3, 7)
    norm_layer(2, ngf)
    for d in range(2):
        conv(4 + 3 * d, ngf * 2 ** (d + 1), ngf * 2**d, 3)
        norm_layer(5 + 3 * d, ngf * 2 ** (d + 1))
    for b in range(n_blocks):
        for i in (1, 5):
            conv(f"{10 + b}.conv_block.{i}", ngf * 4, ngf * 4, 3)
            norm_layer(f"{10 + b}.conv_block.{i + 1}", ngf * 4)
    up = 10 + n_blocks
    for u in range(2):  # ConvTranspose2d weights are (in, out, k, k)
        cin = ngf * 2 ** (2 - u)
        layout[f"model.{up + 3 * u}.weight"] = (cin, cin // 2, 3, 3)
        if norm == "instance":
            layout[f"model.{up + 3 * u}.bias"] = (cin // 2,)
        norm_layer(up + 3 * u + 1, cin // 2)
    conv(up + 7, out_channels, ngf, 7, bias=True)
    return layout


def official_state(generator: ResnetGenerator, layout: Layout) -> dict[str, torch.Tensor]:
    """`generator`'s weights under the official keys of `layout`, matched in order (shapes checked)."""
    ours = list(generator.state_dict().values())
    assert [tuple(t.shape) for t in ours] == list(layout.values())
    return OrderedDict(zip(layout, ours))


def write_official(folder: Path, ngf: int = 8, n_blocks: int = 3) -> dict[str, ResnetGenerator]:
    """latest_net_G_A.pth and latest_net_G_B.pth in `folder`; the generators they hold, by file stem."""
    generators = {}
    for seed, name in enumerate(("G_A", "G_B")):
        torch.manual_seed(seed)
        generator = ResnetGenerator(ngf=ngf, n_blocks=n_blocks, n_downsampling=2, norm="in", antialias=False)
        for parameter in generator.parameters():
            torch.nn.init.normal_(parameter, 0.0, 0.1)
        torch.save(
            official_state(generator, official_layout(ngf, n_blocks)), folder / f"latest_net_{name}.pth"
        )
        generators[name] = generator.eval()
    return generators


def sources(folder: Path) -> list[Path]:
    return [folder / "latest_net_G_A.pth", folder / "latest_net_G_B.pth"]


def test_layout_at_the_official_width_has_the_official_count():
    layout = official_layout(64, 9)
    assert len(layout) == 48
    assert sum(torch.Size(shape).numel() for shape in layout.values()) == 11_378_179


def test_converted_generators_translate_as_the_official_ones(tmp_path):
    official = write_official(tmp_path)
    output = convert_cli.convert("cyclegan", sources(tmp_path), tmp_path / "cyclegan.ckpt", 64, [])
    model, config = load_model(output)
    generator = config["model"]["generator"]
    assert (generator["ngf"], generator["n_blocks"], generator["n_downsampling"]) == (8, 3, 2)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.translate(image, "AtoB"), official["G_A"](image))
        assert torch.equal(model.translate(image, "BtoA"), official["G_B"](image))
    assert torch.equal(
        model.G_ab.model[4].body[1][1].weight,
        torch.load(tmp_path / "latest_net_G_A.pth", weights_only=True)["model.11.conv_block.5.weight"],
    )


def test_the_norms_running_statistics_of_old_files_are_dropped(tmp_path):
    """Files saved by PyTorch < 0.4 hold running statistics of the instance norms (the official
    loader deletes them too)."""
    official = write_official(tmp_path)
    for path in sources(tmp_path):
        state = torch.load(path, weights_only=True)
        state["model.2.running_mean"], state["model.2.running_var"] = torch.zeros(8), torch.ones(8)
        torch.save(state, path)
    model, _ = load_model(convert_cli.convert("cyclegan", sources(tmp_path), tmp_path / "c.ckpt", 64, []))
    image = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.translate(image, "AtoB"), official["G_A"](image))


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (  # a grayscale generator: the last conv has one output channel
            official_layout(8, 3, out_channels=1),
            r"model\.20\.weight: expected shape \(3, 8, 7, 7\), found \(1, 8, 7, 7\)",
        ),
        (  # --norm batch: the convs before a norm have no bias
            official_layout(8, 3, norm="batch"),
            r"model\.1\.bias: expected shape \(8,\), found None",
        ),
    ],
)
def test_a_file_of_another_architecture_is_refused_naming_the_first_mismatched_key(
    tmp_path, capsys, layout, message
):
    write_official(tmp_path)
    torch.save({key: torch.zeros(shape) for key, shape in layout.items()}, tmp_path / "latest_net_G_B.pth")
    with pytest.raises(CheckpointError, match=message):
        convert_cli.convert("cyclegan", sources(tmp_path), tmp_path / "out.ckpt", 64, [])
    with pytest.raises(SystemExit) as exit_info:
        convert_cli.main(["cyclegan", *map(str, sources(tmp_path)), str(tmp_path / "out.ckpt")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error: ") and "\n" not in err
    assert re.search(f"latest_net_G_B.pth: {message}", err)  # the file, then its first key that does not fit
    assert not (tmp_path / "out.ckpt").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"a": {}, "b": {}}, "is not a generator state dict"),
        ({"model.0.weight": torch.zeros(1)}, "no 4-d model.1.weight"),
    ],
)
def test_files_that_are_no_resnet_generator_are_refused_in_one_line(tmp_path, capsys, content, message):
    write_official(tmp_path)
    torch.save(content, tmp_path / "latest_net_G_A.pth")
    with pytest.raises(SystemExit) as exit_info:
        convert_cli.main(["cyclegan", *map(str, sources(tmp_path)), str(tmp_path / "out.ckpt")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and message in err and "\n" not in err


def test_cyclegan_takes_two_files_and_the_output(tmp_path, capsys):
    write_official(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        convert_cli.main(["cyclegan", str(tmp_path / "latest_net_G_A.pth"), str(tmp_path / "out.ckpt")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err
    assert "cyclegan takes latest_net_G_A.pth latest_net_G_B.pth and the checkpoint to write" in err


def test_converted_checkpoint_serves_translate_and_eval(tmp_path, monkeypatch, capsys):
    write_official(tmp_path)
    output = tmp_path / "cyclegan.ckpt"
    convert_cli.main(["cyclegan", *map(str, sources(tmp_path)), str(output), "--image-size", "64"])
    assert f"wrote {output}" in capsys.readouterr().out
    write_pngs(tmp_path / "in", 2)
    run_cli(
        translate_cli.main,
        monkeypatch,
        f"ckpt_path={output}",
        f"input_dir={tmp_path / 'in'}",
        f"output_dir={tmp_path / 'out'}",
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo0.png", "photo1.png"]
    run_cli(
        evaluate_cli.main,
        monkeypatch,
        f"ckpt_path={output}",
        "data=shapes_color",
        "data.image_size=64",
        "n_images=4",
        "metrics.extractor=proxy",
        "metrics.names=[kid]",
        f"output={tmp_path / 'eval.json'}",
    )
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["iteration"] == 0 and {row["metric"] for row in report["scores"]} == {
        "kid_proxy_AtoB",
        "kid_proxy_BtoA",
    }
