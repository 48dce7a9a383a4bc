"""`i2i-translate`: translate a folder of images with a trained checkpoint.

    i2i-translate ckpt_path=run/checkpoints/last.ckpt input_dir=photos output_dir=out direction=AtoB
    i2i-translate ... n_styles=5 style_seed=0       # multimodal: 5 PNGs per input, <name>_s{j}.png
    i2i-translate ... reference=style.jpg           # multimodal: every output in that image's style

Few-shot models (FUNIT, COCO-FUNIT) translate to the class shown by example images instead of a
direction: `class_dir=<folder of K images of the class> [k=<use the first k>]`.

`save_attention=true` also writes `<input name>_attention.png` beside each output: the generator's
attention map in the jet colour map (models with `attention_maps`, e.g. U-GAT-IT's CAM heatmap).

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
from i2i.models.base import TranslationModule, heatmap_rgb
from i2i.types import DIRECTIONS

log = logging.getLogger("i2i")


def read_checkpoint(path: str | Path) -> Any:
    """The contents of a PyTorch file, loaded on the CPU with `weights_only=True`; clear errors for a
    missing file and a file that is not a PyTorch checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(error).__name__})") from error


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(checkpoint, the run config inside it); clear errors as `read_checkpoint`, and for a checkpoint
    not written by i2i."""
    checkpoint = read_checkpoint(path)
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
    model.iteration = checkpoint.get("i2i", {}).get("iteration", 0)
    return model.to(device).eval(), config


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def style_options(
    model: TranslationModule, n_styles: int | None, style_seed: int | None, reference: str | None, image_size: int
) -> dict[str, Any]:
    """The `translate` options of the style keys, refused for a unimodal model or when combined."""
    given = {"n_styles": n_styles, "style_seed": style_seed, "reference": reference}
    given = {key: value for key, value in given.items() if value is not None}
    if not given:
        return {}
    if not model.multimodal:
        key, value = next(iter(given.items()))
        why = f"{type(model).__name__} is unimodal (one translation per input); only multimodal models take styles"
        raise ConfigError(key, value, why)
    if n_styles is not None and reference is not None:
        raise ConfigError("reference", reference, "give either n_styles (sampled styles) or reference, not both")
    if n_styles is not None:
        check_positive("n_styles", n_styles)
    options: dict[str, Any] = {"n_styles": n_styles, "style_seed": style_seed} if reference is None else {}
    if reference is not None:
        path = Path(reference)
        if not path.is_file():
            raise DataError(f"reference image not found: {path}")
        options["reference"] = load_image(path, image_size).unsqueeze(0).to(model.device)
    return options


def translate_folder(
    model: TranslationModule,
    input_dir: Path,
    output_dir: Path,
    direction: str | None,
    image_size: int,
    batch_size: int,
    options: dict[str, Any] | None = None,
    save_attention: bool = False,
) -> list[Path]:
    """Translate every image of `input_dir` into `<output_dir>/<input name>.png`, or with
    `n_styles=k` into `<input name>_s{j}.png` for j < k, and with `save_attention` its attention
    map into `<input name>_attention.png`; returns the files written. `options` go to the model's
    `translate` (styles, references, few-shot `class_images`)."""
    if save_attention and not model.has_attention_maps():
        raise ConfigError("save_attention", True, f"{type(model).__name__} has no attention maps to save")
    files = list_images(input_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    options = options or {}
    written = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        batch = torch.stack([load_image(path, image_size) for path in chunk]).to(model.device)
        for path, images in zip(chunk, model.translate(batch, direction, **options)):
            if options.get("n_styles") is None:
                named = [(f"{path.stem}.png", images)]
            else:
                named = [(f"{path.stem}_s{j}.png", image) for j, image in enumerate(images)]
            for name, image in named:
                save_image((image.float().cpu().clamp(-1, 1) + 1) / 2, output_dir / name)
                written.append(output_dir / name)
        if save_attention:
            for path, heatmap in zip(chunk, heatmap_rgb(model.attention_maps(batch, direction))):
                target = output_dir / f"{path.stem}_attention.png"
                save_image((heatmap.float().cpu() + 1) / 2, target)
                written.append(target)
    return written


def load_class_images(class_dir: Path, k: int | None, size: int) -> torch.Tensor:
    """The first `k` images of `class_dir` in name order (all when k is None), (K, 3, size, size)."""
    files = list_images(class_dir)
    if k is not None:
        check_positive("k", k)
        if k > len(files):
            raise DataError(f"class_dir {class_dir} has {len(files)} images; k={k} needs at least {k}")
        files = files[:k]
    return torch.stack([load_image(path, size) for path in files])


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


def translate_options(model: TranslationModule, cfg: DictConfig, size: int) -> tuple[str | None, dict[str, Any]]:
    """The direction and `translate` options the command line asks of `model`: styles for a
    multimodal model, example images of the target class (and no direction) for a few-shot one."""
    direction, options = cfg.direction, style_options(model, cfg.n_styles, cfg.style_seed, cfg.reference, size)
    if model.data_kind == "fewshot":
        if not cfg.class_dir:
            raise ConfigError("class_dir", cfg.class_dir, "this few-shot model needs a folder of example images")
        direction = None
        options["class_images"] = load_class_images(Path(cfg.class_dir), cfg.k, size).to(model.device)
    elif cfg.class_dir:
        raise ConfigError("class_dir", cfg.class_dir, f"{type(model).__name__} is not a few-shot model")
    return direction, options


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
            direction, options = translate_options(model, cfg, size)
            written = translate_folder(
                model, Path(cfg.input_dir), Path(cfg.output_dir), direction, size, cfg.batch_size, options,
                save_attention=cfg.save_attention,
            )
        log.info("wrote %d images to %s", len(written), cfg.output_dir)


def main() -> None:
    """Console entry point of `i2i-translate`."""
    _main()


if __name__ == "__main__":
    main()
