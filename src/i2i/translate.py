"""`i2i-translate`: translate a folder of images with a trained checkpoint.

    i2i-translate ckpt_path=run/checkpoints/last.ckpt input_dir=photos output_dir=out direction=AtoB

Exemplar-guided models (LOMIT, trained on attribute data) translate every input towards one
exemplar and take user masks (white = translate here) in place of the predicted ones; the masks
they predicted are written beside each output as `<name>_mask.png` and `<name>_exemplar_mask.png`:

    i2i-translate ckpt_path=... input_dir=faces output_dir=out exemplar=blond.jpg \
        [input_mask=mask.png | input_mask=<folder of <name>.png>] [exemplar_mask=blond_hair.png]
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
from i2i.models.base import TranslationModule
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
    model: TranslationModule, input_dir: Path, output_dir: Path, direction: str, image_size: int, batch_size: int
) -> list[Path]:
    """Translate every image of `input_dir` into `<output_dir>/<input name>.png`; returns the outputs."""
    files = list_images(input_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        batch = torch.stack([load_image(path, image_size) for path in chunk]).to(model.device)
        for path, image in zip(chunk, model.translate(batch, direction)):
            target = output_dir / f"{path.stem}.png"
            save_image((image.float().cpu().clamp(-1, 1) + 1) / 2, target)
            written.append(target)
    return written


def translate_folder_towards(
    model: TranslationModule,
    input_dir: Path,
    output_dir: Path,
    image_size: int,
    batch_size: int,
    exemplar: Path,
    input_mask: Path | None = None,
    exemplar_mask: Path | None = None,
) -> list[Path]:
    """Translate every image of `input_dir` towards `exemplar` into `<output_dir>/<input name>.png`.

    `input_mask` is one mask for every input or a folder of masks named like the inputs; a mask
    not given is predicted and written as `<input name>_mask.png` / `<input name>_exemplar_mask.png`
    (the exemplar's mask depends on the input it is paired with). Returns the translations.
    """
    files = list_images(input_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    reference = load_image(exemplar, image_size)[None].to(model.device)
    reference_mask = load_mask(exemplar_mask, image_size)[None] if exemplar_mask else None
    written = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        batch = torch.stack([load_image(path, image_size) for path in chunk]).to(model.device)
        masks = None
        if input_mask is not None:
            paths = [input_mask / f"{p.stem}.png" if input_mask.is_dir() else input_mask for p in chunk]
            masks = torch.stack([load_mask(path, image_size) for path in paths])
        outputs, masks, reference_masks = model.translate_with_masks(batch, reference, masks, reference_mask)
        for i, path in enumerate(chunk):
            written.append(output_dir / f"{path.stem}.png")
            save_image((outputs[i].float().cpu().clamp(-1, 1) + 1) / 2, written[-1])
            if input_mask is None:
                save_image(masks[i].float().cpu(), output_dir / f"{path.stem}_mask.png")
            if exemplar_mask is None:
                save_image(reference_masks[i].float().cpu(), output_dir / f"{path.stem}_exemplar_mask.png")
    return written


def load_mask(path: Path, size: int) -> torch.Tensor:
    """A mask image as (1, size, size) in [0, 1]: white (1) where to translate."""
    return _read(path, size, "L", TF.InterpolationMode.BILINEAR, "mask")


def load_image(path: Path, size: int) -> torch.Tensor:
    return _read(path, size, "RGB", TF.InterpolationMode.BICUBIC, "image") * 2 - 1


def _read(path: Path, size: int, mode: str, interpolation: TF.InterpolationMode, what: str) -> torch.Tensor:
    try:
        with Image.open(path) as image:
            converted = image.convert(mode)
    except OSError as error:
        raise DataError(f"cannot read {what} {path}: {error}") from error
    return TF.to_tensor(TF.resize(converted, [size, size], interpolation))


@hydra.main(version_base="1.3", config_path="pkg://i2i.conf", config_name="translate")
def _main(cfg: DictConfig) -> None:
    with reporting_errors():
        OmegaConf.resolve(cfg)
        check_choice("direction", cfg.direction, DIRECTIONS)
        check_positive("batch_size", cfg.batch_size)
        model, config = load_model(cfg.ckpt_path, resolve_device(cfg.device))
        size = cfg.image_size or config["data"]["image_size"]
        keys = ("exemplar", "input_mask", "exemplar_mask")
        guidance = {key: Path(cfg[key]) if cfg.get(key) else None for key in keys}
        name = type(model).__name__
        if model.data_kind == "attributes":
            if guidance["exemplar"] is None:
                raise ConfigError("exemplar", None, f"{name} translates towards an exemplar; pass exemplar=<image>")
            written = translate_folder_towards(
                model, Path(cfg.input_dir), Path(cfg.output_dir), size, cfg.batch_size, **guidance
            )
        else:
            for key, value in guidance.items():
                if value is not None:
                    raise ConfigError(key, str(value), f"{name} takes no exemplar or masks; drop it")
            written = translate_folder(
                model, Path(cfg.input_dir), Path(cfg.output_dir), cfg.direction, size, cfg.batch_size
            )
        log.info("wrote %d images to %s", len(written), cfg.output_dir)


def main() -> None:
    """Console entry point of `i2i-translate`."""
    _main()


if __name__ == "__main__":
    main()
