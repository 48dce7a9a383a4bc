"""`i2i-translate`: translate a folder of images with a trained checkpoint.

    i2i-translate ckpt_path=run/checkpoints/last.ckpt input_dir=photos output_dir=out direction=AtoB
    i2i-translate ... n_styles=5 style_seed=0       # multimodal: 5 PNGs per input, <name>_s{j}.png
    i2i-translate ... reference=style.jpg           # multimodal: every output in that image's style

What a checkpoint is asked to do follows from its model's abilities (`i2i.abilities`). Few-shot
models (FUNIT, COCO-FUNIT) translate to the class shown by example images instead of a direction:
`class_dir=<folder of K images of the class> [k=<use the first k>]`. Models without named domains
(TUNIT) translate every input like a reference image: `reference=<image>`.

Models that translate object instances apart (DUNIT) take the objects' boxes from a COCO-style file
(`images` with file_name, width, height; `annotations` with image_id and bbox [x, y, w, h] in pixels of
the image file; an image it does not list has no objects), scaled with the image to the model's size:

    i2i-translate ckpt_path=... input_dir=street output_dir=out boxes=street.json

Without `boxes=` such a model translates each image without given boxes (globally, or at the boxes its
own detector finds), and says so in one line on stderr.

`save_attention=true` also writes `<input name>_attention.png` beside each output: the generator's
attention map in the jet colour map (models with attention maps, e.g. U-GAT-IT's CAM heatmap).

Exemplar-guided models (LOMIT, trained on attribute data) translate every input towards one
exemplar and take user masks (white = translate here) in place of the predicted ones; the masks
they predicted are written beside each output as `<name>_mask.png` and `<name>_exemplar_mask.png`:

    i2i-translate ckpt_path=... input_dir=faces output_dir=out exemplar=blond.jpg \
        [input_mask=mask.png | input_mask=<folder of <name>.png>] [exemplar_mask=blond_hair.png]

Outputs are named after the input's name without its extension, so they pair with the inputs at a
glance. The user's files are never replaced silently: `output_dir` may not be `input_dir` or a
folder inside it; two inputs that would write the same name (`a.png` and `a.jpg` both give `a.png`)
are refused, naming both, before anything is written; and when any file the run would write
already exists, nothing is written unless `overwrite=true`. The count reported is the number of
files written (translations, and the attention maps or masks written beside them).
"""

import logging
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import hydra
import torch
import torchvision.transforms.functional as TF
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torchvision.utils import save_image

from i2i.abilities import (
    AttentionMaps,
    ExemplarMaskTranslator,
    FewShotTranslator,
    InstanceTranslator,
    ReferenceTranslator,
    StyleTranslator,
    Translator,
    translation_directions,
)
from i2i.checkpoints import load_model
from i2i.cli import reporting_errors, run_hydra_cli
from i2i.data.boxes import boxes_by_file, padded_batch
from i2i.data.folder import list_images, read_image, read_image_size
from i2i.errors import ConfigError, DataError, check_choice, check_positive
from i2i.models.base import TranslationModule
from i2i.nets.cam import heatmap_rgb
from i2i.schema import TRANSLATE_VALUES, check_config
from i2i.types import DIRECTIONS

log = logging.getLogger("i2i")


