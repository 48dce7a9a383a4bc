"""`i2i-convert cut latest_net_G.pth out.ckpt`: the generator CUT's and FastCUT's official code saves
becomes an i2i CUT checkpoint.

The official file is stood in for by `cut_layout` (the key names, shapes and order of the state dict of
`ResnetGenerator` in taesungp/contrastive-unpaired-translation models/networks.py, with its default
anti-aliasing) filled with the weights of our own generator. Checked by hand against the official
constructor (networks.py fetched from the repository, run here, never committed):
`ResnetGenerator(3, 3, 64, norm_layer=get_norm_layer("instance"), use_dropout=False,
no_antialias=False, no_antialias_up=False, n_blocks=9, opt=None).state_dict()` has the keys of
`cut_layout(64, 9)` in the same order with the same shapes: 52 tensors, 4 of them the blur kernels
`filt`, and 11,378,179 trained weights. That the outputs of the official G and ours agree with the same
weights is tests/test_cut.py's (max difference 0.0).
"""

from collections import OrderedDict

import pytest
import torch
from test_convert_cyclegan import Layout, official_layout

from i2i import convert as convert_cli
from i2i.checkpoints import load_model
from i2i.errors import CheckpointError
from i2i.nets.resnet import ResnetGenerator


def cut_layout(ngf: int, n_blocks: int, out_channels: int = 3) -> Layout:
    """The official anti-aliased ResnetGenerator's keys and shapes, `model.<index>`: stem (pad, conv,
    norm, relu), two down-samplings (conv, norm, relu, blur `filt`), one index per ResnetBlock (convs
    at conv_block.1 and .5), two up-samplings (blur `filt`, conv, norm, relu), pad, conv, tanh."""
    layout: Layout = OrderedDict()

    def conv(index: str | int, cout: int, cin: int, k: int) -> None:
        layout[f"model.{index}.weight"] = (cout, cin, k, k)
        layout[f"model.{index}.bias"] = (cout,)

    conv(1, ngf, 3, 7)
    for d in range(2):
        conv(4 + 4 * d, ngf * 2 ** (d + 1), ngf * 2**d, 3)
        layout[f"model.{7 + 4 * d}.filt"] = (ngf * 2 ** (d + 1), 1, 3, 3)
    for b in range(n_blocks):
        for i in (1, 5):
            conv(f"{12 + b}.conv_block.{i}", ngf * 4, ngf * 4, 3)
    up = 12 + n_blocks
    for u in range(2):
        cin = ngf * 2 ** (2 - u)
        layout[f"model.{up + 4 * u}.filt"] = (cin, 1, 4, 4)
        conv(up + 4 * u + 1, cin // 2, cin, 3)
    conv(up + 9, out_channels, ngf, 7)
    return layout


def blur_kernel(shape: tuple[int, ...]) -> torch.Tensor:
    """The official fixed kernel of a `filt` buffer: binomial taps, normalised (x4 when up-sampling)."""
    taps = {3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0]}[shape[-1]]
    a = torch.tensor(taps)
    kernel = (a[:, None] * a[None, :]) / (a.sum() ** 2) * (4 if shape[-1] == 4 else 1)
    return kernel.expand(shape).clone()


def write_official(path, layout: Layout, antialias: bool) -> ResnetGenerator:
    """A latest_net_G.pth at `path` in the official `layout`, holding the weights of a generator of ours
    (returned) and, for the anti-aliased layout, the blur kernels."""
    torch.manual_seed(0)
    generator = ResnetGenerator(ngf=8, n_blocks=3, n_downsampling=2, norm="in", antialias=antialias)
    for parameter in generator.parameters():
        torch.nn.init.normal_(parameter, 0.0, 0.1)
    weights = iter(generator.state_dict().values())
    state = OrderedDict()
    for key, shape in layout.items():
        state[key] = blur_kernel(shape) if key.endswith(".filt") else next(weights)
        assert tuple(state[key].shape) == shape
    assert next(weights, None) is None
    torch.save(state, path)
    return generator.eval()


def test_layout_at_the_official_width_has_the_official_counts():
    layout = cut_layout(64, 9)
    assert len(layout) == 52 and sum(key.endswith(".filt") for key in layout) == 4
    trained = [shape for key, shape in layout.items() if not key.endswith(".filt")]
    assert sum(torch.Size(shape).numel() for shape in trained) == 11_378_179


@pytest.mark.parametrize(
    ("layout", "antialias"),
    [(cut_layout(8, 3), True), (official_layout(8, 3), False)],
    ids=["official-default", "no_antialias"],
)
def test_the_converted_cut_translates_as_the_official_generator(tmp_path, layout, antialias):
    official = write_official(tmp_path / "latest_net_G.pth", layout, antialias)
    output = convert_cli.convert("cut", [tmp_path / "latest_net_G.pth"], tmp_path / "cut.ckpt", 64, [])
    model, config = load_model(output)
    generator = config["model"]["generator"]
    assert (generator["ngf"], generator["n_blocks"], generator["antialias"]) == (8, 3, antialias)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.translate(image, "AtoB"), official(image))


def test_a_file_of_another_architecture_is_refused_naming_the_file_and_key(tmp_path):
    write_official(tmp_path / "latest_net_G.pth", cut_layout(8, 3), antialias=True)
    state = torch.load(tmp_path / "latest_net_G.pth", weights_only=True)
    state["model.24.weight"] = torch.zeros(1, 8, 7, 7)  # a grayscale output
    torch.save(state, tmp_path / "latest_net_G.pth")
    message = r"latest_net_G.pth: model\.24\.weight: expected shape \(3, 8, 7, 7\), found \(1, 8, 7, 7\)"
    with pytest.raises(CheckpointError, match=message):
        convert_cli.convert("cut", [tmp_path / "latest_net_G.pth"], tmp_path / "out.ckpt", 64, [])
    assert not (tmp_path / "out.ckpt").exists()
