"""`i2i-convert`: official MUNIT/UNIT generator checkpoints, built here from the official layouts
(key names, shapes and registration order of `NVlabs/MUNIT:networks.py`), become i2i checkpoints
that `i2i-translate` uses."""

from collections import OrderedDict

import pytest
import torch
from test_train import run_cli, write_pngs

from i2i import convert as convert_cli
from i2i import translate as translate_cli
from i2i.checkpoints import load_model

Layout = OrderedDict[str, tuple[int, ...]]


def conv2d_block(layout: Layout, prefix: str, cin: int, cout: int, k: int, norm: str = "none") -> None:
    """Official Conv2dBlock: `pad`, `norm`, `activation`, `conv` registered in that order."""
    if norm == "ln":
        layout[f"{prefix}.norm.gamma"] = (cout,)
        layout[f"{prefix}.norm.beta"] = (cout,)
    elif (
        norm == "adain" or norm == "in_pytorch03"
    ):  # the dummy running statistics of the official AdaptiveInstanceNorm2d
        layout[f"{prefix}.norm.running_mean"] = (cout,)
        layout[f"{prefix}.norm.running_var"] = (cout,)
    layout[f"{prefix}.conv.weight"] = (cout, cin, k, k)
    layout[f"{prefix}.conv.bias"] = (cout,)


def res_blocks(layout: Layout, prefix: str, n: int, dim: int, norm: str) -> None:
    for j in range(n):
        for i in range(2):
            conv2d_block(layout, f"{prefix}.model.{j}.model.{i}", dim, dim, 3, norm)


def content_encoder(layout: Layout, prefix: str, dim: int, n_down: int, n_res: int, norm: str = "in") -> int:
    conv2d_block(layout, f"{prefix}.model.0", 3, dim, 7, norm)
    for i in range(n_down):
        conv2d_block(layout, f"{prefix}.model.{i + 1}", dim, dim * 2, 4, norm)
        dim *= 2
    res_blocks(layout, f"{prefix}.model.{n_down + 1}", n_res, dim, norm)
    return dim


