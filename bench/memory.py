"""Peak resident memory of training iterations, as the reference measurements count it.

    flock /tmp/i2i-cpu.lock .venv/bin/python -m bench.memory model=ugatit preset=paper \\
        data=shapes_geometry data.image_size=256 model.generator.light=false

Trains `--iterations` iterations (default 1) of the composed config at batch 1 through the real
spine (Lightning, `train(cfg)`), without callbacks or loggers, in this process, and reports
`getrusage(RUSAGE_SELF).ru_maxrss`: the same counter as research/reference_perf.md, so the
~0.5 GiB of `import torch` is included. The official U-GAT-IT full model at 256 px peaked at
20,087 MiB there. Writes bench/results/memory_<model>.json. Takes minutes for the full model;
not part of the test suite.
"""

import argparse
import json
import resource
import time

import torch
from hydra import compose, initialize_config_module
from omegaconf import open_dict

from bench.quality import RESULTS, git_commit
from i2i.train import train

QUIET = [
    "~callbacks.checkpoint",
    "~callbacks.image_grid",
    "~callbacks.synthetic_metrics",
    "~callbacks.progress_bar",
    "~logger",
    "print_config=false",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "data.batch_size=1",
]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the train config")
    args = parser.parse_args()
    with initialize_config_module(version_base="1.3", config_module="i2i.conf"):
        cfg = compose("train", overrides=[*QUIET, f"trainer.max_steps={args.iterations}", *args.overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(RESULTS / "runs" / "memory")
        if "num_train" in cfg.data.domains:  # synthetic data: render only what the run reads
            cfg.data.domains.num_train, cfg.data.domains.num_test = 2 * args.iterations, 1
    before = peak_rss_mib()
    start = time.perf_counter()
    _, objects = train(cfg)
    seconds = time.perf_counter() - start
    model = objects["model"]
    report = {
        "overrides": args.overrides,
        "iterations": model.iteration,
        "image_size": cfg.data.image_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "peak_rss_mib_before_training": round(before, 1),
        "seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "commit": git_commit(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"memory_{cfg.model._target_.rsplit('.', 1)[-1].lower()}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
