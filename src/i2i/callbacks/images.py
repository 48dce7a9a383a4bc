"""Sample grids of the model's translations of fixed test images."""

from pathlib import Path

import pytorch_lightning as pl
import torch
from PIL import Image
from torchvision.utils import make_grid

from i2i.abilities import SampleGrid
from i2i.callbacks.periodic import EveryNIterations, evaluating
from i2i.errors import ConfigError, check_positive
from i2i.loggers import log_image
from i2i.metrics.protocols import to_uint8


class ImageGrid(EveryNIterations):
    """One PNG per run: a row per named row of the model's `sample_rows` (`i2i.abilities.SampleGrid`;
    e.g. real_A / fake_B / cycle_A / real_B / fake_A / cycle_B), a column per fixed test input. The
    inputs are the datamodule's `sample_inputs` (test images per domain, or few-shot evaluation
    episodes). Rank 0 writes `<dirpath>/iter_<n>.png`; the row names go to `<dirpath>/rows.txt`. The
    same pixels go to the active loggers that store images (W&B, TensorBoard) under the key `samples`."""

    def __init__(self, dirpath: str, every_n_iterations: int, n_images: int = 8) -> None:
        super().__init__(every_n_iterations, "image_grid")
        check_positive("callbacks.image_grid.n_images", n_images)
        self.dirpath = Path(dirpath)
        self.n_images = n_images
        self.last_path: Path | None = None

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if not isinstance(pl_module, SampleGrid):
            name = type(pl_module).__name__
            raise ConfigError("callbacks.image_grid", name, "this model shows no sample grid")
        inputs = trainer.datamodule.sample_inputs(self.n_images)
        images = {name: tensor.to(pl_module.device) for name, tensor in inputs.items()}
        with evaluating(pl_module):
            rows = pl_module.sample_rows(images)
        grid = make_grid(torch.cat([row.float().cpu() for _, row in rows]), nrow=self.n_images, padding=2)
        # The PNG and every logger get the same integers (W&B turns a float tensor into zeros).
        pixels = to_uint8(grid).permute(1, 2, 0).contiguous()
        self.dirpath.mkdir(parents=True, exist_ok=True)
        self.last_path = self.dirpath / f"iter_{pl_module.iteration:07d}.png"
        Image.fromarray(pixels.numpy()).save(self.last_path)
        (self.dirpath / "rows.txt").write_text("\n".join(name for name, _ in rows) + "\n")
        caption = "rows: " + ", ".join(name for name, _ in rows)
        log_image(trainer.loggers, "samples", pixels, pl_module.iteration, caption)
