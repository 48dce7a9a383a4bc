"""Numerics of the normalisations on constant feature maps (issue 23 §4).

A flat image (a saturated sky, a black background) keeps every feature map constant through
reflect-padded conv blocks; the official norms then back-propagate 1/sqrt(eps) = 316 times the
centred gradient per layer (1e5 for MUNIT's layer norm), and MUNIT's stack of them overflowed to
inf/NaN: `the d loss is nan` on real photographs. Our norms give a constant map a zero input
gradient and keep everything else exact (`i2i.nets.norms.flat_safe`).
"""

import pytest
import torch
from conftest import FAST, compose_config, small_data
from torch import Tensor, nn

from i2i.nets.adailn import AdaILN
from i2i.nets.adain import adaptive_instance_norm, highway_adaptive_instance_norm
from i2i.nets.norms import ILN, InstanceNorm2d, LayerNorm2d, make_norm
from i2i.train import build_model

C = 4


def _adain(x: Tensor) -> Tensor:
    params = torch.cat([torch.full((x.size(0), C), 0.25), torch.full((x.size(0), C), 2.0)], dim=1)
    return adaptive_instance_norm(x, params)


def _highway(std: str):
    def apply(x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        mask = torch.linspace(0, 1, height * width).view(1, 1, height, width).expand(batch, -1, -1, -1)
        fg = torch.cat([torch.full((x.size(0), C), 0.25), torch.full((x.size(0), C), 2.0)], dim=1)
        bg = torch.cat([torch.full((x.size(0), C), -0.5), torch.full((x.size(0), C), 3.0)], dim=1)
        return highway_adaptive_instance_norm(x, mask, fg, bg, std=std)

    return apply


def _adailn(x: Tensor) -> Tensor:
    return AdaILN(C)(x, torch.full((x.size(0), C), 2.0), torch.full((x.size(0), C), 0.25))


def _affine(norm: nn.Module) -> nn.Module:
    """`norm` with a non-trivial affine, so its output on a constant map is its shift, not 0."""
    with torch.no_grad():
        for name, param in norm.named_parameters():
            if name in ("weight", "gamma"):
                param.fill_(2.0)
            elif name in ("beta", "bias"):
                param.fill_(0.25)
    return norm


#: every normalisation a generator or discriminator normalises feature maps with, and the value it
#: outputs on a constant map (its shift: the official layers' output there too)
NORMALISATIONS = {
    "in": (lambda: make_norm("in", C), 0.0),
    "in_affine": (lambda: _affine(make_norm("in_affine", C)), 0.25),
    "ln (MUNIT)": (lambda: _affine(make_norm("ln", C)), 0.25),
    "iln (U-GAT-IT)": (lambda: _affine(make_norm("iln", C)), 0.25),
    "adailn (U-GAT-IT)": (lambda: _adailn, 0.25),
    "adain": (lambda: _adain, 0.25),
    "highway adain, spatial (LOMIT)": (lambda: _highway("spatial"), None),
    "highway adain, std of std (LOMIT code)": (lambda: _highway("std_of_std"), None),
}


@pytest.mark.parametrize("name", NORMALISATIONS)
def test_a_constant_map_outputs_the_shift_with_a_zero_input_gradient(name):
    build, shift = NORMALISATIONS[name]
    norm = build()
    x = torch.full((2, C, 5, 5), 0.7, requires_grad=True)
    out = norm(x)
    if shift is not None:
        torch.testing.assert_close(out, torch.full_like(out, shift))
    out.mul(torch.randn_like(out)).sum().backward()
    # the official layers: 1/sqrt(eps) = 316 (1e5 for eps on the std) times the centred gradient
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_instance_norm_equals_pytorchs_where_the_map_is_not_constant():
    torch.manual_seed(0)
    x = torch.randn(3, C, 6, 7)
    x[0, 1] = 5.0  # one constant channel among varied ones: only it may differ (in its gradient)
    x[1, 2] = 5.0
    x[1, 2, 3, 4] = torch.nextafter(torch.tensor(5.0), torch.tensor(6.0))  # varied, if barely
    for affine in (False, True):
        ours, theirs = InstanceNorm2d(C, affine=affine), nn.InstanceNorm2d(C, affine=affine)
        if affine:
            with torch.no_grad():
                ours.weight.copy_(torch.rand(C))
                ours.bias.copy_(torch.randn(C))
            theirs.load_state_dict(ours.state_dict())  # same parameter names
        upstream = torch.randn_like(x)
        outs, grads = [], []
        for norm in (ours, theirs):
            xi = x.clone().requires_grad_(True)
            out = norm(xi)
            out.mul(upstream).sum().backward()
            outs.append(out)
            grads.append(xi.grad)
        assert torch.equal(outs[0], outs[1])  # PyTorch's kernel: the constant channel's output too
        varied = torch.ones(3, C, dtype=torch.bool)
        varied[0, 1] = False
        assert torch.equal(grads[0][varied], grads[1][varied])
        assert torch.equal(grads[0][0, 1], torch.zeros(6, 7))  # PyTorch's: 316 times the centred one
        assert grads[1][0, 1].abs().max() > 1
        if affine:
            assert torch.equal(ours.weight.grad, theirs.weight.grad)
            assert torch.equal(ours.bias.grad, theirs.bias.grad)


def test_instance_norm_double_backward_equals_pytorchs_and_keeps_the_dtype_under_amp():
    # the gradient penalties differentiate the input gradient again (create_graph=True)
    torch.manual_seed(0)
    x, upstream, direction = torch.randn(3, 2, C, 6, 7).unbind(0)
    ours, theirs = InstanceNorm2d(C, affine=True), nn.InstanceNorm2d(C, affine=True)
    results = []
    for norm in (ours, theirs):
        xi = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(norm(xi).mul(upstream).sum(), xi, create_graph=True)
        (second,) = torch.autograd.grad(grad.mul(direction).sum(), xi)
        results.append((grad, second))
    torch.testing.assert_close(results[0], results[1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ours(x.bfloat16()).dtype == torch.bfloat16
        assert ours(x).dtype == torch.float32


def _official_layer_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    """NVlabs/MUNIT networks.py LayerNorm.forward (batch > 1 branch)."""
    shape = [-1] + [1] * (x.dim() - 1)
    mean = x.view(x.size(0), -1).mean(1).view(*shape)
    std = x.view(x.size(0), -1).std(1).view(*shape)
    x = (x - mean) / (std + eps)
    return x * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def test_layer_norm_equals_munits_except_for_the_gradient_of_a_constant_sample():
    torch.manual_seed(0)
    norm = LayerNorm2d(C)
    x = torch.randn(2, C, 5, 5)
    x[1] = -0.3  # sample 1 constant (a flat image's feature maps), sample 0 varied
    upstream = torch.randn_like(x)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    ours, official = norm(xs[0]), _official_layer_norm(xs[1], norm.gamma, norm.beta)
    torch.testing.assert_close(ours, official)  # the constant sample's output too: beta
    ours.mul(upstream).sum().backward()
    official.mul(upstream).sum().backward()
    torch.testing.assert_close(xs[0].grad[0], xs[1].grad[0])
    assert torch.equal(xs[0].grad[1], torch.zeros_like(x[1]))  # official: 1e5 times the centred gradient


def test_iln_on_a_constant_channel_back_propagates_its_layer_part_only():
    # one constant channel in a varied sample: its instance part is flat, its layer part is not
    torch.manual_seed(0)
    norm = ILN(C)
    with torch.no_grad():
        norm.rho.fill_(0.5)
    x = torch.randn(1, C, 5, 5)
    x[0, 2] = 1.5
    upstream = torch.randn_like(x)
    ours_x, ref_x = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    norm(ours_x).mul(upstream).sum().backward()
    frozen = ref_x.clone()
    frozen[:, 2] = frozen[:, 2].detach()  # the flat channel's instance statistics carry no gradient
    eps = norm.eps
    instance_var, instance_mean = torch.var_mean(frozen, dim=(2, 3), correction=0, keepdim=True)
    instance = (frozen - instance_mean) / torch.sqrt(instance_var + eps)
    layer = (ref_x - ref_x.mean()) / torch.sqrt(ref_x.var(correction=0) + eps)
    (0.5 * instance + 0.5 * layer).mul(upstream).sum().backward()
    torch.testing.assert_close(ours_x.grad, ref_x.grad)


@pytest.mark.parametrize("model", ["munit", "unit", "ugatit"])
def test_a_flat_image_trains_with_finite_gradients(model):
    """One iteration's losses of the real model on a flat image (the cause of `the d loss is nan`
    on real photographs): every gradient finite, and far from float32's range."""
    cfg = compose_config([*FAST, *small_data(model, "shapes_color"), f"model={model}"])
    torch.manual_seed(0)
    built = build_model(cfg)
    size = cfg.data.image_size
    flat = torch.full((1, 3, size, size), 1.0)  # a saturated crop
    batch, carry = {"A": flat, "B": torch.rand(1, 3, size, size) * 2 - 1}, {}
    for update in built.updates(0):
        loss, _ = update.loss(batch, carry)
        loss.backward(retain_graph=True)
    grads = {name: p.grad for name, p in built.named_parameters() if p.grad is not None}
    assert grads and all(torch.isfinite(g).all() for g in grads.values())
    assert max(g.abs().max().item() for g in grads.values()) < 1e6  # before: 1e21 (UNIT) to inf/NaN
