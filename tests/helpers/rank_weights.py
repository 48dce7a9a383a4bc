"""A callback the DDP tests add by config (`+callbacks.rank_weights=...`, with this folder on
PYTHONPATH): every rank saves its own weights, so a test can compare the ranks."""

from pathlib import Path

import pytorch_lightning as pl
import torch


class SaveRankWeights(pl.Callback):
    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        state = {"iteration": pl_module.iteration, "state_dict": pl_module.state_dict()}
        torch.save(state, self.dirpath / f"rank{trainer.global_rank}.pt")
