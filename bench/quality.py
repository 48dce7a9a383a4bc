"""`make bench-quality MODEL=<model> [ALSO=<baseline>]`: train a model's quality recipe, check its bar.

Runs the model's quality recipe, `experiments/quality/<model>.yaml`, in this process, scores the
final model on the scenario's whole test split, and writes `bench/results/quality_<model>.json`
(metrics, bar, pass/fail, iterations, wall time, git commit, and the machine's speed on a fixed conv
kernel just before and just after training: the same run's wall time has varied by 1.6x on this
shared machine, and these readings tell a slow machine from slow code. Compare each reading with its
counterpart of another run, not with each other: the one after training runs in a warmed-up process
and reads higher). Exits 1 when the bar is not met. `--also <baseline>` then trains the baseline's
own quality recipe on the same data (the papers' comparisons, e.g. CycleGAN on U-GAT-IT's
shapes_geometry) and reports its metrics beside the model's in the same file; a baseline that trains
on another kind of data (MUNIT, unpaired, beside LOMIT, attributes) gets the same scenario
(`data.domains`) and image size through its own datamodule.
"""

import argparse
import copy
import json
import logging
import sys
import time
from pathlib import Path

import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class
from omegaconf import open_dict

from bench.speed import conv_peak
from i2i.callbacks.metrics import score_scenario
from i2i.callbacks.periodic import evaluating
from i2i.cli import reporting_errors, silence_lightning_advertising, source_commit
from i2i.data.synthetic.fewshot import ShapesFewShot
from i2i.train import train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

# DESIGN §6: the minimum (or, for errors, maximum) each metric must reach, in both directions.
BARS: dict[str, dict[str, tuple[str, float]]] = {
    "cyclegan": {"content_iou": (">=", 0.85), "domain_acc": (">=", 0.90)},
    "unit": {"content_iou": (">=", 0.85), "domain_acc": (">=", 0.90)},
    "munit": {"content_iou": (">=", 0.85), "domain_acc": (">=", 0.90), "mode_coverage": (">=", 0.90)},
    # DRIT++ on shapes_color for its modes; its instance_iou bar is scored on shapes_instances (the
    # drit_instances recipe, or as DUNIT's baseline: only the metrics a run scores are checked)
    "drit": {
        "content_iou": (">=", 0.80),
        "domain_acc": (">=", 0.90),
        "mode_coverage": (">=", 0.90),
        "instance_iou": (">=", 0.80),
    },
    "drit_instances": {"domain_acc": (">=", 0.90), "instance_iou": (">=", 0.80)},
    # on shapes_instances, beside its global branch (--also drit_instances); by size: reported, not barred
    "dunit": {"domain_acc": (">=", 0.90), "instance_iou": (">=", 0.80), "instance_acc": (">=", 0.80)},
    # on shapes_fewshot's unseen classes, K = 5 (few-shot metrics have no direction suffix)
    "funit": {"class_acc": (">=", 0.80), "content_iou": (">=", 0.80)},
    "coco_funit": {"class_acc": (">=", 0.80), "content_iou": (">=", 0.80)},
    "ugatit": {"shape_acc": (">=", 0.80), "centroid_err": ("<=", 2.0)},
    # one-sided: the bar of its one direction (CUT: CycleGAN's; FastCUT on shapes_geometry: U-GAT-IT's)
    "cut": {"content_iou": (">=", 0.85), "domain_acc": (">=", 0.90)},
    "fastcut": {"shape_acc": (">=", 0.80), "centroid_err": ("<=", 2.0)},
    "lomit": {"domain_acc": (">=", 0.90), "bg_err": ("<=", 0.05)},
    "tunit": {"cluster_nmi": (">=", 0.80), "domain_acc": (">=", 0.80)},
}


def recipe(model: str) -> str:
    """The `experiment` name of the model's quality recipe (experiments/quality/<model>.yaml)."""
    return f"quality/{model}"


