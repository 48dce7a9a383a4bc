"""Precision and memory layout for every model in conf/model/: a bf16-mixed channels_last training
step on the CPU, channels_last translations equal to NCHW ones, and fp16 loss scaling with the
gradients clipped after unscaling."""

import pytest
import torch
from conftest import TRAIN_DATA, small_data
from hydra.utils import get_class, instantiate
from omegaconf import open_dict
from test_configs import MODELS, options

from i2i.train import build_model, train


def synthetic_data_for(model: str, make_cfg) -> str:
    """The first synthetic data config whose kind is the one `model` trains on (TRAIN_DATA's, if any)."""
    if model in TRAIN_DATA:
        return TRAIN_DATA[model]
    kind = get_class(make_cfg(f"model={model}").model._target_).data_kind
    for data in options("data"):
        if data.startswith("shapes") and get_class(make_cfg(f"data={data}").data._target_).kind == kind:
            return data
    raise AssertionError(f"no synthetic data config of kind {kind!r} for {model}")


# One iteration on the smallest data, nothing but the training step.
STEP = [
    "trainer.max_steps=1",
    "~callbacks",
    "~logger",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
    "print_config=false",
]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_a_bf16_mixed_channels_last_step_on_cpu(make_cfg, model):
    data = synthetic_data_for(model, make_cfg)
    overrides = [
        f"model={model}",
        f"data={data}",
        "trainer.precision=bf16-mixed",
        "++model.channels_last=true",
    ]
    cfg = make_cfg(*overrides, *STEP, *small_data(model, data), fast=False)
    _, objects = train(cfg)
    trained = objects["model"]
    assert trained.iteration == 1 and trained.skipped_updates == 0
    assert all(torch.isfinite(p).all() for p in trained.parameters())
    convs = [p for p in trained.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)


@pytest.mark.parametrize("model", MODELS)
def test_channels_last_translations_equal_nchw_ones(make_cfg, model):
    data = synthetic_data_for(model, make_cfg)
    cfg = make_cfg(f"model={model}", f"data={data}")
    built = build_model(cfg).eval()
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup()
    inputs = datamodule.sample_inputs(2)  # every translation of an image grid, through the model's translate
    with torch.random.fork_rng():
        torch.manual_seed(0)
        nchw = built.sample_rows(inputs)
    built.channels_last = True
    built.to(memory_format=torch.channels_last)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        channels_last = built.sample_rows(built._prepared(inputs))
    assert [name for name, _ in channels_last] == [name for name, _ in nchw]
    # Equal up to float32 summation order (measured: at most 6e-5 on images in [-1, 1] after two
    # passes through a generator); a layout bug would move pixels by whole units.
    for (name, row), (_, expected) in zip(channels_last, nchw):
        torch.testing.assert_close(row, expected, rtol=0, atol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


def test_fp16_loss_scaling_clips_the_unscaled_gradients(make_cfg, monkeypatch):
    """With a loss scale of 256, clipping the scaled gradients would leave norms 256 times below the
    limit; the norms the optimizer steps with must be the limit itself. (Steps whose gradients
    overflowed are skipped by the scaler, as they should be.)"""
    seen = []
    real_step = torch.amp.GradScaler.step

    def recording_step(self, optimizer, *args, **kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item()
        seen.append((self.get_scale(), norm))
        return real_step(self, optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.amp.GradScaler, "step", recording_step)
    overrides = ["model=cyclegan", *STEP, *small_data("cyclegan", "shapes_color"), "trainer.max_steps=3"]
    cfg = make_cfg(*overrides, "model.gradient_clip_val=0.01", fast=False)
    with open_dict(cfg):
        cfg.trainer.precision = None
        cfg.trainer.plugins = [
            {
                "_target_": "pytorch_lightning.plugins.precision.MixedPrecision",
                "precision": "16-mixed",
                "device": "cpu",
                "scaler": {"_target_": "torch.amp.GradScaler", "device": "cpu", "init_scale": 256.0},
            }
        ]
    train(cfg)
    assert len(seen) == 6  # two updates per iteration
    stepped = [(scale, norm) for scale, norm in seen if torch.isfinite(torch.tensor(norm))]
    assert stepped and all(scale > 1 for scale, _ in stepped)
    for _, norm in stepped:
        assert norm == pytest.approx(0.01, rel=1e-3)