def resolve_device(name: str) -> torch.device:
    """The torch device `device=<name>` asks for (auto: cuda when there is one), refused in one line
    when torch does not know the name or the device is not on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ConfigError("device", name, "choose auto, cpu, cuda or cuda:<index>") from error
    cuda_devices = torch.cuda.device_count()
    if device.type == "cuda" and (device.index or 0) >= cuda_devices:
        raise ConfigError("device", name, f"this machine has {cuda_devices} CUDA devices; use device=auto")
    available = device.type in ("cpu", "cuda") or (device.type == "mps" and torch.backends.mps.is_available())
    if not available:
        raise ConfigError("device", name, "choose auto, cpu, cuda or cuda:<index> (or mps where available)")
    return device


def style_options(
    model: TranslationModule,
    n_styles: int | None,
    style_seed: int | None,
    reference: str | None,
    image_size: int,
) -> dict[str, Any]:
    """The style keys as options: sampled styles (n_styles, style_seed) for a `StyleTranslator`, a
    reference image for it or for a `ReferenceTranslator`; refused for other models or when combined."""
    given = {"n_styles": n_styles, "style_seed": style_seed, "reference": reference}
    given = {key: value for key, value in given.items() if value is not None}
    if not given:
        return {}
    takes_reference_only = isinstance(model, ReferenceTranslator) and set(given) == {"reference"}
    if not isinstance(model, StyleTranslator) and not takes_reference_only:
        key, value = next(iter(given.items()))
        why = (
            f"{type(model).__name__} is unimodal (one translation per input); "
            "only multimodal models take styles"
        )
        raise ConfigError(key, value, why)
    if n_styles is not None and reference is not None:
        raise ConfigError(
            "reference", reference, "give either n_styles (sampled styles) or reference, not both"
        )
    if n_styles is not None:
        check_positive("n_styles", n_styles)
    options: dict[str, Any] = {"n_styles": n_styles, "style_seed": style_seed} if reference is None else {}
    if reference is not None:
        path = Path(reference)
        if not path.is_file():
            raise DataError(f"reference image not found: {path}")
        options["reference"] = load_image(path, image_size).unsqueeze(0).to(model.device)
    return options


def check_output_dir(input_dir: Path, output_dir: Path) -> None:
    """Refuse an output folder that is a file, or that is the input folder or inside it (writing
    there would replace inputs or be read back as inputs); symlinks are followed."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError("output_dir", str(output_dir), "it is a file; give a folder for the translations")
    inputs, outputs = input_dir.resolve(), output_dir.resolve()
    if outputs == inputs or outputs.is_relative_to(inputs):
        raise ConfigError(
            "output_dir",
            str(output_dir),
            f"it is input_dir {input_dir} or inside it; write to another folder",
        )


def plan_outputs(
    files: list[Path], names: Callable[[Path], list[str]], output_dir: Path, overwrite: bool
) -> dict[Path, list[Path]]:
    """The files written for each input (`names(input)` in `output_dir`), all checked before the
    first is written: two inputs may not share an output name (`a.png` and `a.jpg` would both
    write `a.png`), and a file already there is replaced only with `overwrite`."""
    sources: dict[str, Path] = {}
    targets: dict[Path, list[Path]] = {}
    for path in files:
        targets[path] = []
        for name in names(path):
            if name in sources:
                raise DataError(
                    f"{sources[name]} and {path} would both be written as {output_dir / name}; "
                    "rename one of them"
                )
            sources[name] = path
            targets[path].append(output_dir / name)
    existing = [
        target for paths in targets.values() for target in paths if target.exists() or target.is_symlink()
    ]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more of the files this run writes" if len(existing) > 1 else ""
        raise ConfigError(
            "output_dir",
            str(output_dir),
            f"it already holds {existing[0].name}{more}; pass overwrite=true to replace them, "
            "or choose another folder",
        )
    return targets


def translate_folder(
    translation: Callable[[Tensor], Tensor],
    input_dir: Path,
    output_dir: Path,
    image_size: int,
    batch_size: int,
    device: torch.device,
    n_styles: int | None = None,
    attention: Callable[[Tensor], Tensor] | None = None,
    overwrite: bool = False,
    boxes: Callable[[list[Path]], tuple[Tensor, Tensor]] | None = None,
) -> list[Path]:
    """Translate every image of `input_dir` with `translation` (a batch on `device` -> its
    translations) into `<output_dir>/<input name>.png`, or, when it makes `n_styles=k` translations
    per input, into `<input name>_s{j}.png` for j < k; with `attention` (a batch -> its attention
    maps) also the map into `<input name>_attention.png`; with `boxes` (the inputs of a batch -> their
    boxes and valid rows, `box_reader`), `translation` also takes the batch's boxes and valid rows;
    returns the files written. Nothing is written when an output name is taken twice or, without
    `overwrite`, already exists (`plan_outputs`)."""
    check_output_dir(input_dir, output_dir)

    def names(path: Path) -> list[str]:
        styles = (
            [f"{path.stem}.png"] if n_styles is None else [f"{path.stem}_s{j}.png" for j in range(n_styles)]
        )
        return styles + ([f"{path.stem}_attention.png"] if attention is not None else [])

    files = list_images(input_dir)
    targets = plan_outputs(files, names, output_dir, overwrite)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        batch = torch.stack([load_image(path, image_size) for path in chunk]).to(device)
        given = [] if boxes is None else [part.to(device) for part in boxes(chunk)]
        for path, images in zip(chunk, translation(batch, *given)):
            for target, image in zip(targets[path], [images] if n_styles is None else images):
                save_image((image.float().cpu().clamp(-1, 1) + 1) / 2, target)
                written.append(target)
        if attention is not None:
            for path, heatmap in zip(chunk, heatmap_rgb(attention(batch))):
                save_image((heatmap.float().cpu() + 1) / 2, targets[path][-1])
                written.append(targets[path][-1])
    return written