def decoder(layout: Layout, prefix: str, dim: int, n_up: int, n_res: int, res_norm: str) -> None:
    res_blocks(layout, f"{prefix}.model.0", n_res, dim, res_norm)
    for u in range(n_up):  # model.{1 + 2u} is the parameter-free Upsample
        conv2d_block(layout, f"{prefix}.model.{2 + 2 * u}", dim, dim // 2, 5, "ln")
        dim //= 2
    conv2d_block(layout, f"{prefix}.model.{1 + 2 * n_up}", dim, 3, 7)


def munit_layout(dim=8, n_down=2, n_res=3, style_dim=5, mlp_dim=16, n_mlp=3, style_down=4) -> Layout:
    """AdaINGen: enc_style, enc_content, dec, mlp."""
    layout: Layout = OrderedDict()
    conv2d_block(layout, "enc_style.model.0", 3, dim, 7)
    width = dim
    for i in range(style_down):
        out = width * 2 if i < 2 else width
        conv2d_block(layout, f"enc_style.model.{i + 1}", width, out, 4)
        width = out
    layout[f"enc_style.model.{style_down + 2}.weight"] = (style_dim, width, 1, 1)  # after the pooling
    layout[f"enc_style.model.{style_down + 2}.bias"] = (style_dim,)
    content = content_encoder(layout, "enc_content", dim, n_down, n_res)
    decoder(layout, "dec", content, n_down, n_res, "adain")
    sizes = [style_dim] + [mlp_dim] * (n_mlp - 1) + [n_res * 2 * 2 * content]
    for i, (fin, fout) in enumerate(zip(sizes, sizes[1:])):
        layout[f"mlp.model.{i}.fc.weight"] = (fout, fin)
        layout[f"mlp.model.{i}.fc.bias"] = (fout,)
    return layout


def unit_layout(dim=8, n_down=2, n_res=3) -> Layout:
    """VAEGen as PyTorch 0.3 saved it (instance norms with running statistics): enc, dec."""
    layout: Layout = OrderedDict()
    content = content_encoder(layout, "enc", dim, n_down, n_res, "in_pytorch03")
    decoder(layout, "dec", content, n_down, n_res, "in_pytorch03")
    return layout


def official_checkpoint(layout: Layout, path, seed: int = 0):
    """{'a': ..., 'b': ...} with every parameter tensor filled with its own number (+ noise)."""
    generator = torch.Generator().manual_seed(seed)
    states = {}
    for offset, domain in ((0, "a"), (1000, "b")):
        states[domain] = OrderedDict(
            (key, torch.full(shape, float(offset + i)) + 0.01 * torch.rand(shape, generator=generator))
            for i, (key, shape) in enumerate(layout.items())
        )
    torch.save(states, path)
    return states


def number(tensor: torch.Tensor) -> int:
    return int(tensor.round().unique().item())


def test_layout_table_at_the_paper_widths_has_the_official_counts():
    def count(layout: Layout) -> int:
        return sum(torch.Size(s).numel() for k, s in layout.items() if "running" not in k)

    assert count(munit_layout(dim=64, n_res=4, style_dim=8, mlp_dim=256)) == 15_026_187
    assert count(unit_layout(dim=64, n_res=4)) == 11_140_483


def test_munit_conversion_maps_every_official_layer_to_its_place(tmp_path):
    layout = munit_layout()
    states = official_checkpoint(layout, tmp_path / "gen_00010000.pt")
    output = convert_cli.convert("munit", tmp_path / "gen_00010000.pt", tmp_path / "munit.ckpt", 64, [])
    model, config = load_model(output)
    generator = config["model"]["generator"]
    assert (generator["dim"], generator["n_res"], generator["style_dim"], generator["mlp_dim"]) == (
        8,
        3,
        5,
        16,
    )
    by_hand = {  # official key -> i2i parameter, written out from the two networks
        "enc_style.model.0.conv.weight": model.G_a.style_encoder[0][1].weight,
        "enc_style.model.6.bias": model.G_a.style_encoder[6].bias,
        "enc_content.model.2.conv.bias": model.G_a.content_encoder[2][1].bias,
        "enc_content.model.3.model.2.model.1.conv.weight": model.G_a.content_encoder[5].body[1][1].weight,
        "dec.model.0.model.1.model.0.conv.weight": model.G_a.decoder.blocks[1].first.conv[1].weight,
        "dec.model.0.model.2.model.1.conv.bias": model.G_a.decoder.blocks[2].second.conv[1].bias,
        "dec.model.2.norm.gamma": model.G_a.decoder.blocks[3][1][2].gamma,
        "dec.model.4.conv.weight": model.G_a.decoder.blocks[4][1][1].weight,
        "dec.model.5.conv.weight": model.G_a.decoder.blocks[5][1].weight,
        "mlp.model.2.fc.weight": model.G_a.mlp[2][0].weight,
    }
    for key, param in by_hand.items():
        assert torch.equal(param, states["a"][key]), key
    official = {number(v) for state in states.values() for k, v in state.items() if "running" not in k}
    converted = [number(p) for g in (model.G_a, model.G_b) for p in g.parameters()]
    assert sorted(converted) == sorted(official)  # every official tensor used exactly once
    assert number(model.G_b.mlp[0][0].weight) == 1000 + list(layout).index("mlp.model.0.fc.weight")


def test_unit_conversion_drops_the_old_running_statistics(tmp_path):
    states = official_checkpoint(unit_layout(), tmp_path / "gen.pt")
    model, _ = load_model(convert_cli.convert("unit", tmp_path / "gen.pt", tmp_path / "unit.ckpt", 64, []))
    assert torch.equal(
        model.G_b.decoder.blocks[0].body[0][1].weight, states["b"]["dec.model.0.model.0.model.0.conv.weight"]
    )
    assert torch.equal(
        model.G_a.encoder[3].body[1][1].bias, states["a"]["enc.model.3.model.0.model.1.conv.bias"]
    )


@pytest.mark.slow
def test_converted_checkpoint_translates_with_the_cli(tmp_path, monkeypatch, capsys):
    official_checkpoint(munit_layout(), tmp_path / "gen.pt")
    convert_cli.main(["munit", str(tmp_path / "gen.pt"), str(tmp_path / "munit.ckpt"), "--image-size", "64"])
    assert f"wrote {tmp_path / 'munit.ckpt'}" in capsys.readouterr().out
    write_pngs(tmp_path / "in", 2)
    run_cli(
        translate_cli.main,
        monkeypatch,
        f"ckpt_path={tmp_path / 'munit.ckpt'}",
        f"input_dir={tmp_path / 'in'}",
        f"output_dir={tmp_path / 'out'}",
        "n_styles=2",
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "photo0_s0.png",
        "photo0_s1.png",
        "photo1_s0.png",
        "photo1_s1.png",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "checkpoint not found"),
        ({"gen": {}}, "not an official generator checkpoint"),
        (
            {"a": {"x.weight": torch.zeros(1)}, "b": {}},
            "not an official MUNIT generator: no enc_content.model.0.conv.weight",
        ),
    ],
)
def test_bad_files_are_refused_in_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "gen.pt"
    if content is not None:
        torch.save(content, path)
    with pytest.raises(SystemExit) as exit_info:
        convert_cli.main(["munit", str(path), str(tmp_path / "out.ckpt")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_a_layer_missing_from_the_official_file_is_named(tmp_path):
    layout = munit_layout()
    states = official_checkpoint(layout, tmp_path / "gen.pt")
    for state in states.values():
        del state["dec.model.2.norm.beta"]
    torch.save(states, tmp_path / "gen.pt")
    with pytest.raises(
        convert_cli.CheckpointError, match=r"dec.model.2.norm.beta: expected shape \(16,\), found None"
    ):
        convert_cli.convert("munit", tmp_path / "gen.pt", tmp_path / "out.ckpt", 64, [])
