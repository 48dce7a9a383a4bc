"""`i2i-translate`: translate a folder of images with a trained checkpoint.

    i2i-translate ckpt_path=run/checkpoints/last.ckpt input_dir=photos output_dir=out direction=AtoB

`save_attention=true` also writes `<input name>_attention.png` beside each output: the generator's
attention map in the jet colour map (models with `attention_maps`, e.g. U-GAT-IT's CAM heatmap).
"""

import logging
from pathlib import Path
from typing import Any

import hydra
import torch
import torchvision.transforms.functional as TF
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torchvision.utils import save_image

from i2i.cli import reporting_errors
from i2i.data.folder import list_images
from i2i.errors import CheckpointError, ConfigError, DataError, check_choice, check_positive
from i2i.models.base import TranslationModule, heatmap_rgb
from i2i.types import DIRECTIONS

log = logging.getLogger("i2i")


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(checkpoint, the run config inside it), loaded with `weights_only=True`; clear errors for a
    missing file, a file that is not a PyTorch checkpoint, and a checkpoint not written by i2i."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(error).__name__})") from error
    config = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(config, dict) or "model" not in config or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not an i2i checkpoint (no i2i run config in it); train one with i2i-train")
    return checkpoint, config


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[TranslationModule, dict[str, Any]]:
    """The trained model of an i2i checkpoint, in eval mode on `device`, and its run config."""
    checkpoint, config = load_checkpoint(path)
    build = instantiate(config["model"], _partial_=True, _convert_="all")
    model = build(loss=instantiate(config["loss"]))
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not match the model in its config ({error})") from error
    return model.to(device).eval(), config


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def translate_folder(
    model: TranslationModule,
    input_dir: Path,
    output_dir: Path,
    direction: str,
    image_size: int,
    batch_size: int,
    save_attention: bool = False,
) -> list[Path]:
    """Translate every image of `input_dir` into `<output_dir>/<input name>.png` (and, with
    `save_attention`, its attention map into `<input name>_attention.png`); returns the files written."""
    if save_attention and not model.has_attention_maps():
        raise ConfigError("save_attention", True, f"{type(model).__name__} has no attention maps to save")
    files = list_images(input_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        batch = torch.stack([load_image(path, image_size) for path in chunk]).to(model.device)
        outputs = {"": model.translate(batch, direction)}
        if save_attention:
            outputs["_attention"] = heatmap_rgb(model.attention_maps(batch, direction))
        for suffix, images in outputs.items():
            for path, image in zip(chunk, images):
                target = output_dir / f"{path.stem}{suffix}.png"
                save_image((image.float().cpu().clamp(-1, 1) + 1) / 2, target)
                written.append(target)
    return written


def load_image(path: Path, size: int) -> torch.Tensor:
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except OSError as error:
        raise DataError(f"cannot read image {path}: {error}") from error
    return TF.to_tensor(TF.resize(rgb, [size, size], TF.InterpolationMode.BICUBIC)) * 2 - 1


@hydra.main(version_base="1.3", config_path="pkg://i2i.conf", config_name="translate")
def _main(cfg: DictConfig) -> None:
    with reporting_errors():
        OmegaConf.resolve(cfg)
        check_choice("direction", cfg.direction, DIRECTIONS)
        check_positive("batch_size", cfg.batch_size)
        model, config = load_model(cfg.ckpt_path, resolve_device(cfg.device))
        size = cfg.image_size or config["data"]["image_size"]
        written = translate_folder(
            model, Path(cfg.input_dir), Path(cfg.output_dir), cfg.direction, size, cfg.batch_size, cfg.save_attention
        )
        log.info("wrote %d images to %s", len(written), cfg.output_dir)


def main() -> None:
    """Console entry point of `i2i-translate`."""
    _main()


if __name__ == "__main__":
    main()