def box_reader(path: Path, input_dir: Path, size: int) -> Callable[[list[Path]], tuple[Tensor, Tensor]]:
    """The boxes of the images of `input_dir` from the COCO-style file `path` (`data.boxes`), scaled
    to the `size` x `size` image a model translates, as a function of some of those images giving
    their boxes (B, M, 4) and valid rows (B, M), M the most boxes of any image. An image the file does
    not list has no objects; an entry must give the size its image file has (checked here, before
    anything is translated)."""
    if not path.is_file():
        raise DataError(f"boxes file not found: {path}")
    sizes = {image: read_image_size(image) for image in list_images(input_dir)}
    scaled = {
        image: boxes * torch.tensor([size / sizes[image][0], size / sizes[image][1]] * 2)
        for image, boxes in boxes_by_file(path, sizes).items()
    }
    rows = max([1, *(len(boxes) for boxes in scaled.values())])

    def boxes_of(images: list[Path]) -> tuple[Tensor, Tensor]:
        return padded_batch([scaled[image] for image in images], rows)

    return boxes_of


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
    model: ExemplarMaskTranslator,
    input_dir: Path,
    output_dir: Path,
    image_size: int,
    batch_size: int,
    exemplar: Path,
    input_mask: Path | None = None,
    exemplar_mask: Path | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Translate every image of `input_dir` towards `exemplar` into `<output_dir>/<input name>.png`.

    `input_mask` is one mask for every input or a folder of masks named like the inputs; a mask
    not given is predicted and written as `<input name>_mask.png` / `<input name>_exemplar_mask.png`
    (the exemplar's mask depends on the input it is paired with). Returns the files written;
    nothing is written when an output name is taken twice or, without `overwrite`, already exists.
    """
    check_output_dir(input_dir, output_dir)

    def names(path: Path) -> list[str]:
        masks = [f"{path.stem}_mask.png"] if input_mask is None else []
        return [f"{path.stem}.png", *masks] + (
            [f"{path.stem}_exemplar_mask.png"] if exemplar_mask is None else []
        )

    files = list_images(input_dir)
    targets = plan_outputs(files, names, output_dir, overwrite)
    reference = load_image(exemplar, image_size)[None].to(model.device)
    reference_mask = load_mask(exemplar_mask, image_size)[None] if exemplar_mask else None
    output_dir.mkdir(parents=True, exist_ok=True)
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
            images = [(outputs[i].float().cpu().clamp(-1, 1) + 1) / 2]
            images += [masks[i].float().cpu()] if input_mask is None else []
            images += [reference_masks[i].float().cpu()] if exemplar_mask is None else []
            for target, image in zip(targets[path], images):
                save_image(image, target)
                written.append(target)
    return written


def load_mask(path: Path, size: int) -> torch.Tensor:
    """A mask image as (1, size, size) in [0, 1]: white (1) where to translate."""
    return _read(path, size, "L", TF.InterpolationMode.BILINEAR, "mask")


def load_image(path: Path, size: int) -> torch.Tensor:
    return _read(path, size, "RGB", TF.InterpolationMode.BICUBIC, "image") * 2 - 1


def _read(path: Path, size: int, mode: str, interpolation: TF.InterpolationMode, what: str) -> torch.Tensor:
    return TF.to_tensor(TF.resize(read_image(path, mode, what), [size, size], interpolation))


def translation_asked(
    model: TranslationModule, cfg: DictConfig, size: int
) -> tuple[Callable[[Tensor], Tensor], int | None]:
    """The translation the command line asks of `model`, by the model's abilities, as a function of
    a batch, and the number of translations it makes per input (None: one). A `FewShotTranslator`
    translates to the class of `class_dir` (no direction), a `ReferenceTranslator` like `reference`,
    a `StyleTranslator` with sampled or reference styles, a `Translator` by direction."""
    name, direction = type(model).__name__, cfg.direction
    options = style_options(model, cfg.n_styles, cfg.style_seed, cfg.reference, size)
    if isinstance(model, FewShotTranslator):
        if not cfg.class_dir:
            raise ConfigError(
                "class_dir", cfg.class_dir, "this few-shot model needs a folder of example images"
            )
        class_images = load_class_images(Path(cfg.class_dir), cfg.k, size).to(model.device)
        return lambda x: model.translate_to_class(x, class_images), None
    if cfg.class_dir:
        raise ConfigError("class_dir", cfg.class_dir, f"{name} is not a few-shot model")
    reference = options.get("reference")
    if isinstance(model, ReferenceTranslator):
        if reference is None:
            why = f"{name} translates like a reference image; pass reference=<image>"
            raise ConfigError("reference", None, why)
        return lambda x: model.translate_like(x, reference), None
    if not isinstance(model, Translator):
        raise ConfigError("ckpt_path", cfg.ckpt_path, f"i2i-translate cannot translate with {name}")
    if direction not in translation_directions(model):  # a one-sided model (CUT), asked the other way
        learned = translation_directions(model)[0]
        why = f"{name} learned {learned} only: pass direction={learned}, or train one with data.direction"
        raise ConfigError("direction", direction, f"{why}={direction}")
    if cfg.boxes is not None:
        if not isinstance(model, InstanceTranslator):
            raise ConfigError("boxes", cfg.boxes, f"{name} translates no object instances; drop it")
        if options:
            key = next(key for key in ("n_styles", "style_seed", "reference") if cfg[key] is not None)
            why = "with boxes each input gets one translation with a sampled style; drop one of them"
            raise ConfigError(key, cfg[key], why)
        return lambda x, boxes, valid: model.translate_instances(x, direction, boxes, valid), None
    if isinstance(model, InstanceTranslator):
        print(
            f"note: no boxes=<COCO JSON> given: {name} translates each image without given object boxes "
            "(globally, or at the boxes its detector finds where it has one)",
            file=sys.stderr,
        )
    if isinstance(model, StyleTranslator) and reference is not None:
        return lambda x: model.translate_reference(x, direction, reference), None
    if isinstance(model, StyleTranslator) and options:
        n_styles, style_seed = options["n_styles"], options["style_seed"]
        if n_styles is None:  # one output per input, with seeded styles
            return lambda x: model.translate_styles(x, direction, 1, style_seed)[:, 0], None
        return lambda x: model.translate_styles(x, direction, n_styles, style_seed), n_styles
    return lambda x: model.translate(x, direction), None


@hydra.main(version_base="1.3", config_path="pkg://i2i.conf", config_name="translate")
def _main(cfg: DictConfig) -> None:
    with reporting_errors():
        OmegaConf.resolve(cfg)
        check_config(cfg, TRANSLATE_VALUES)
        check_choice("direction", cfg.direction, DIRECTIONS)
        model, config = load_model(cfg.ckpt_path, resolve_device(cfg.device))
        size = cfg.image_size or config["data"]["image_size"]
        keys = ("exemplar", "input_mask", "exemplar_mask")
        guidance = {key: Path(cfg[key]) if cfg.get(key) else None for key in keys}
        name = type(model).__name__
        if isinstance(model, ExemplarMaskTranslator):
            if guidance["exemplar"] is None:
                raise ConfigError(
                    "exemplar", None, f"{name} translates towards an exemplar; pass exemplar=<image>"
                )
            written = translate_folder_towards(
                model,
                Path(cfg.input_dir),
                Path(cfg.output_dir),
                size,
                cfg.batch_size,
                **guidance,
                overwrite=cfg.overwrite,
            )
        else:
            for key, value in guidance.items():
                if value is not None:
                    raise ConfigError(key, str(value), f"{name} takes no exemplar or masks; drop it")
            translation, n_styles = translation_asked(model, cfg, size)
            attention = None
            if cfg.save_attention:
                if not isinstance(model, AttentionMaps):
                    raise ConfigError("save_attention", True, f"{name} has no attention maps to save")
                attention = partial(model.attention_maps, direction=cfg.direction)
            boxes = box_reader(Path(cfg.boxes), Path(cfg.input_dir), size) if cfg.boxes is not None else None
            written = translate_folder(
                translation,
                Path(cfg.input_dir),
                Path(cfg.output_dir),
                size,
                cfg.batch_size,
                model.device,
                n_styles=n_styles,
                attention=attention,
                overwrite=cfg.overwrite,
                boxes=boxes,
            )
        log.info("wrote %d images to %s", len(written), cfg.output_dir)


def main() -> None:
    """Console entry point of `i2i-translate`."""
    run_hydra_cli(_main)


if __name__ == "__main__":
    main()