def compose(model: str, overrides: list[str], run_name: str | None = None):
    """The model's quality recipe with `overrides`, writing into a new run directory
    bench/results/runs/<run_name>_<time>: a benchmark trains from scratch, and each run keeps its own
    checkpoints and logs (a re-run neither resumes nor overwrites the previous one)."""
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="i2i.conf"):
        cfg = hydra_compose("train", overrides=[f"experiment={recipe(model)}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(new_run_directory(run_name or f"quality_{model}"))
    return cfg


def new_run_directory(name: str) -> Path:
    """bench/results/runs/<name>_<UTC time>, with a counter when that exists already."""
    stem = RESULTS / "runs" / f"{name}_{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    path, copies = stem, 1
    while path.exists():
        copies += 1
        path = stem.with_name(f"{stem.name}.{copies}")
    return path


def check(metrics: dict[str, float], bar: dict[str, tuple[str, float]]) -> dict[str, bool]:
    """Each `<metric>_<direction>` (or direction-free `<metric>`) result checked against its bar."""
    verdicts = {}
    for key, value in metrics.items():
        name = key if key in bar else key.rsplit("_", 1)[0]
        if name in bar:
            op, threshold = bar[name]
            verdicts[key] = value >= threshold if op == ">=" else value <= threshold
    return verdicts


def machine_gflops() -> float:
    """GFLOP/s of the machine-reference conv kernel (`bench.speed.conv_peak`, NCHW) right now."""
    return round(conv_peak(repeats=20)["conv_peak_gflops_nchw"], 1)


def train_and_score(cfg) -> dict:
    """Train `cfg`, then score the final model on every test image of its scenario."""
    gflops_before = machine_gflops()
    start = time.perf_counter()
    _, objects = train(cfg)
    train_seconds = time.perf_counter() - start
    gflops_after = machine_gflops()
    scenario, model = objects["datamodule"].scenario, objects["model"]
    with evaluating(model):
        metrics = score_scenario(scenario, model, scenario.num_test)
        one_shot = score_one_shot(scenario, model)
    return {
        "run_directory": cfg.paths.output_dir,
        "iterations": model.iteration,
        "train_seconds": round(train_seconds, 1),
        "machine_conv_gflops": {"before": gflops_before, "after": gflops_after},
        "n_test_images": scenario.num_test,
        "metrics": metrics,
        **({"metrics_1_shot": one_shot} if one_shot else {}),
    }


def score_one_shot(scenario, model) -> dict[str, float] | None:
    """A few-shot scenario's metrics with K = 1 shot per episode (the recipe's K is scored in
    `metrics`): the 1-shot column beside K = 5. None for the other scenarios. Not checked against the
    bar, which is set at the recipe's K."""
    if not isinstance(scenario, ShapesFewShot) or scenario.shots == 1:
        return None
    one_shot = copy.copy(scenario)
    one_shot.shots = 1  # the same episodes and images, each with its first shot only
    return score_scenario(one_shot, model, scenario.num_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(BARS))
    parser.add_argument("--also", action="append", default=[], help="a baseline trained on the same data")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. trainer.max_steps=100")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    silence_lightning_advertising()
    cfg = compose(args.model, args.overrides)
    result = train_and_score(cfg)
    metrics = result["metrics"]
    verdicts = check(metrics, BARS[args.model])
    baselines = {}
    for baseline in args.also:
        baseline_cfg = compose(baseline, args.overrides, run_name=f"quality_{args.model}_vs_{baseline}")
        with open_dict(baseline_cfg):
            if get_class(baseline_cfg.data._target_).kind == get_class(cfg.data._target_).kind:
                baseline_cfg.data = cfg.data
            else:  # the same scenario through the baseline's own kind of datamodule (MUNIT beside LOMIT)
                baseline_cfg.data.domains = cfg.data.domains
                baseline_cfg.data.image_size = cfg.data.image_size
        baselines[baseline] = train_and_score(baseline_cfg)
        if baseline in BARS:  # its own bar on this data, where the data scores its metrics
            baselines[baseline]["passed"] = check(baselines[baseline]["metrics"], BARS[baseline])
    report = {
        "model": args.model,
        "recipe": f"experiments/{recipe(args.model)}.yaml",
        "overrides": args.overrides,
        "data": cfg.data.domains._target_,
        **result,
        "bar": {k: f"{op} {v}" for k, (op, v) in BARS[args.model].items()},
        "passed": verdicts,
        "all_passed": all(verdicts.values()),
        "baselines_on_the_same_data": baselines,
        "commit": source_commit(),
        "torch_threads": torch.get_num_threads(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"quality_{args.model}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    for key, value in metrics.items():
        status = {True: "PASS", False: "FAIL"}.get(verdicts.get(key), "    ")
        print(f"{status}  {key:24s} {value:.4f}")
    for key, value in result.get("metrics_1_shot", {}).items():
        print(f"      1 shot: {key:24s} {value:.4f}")
    for baseline, baseline_result in baselines.items():
        for key, value in baseline_result["metrics"].items():
            print(f"      {baseline}: {key:24s} {value:.4f}")
    machine = result["machine_conv_gflops"]
    print(
        f"{result['iterations']} iterations in {result['train_seconds'] / 60:.1f} min (reference conv "
        f"{machine['before']} GFLOP/s before, {machine['after']} after); report: {path}"
    )
    sys.exit(0 if report["all_passed"] else 1)


if __name__ == "__main__":
    with reporting_errors():
        main()
