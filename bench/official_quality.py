"""`make bench-official-quality OFFICIAL=<checkout>`: the official FUNIT trained on our quality recipe's
data and scored with our metrics, so a bar that our FUNIT misses can be told from a bug in it (issue 6).

Not run in CI and nothing official is in this repository: `--official` is the path of a checkout of
NVlabs/FUNIT made elsewhere, imported at run time (`bench.official.shim_old_apis` lets it run on
this torch, on the CPU). The official `Trainer` gets `configs/funit_animals.yaml` with the widths,
depths and class count of our recipe (`experiments/quality/funit.yaml` plus any overrides), so both
sides train networks of the same parameter count (checked, and reported); it trains with its own
`dis_update` / `gen_update` (RMSprop, R1 10, feature matching, its weight average `gen_test` after
every generator update, from the first iteration) on the episodes of our datamodule (the recipe's
batch size, K = 1 shot), for the recipe's number of iterations. Then both of its generators, the
live one and the average, are scored by the scenario's metrics on the whole test split, at the
recipe's K and at K = 1, as `make bench-quality` scores ours. Results:
`bench/results/official_quality_funit.json`.
"""

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

import torch
import yaml
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn

from bench.official import check_checkout, checkout_commit, shim_old_apis
from bench.quality import RESULTS, compose, score_one_shot
from i2i.callbacks.metrics import score_scenario
from i2i.cli import reporting_errors, source_commit
from i2i.train import build_model

OFFICIAL_KEYS = ("gen", "dis", "lr_gen", "lr_dis", "weight_decay", "gan_w", "r_w", "fm_w", "batch_size")


def official_config(checkout: Path, cfg: DictConfig) -> dict:
    """`configs/funit_animals.yaml` with the architecture and optimisation of our composed config."""
    model, loss = cfg.model, cfg.loss
    unsupported = {
        "model.class_encoder.dim": (model.class_encoder.dim, model.content_encoder.dim),  # one gen.nf
        "loss.fm_recon_w": (loss.fm_recon_w, loss.fm_class_w),  # one fm_w for both terms
        "loss.r1_w": (loss.r1_w, 10.0),  # hard-coded in funit_model.py
        "loss.gan_mode": (loss.gan_mode, "hinge"),
        "data.train_shots": (cfg.data.train_shots, 1),  # one class image per content image
        "model.optimizers.discriminator.weight_decay": (
            model.optimizers.discriminator.weight_decay,
            model.optimizers.generator.weight_decay,
        ),  # one weight_decay
        "model.scheduler": (model.scheduler, None),  # no lr_policy in funit_animals.yaml
    }
    unsupported |= {
        f"model.optimizers.{net}._target_": (model.optimizers[net]._target_, "torch.optim.RMSprop")
        for net in ("generator", "discriminator")
    }
    for key, (value, official) in unsupported.items():
        if value != official:
            raise ValueError(f"{key}={value}: the official code can only run with {official} here")
    config = yaml.safe_load((checkout / "configs" / "funit_animals.yaml").read_text())
    config["gen"] |= {
        "nf": model.content_encoder.dim,
        "n_res_blks": model.content_encoder.n_res,
        "n_downs_content": model.content_encoder.n_downsample,
        "n_downs_class": model.class_encoder.n_downsample,
        "latent_dim": model.class_encoder.style_dim,
        "nf_mlp": model.mlp.hidden_dim,
        "n_mlp_blks": model.mlp.n_blocks,
    }
    config["dis"] |= {
        "nf": model.discriminator.nf,
        "n_res_blks": model.discriminator.n_res_blocks,
        "num_classes": cfg.data.num_train_classes,
    }
    config |= {
        # the official Trainer builds the discriminator's RMSprop with lr_gen and the generator's with lr_dis
        "lr_gen": model.optimizers.discriminator.lr,
        "lr_dis": model.optimizers.generator.lr,
        "weight_decay": model.optimizers.generator.weight_decay,
        "gan_w": loss.gan_w,
        "r_w": loss.recon_w,
        "fm_w": loss.fm_class_w,
        "batch_size": cfg.data.batch_size,
    }
    return config


class OfficialTranslator:
    """One of the official generators behind our `FewShotTranslator` ability (`i2i.abilities`): the
    class code is the mean of the K shots' codes, as the official `translate_k_shot`."""

    device = torch.device("cpu")

    def __init__(self, generator: nn.Module) -> None:
        self.generator = generator

    @torch.inference_mode()
    def translate_to_class(self, x: Tensor, class_images: Tensor) -> Tensor:
        batch, shots = class_images.shape[:2]
        codes = self.generator.enc_class_model(class_images.flatten(0, 1))
        return self.generator.decode(self.generator.enc_content(x), codes.view(batch, shots, -1).mean(dim=1))


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train_official(checkout: Path, overrides: list[str], seed: int = 0) -> dict:
    cfg = compose("funit", overrides, run_name="official_quality_funit")
    config = official_config(checkout, cfg)
    shim_old_apis()
    sys.path.insert(0, str(checkout))
    from trainer import Trainer

    torch.manual_seed(seed)
    official = Trainer(config)
    ours = build_model(cfg)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    iterations, start = 0, time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        while iterations < cfg.trainer.max_steps:
            for batch in datamodule.train_dataloader():
                content = (batch["content"], batch["content_label"])
                shot = (batch["class_images"][:, 0], batch["class_label"])
                official.dis_update(content, shot, config)
                official.gen_update(content, shot, config, False)
                iterations += 1
                if iterations == cfg.trainer.max_steps:
                    break
    train_seconds = time.perf_counter() - start
    official.eval()
    scenario = datamodule.scenario
    generators = (("live", official.model.gen), ("average", official.model.gen_test))
    metrics = {
        name: score_scenario(scenario, OfficialTranslator(g), scenario.num_test) for name, g in generators
    }
    one_shot = {name: score_one_shot(scenario, OfficialTranslator(g)) for name, g in generators}
    return {
        "model": "funit",
        "recipe": "experiments/quality/funit.yaml",
        "overrides": overrides,
        "iterations": iterations,
        "train_seconds": round(train_seconds, 1),
        "metrics": metrics,
        "metrics_1_shot": one_shot,
        "parameters": {
            "official_generator": parameter_count(official.model.gen),
            "official_discriminator": parameter_count(official.model.dis),
            "ours_generator": parameter_count(ours.G),
            "ours_discriminator": parameter_count(ours.D),
        },
        "official_config": {key: config[key] for key in OFFICIAL_KEYS},
        "official_commit": checkout_commit(checkout),
        "commit": source_commit(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, type=Path, help="path of a checkout of NVlabs/FUNIT")
    parser.add_argument("--seed", type=int, default=0, help="the official networks' initialisation")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides of the recipe, e.g. trainer.max_steps=4000"
    )
    args = parser.parse_args()
    checkout = args.official.expanduser().resolve()
    try:
        check_checkout("funit", checkout)
    except ValueError as error:
        parser.error(str(error))
    report = train_official(checkout, args.overrides, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "official_quality_funit.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    for generator, metrics in report["metrics"].items():
        print(f"official {generator:8s} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        one_shot = report["metrics_1_shot"][generator] or {}
        print(f"  1 shot {generator:8s} " + "  ".join(f"{k} {v:.3f}" for k, v in one_shot.items()))
    print(f"{report['iterations']} iterations in {report['train_seconds'] / 60:.1f} min; report: {path}")


if __name__ == "__main__":
    with reporting_errors():
        main()
