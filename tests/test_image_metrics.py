"""The KID/FID callback in a training run: logged values, the JSON report, lean checkpoints, DDP."""

import csv
import json
from dataclasses import replace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_metrics_real import SETTINGS, Shifter, smooth_images

from i2i.metrics.protocols import Evaluator
from i2i.train import train

IMAGE_METRICS = [
    "callbacks=image_metrics",
    "callbacks.image_metrics.every_n_iterations=2",
    "callbacks.image_metrics.n_images=2",
    "trainer.max_steps=2",
    "metrics.allow_unpublished_weights=true",  # the random stand-ins of metric_weights.py
]


@pytest.mark.slow
def test_callback_logs_reports_and_keeps_the_networks_out_of_the_checkpoint(
    make_cfg, tmp_path, metric_weights_home, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(metric_weights_home))
    _, objects = train(make_cfg("model=cyclegan", *IMAGE_METRICS))
    report = json.loads((tmp_path / "image_metrics.json").read_text())
    assert [s["metric"] for s in report["scores"]] == ["fid_AtoB", "kid_AtoB", "fid_BtoA", "kid_BtoA"]
    kid = report["scores"][1]
    assert (
        kid["n_images"] == 2
        and kid["extractor"] == "inception-v3-compat"
        and len(kid["weights_sha256"]) == 64
    )
    assert "2 translations vs 2 real images of domain B" in kid["protocol"]
    assert report["history"][0]["iteration"] == 2
    with (tmp_path / "csv" / "metrics.csv").open() as file:
        logged = [row for row in csv.DictReader(file) if row["val/kid_AtoB"]]
    assert float(logged[-1]["val/fid_AtoB"]) == pytest.approx(report["scores"][0]["value"])

    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    model_keys = set(objects["model"].state_dict())
    assert set(checkpoint["state_dict"]) == model_keys
    assert not any(
        name in key for key in model_keys for name in ("inception", "Mixed_", "lpips", "fid", "kid")
    )
    assert not any(
        isinstance(v, torch.Tensor) for state in checkpoint["callbacks"].values() for v in state.values()
    )


def _score_shard(rank: int, world_size: int, rendezvous: str, output: str) -> None:
    """One DDP rank: score the shared fixed images through the Evaluator, as the callback does."""
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        torch.set_num_threads(1)
        images = {"A": smooth_images(6, 0, -0.5), "B": smooth_images(6, 1, 0.5)}
        evaluator = Evaluator(replace(SETTINGS, extractor="proxy", kid_max_subset_size=4))
        scores = evaluator.evaluate(Shifter(shift=0.3, style_gap=0.2), images, rank, world_size)
        torch.save({s.metric: s.value for s in scores}, f"{output}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_give_the_numbers_of_one_process(tmp_path):
    images = {"A": smooth_images(6, 0, -0.5), "B": smooth_images(6, 1, 0.5)}
    settings = replace(SETTINGS, extractor="proxy", kid_max_subset_size=4)  # subsets smaller than the set
    single = {
        s.metric: s.value for s in Evaluator(settings).evaluate(Shifter(shift=0.3, style_gap=0.2), images)
    }
    output = str(tmp_path / "scores")
    mp.spawn(_score_shard, args=(2, str(tmp_path / "rendezvous"), output), nprocs=2, join=True)
    for rank in range(2):
        ranked = torch.load(f"{output}.{rank}", weights_only=True)
        assert ranked.keys() == single.keys()
        for key, value in single.items():
            assert ranked[key] == pytest.approx(value, rel=1e-5, abs=1e-7), (rank, key)
