"""Every model x data x trainer x preset combination composes and builds; experiments compose."""

import itertools
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST_IMAGE_SIZE
from helpers.recipes import compose_with_choices
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from PIL import Image

from i2i.errors import ConfigError
from i2i.train import build_model, check_data_fits_model

CONF = resources.files("i2i.conf")


def options(group: str) -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in CONF.joinpath(group).iterdir() if p.name.endswith(".yaml"))


MODELS, DATA, TRAINERS, PRESETS = options("model"), options("data"), options("trainer"), options("preset")
TRAINERS = [t for t in TRAINERS if t != "default"]


def target_class(group: str, name: str) -> type:
    return get_class(OmegaConf.load(CONF.joinpath(group, f"{name}.yaml"))["_target_"])


# A model trains on the data configs whose datamodule kind is its `data_kind`; check_data_fits_model
# refuses the other pairs (tested in test_train.py), so the matrix holds the pairs that can train.
PAIRS = [
    (model, data)
    for model, data in itertools.product(MODELS, DATA)
    if target_class("model", model).data_kind == target_class("data", data).kind
]


def data_overrides(data: str, root: Path, size: int = 32) -> list[str]:
    """Overrides that make a data config buildable offline (real-data configs get a tiny folder)."""
    if data == "class_folders":
        for folder in ("train/cat", "train/dog", "test/fox"):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((80, 80, 3), dtype=np.uint8)).save(root / folder / "0.png")
        return [
            f"data.domains.root={root}",
            "data.image_size=64",
            "data.domains.load_size=72",
            "data.num_train_classes=2",
            "data.test_shots=1",
        ]
    if data == "celeba":
        (root / "images").mkdir(parents=True, exist_ok=True)
        attributes = "Black_Hair Blond_Hair Brown_Hair Smiling"
        lines = ["4", attributes] + [
            f"{i}.png {' '.join(['1' if j == i else '-1' for j in range(4)])}" for i in range(4)
        ]
        (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
        for i in range(4):
            Image.fromarray(np.zeros((48, 40, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        paths = [
            f"data.domains.root={root / 'images'}",
            f"data.domains.attr_path={root / 'list_attr_celeba.txt'}",
        ]
        return [
            *paths,
            "data.image_size=32",
            "data.domains.crop_size=36",
            "data.domains.test_rows=2",
            "data.num_workers=0",
        ]
    if not data.startswith("folder"):
        return []
    unlabeled = data == "folder_unlabeled"
    for split in ("train", "test") if unlabeled else ("trainA", "trainB", "testA", "testB"):
        (root / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((size + 16, size + 16, 3), dtype=np.uint8)).save(root / split / "0.png")
    sizes = (
        [f"data.image_size={size}"]
        if unlabeled
        else [f"data.image_size={size}", f"data.domains.load_size={size + 8}"]
    )
    return [f"data.domains.root={root}", *sizes]


def test_every_model_and_every_data_config_are_in_the_matrix():
    assert {model for model, _ in PAIRS} == set(MODELS) and {data for _, data in PAIRS} == set(DATA)


@pytest.mark.parametrize(
    ("model", "data", "trainer"), [(*pair, trainer) for pair in PAIRS for trainer in TRAINERS]
)
def test_every_model_data_trainer_combination_composes_and_builds(make_cfg, tmp_path, model, data, trainer):
    size = FAST_IMAGE_SIZE.get(model, 32)
    cfg = make_cfg(
        f"model={model}", f"data={data}", f"trainer={trainer}", *data_overrides(data, tmp_path / "d", size)
    )
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        cfg.trainer.accelerator = "cpu"  # everything else of a GPU config still builds here
    instantiate(cfg.trainer, max_steps=-1, logger=False, enable_progress_bar=False)
    datamodule = instantiate(cfg.data, _convert_="all")
    check_data_fits_model(cfg, datamodule)
    built = build_model(cfg)
    datamodule.setup()
    inputs = datamodule.sample_inputs(1)
    rows = built.sample_rows(inputs)  # translations of the grid's inputs, the way callbacks call the model
    size = cfg.data.image_size
    assert rows and all(row.shape == (1, 3, size, size) for _, row in rows)


def data_for(make_cfg, model: str) -> str:
    """The first synthetic data config of the kind `model` trains on."""
    kind = get_class(make_cfg(f"model={model}", fast=False).model._target_).data_kind
    kinds = {
        d: get_class(make_cfg(f"data={d}", fast=False).data._target_).kind
        for d in DATA
        if d.startswith("shapes")
    }
    return next(d for d, data_kind in kinds.items() if data_kind == kind)


@pytest.mark.parametrize(("model", "preset"), list(itertools.product(MODELS, PRESETS)))
def test_every_model_builds_at_every_width_preset(make_cfg, model, preset):
    overrides = [
        f"model={model}",
        f"data={data_for(make_cfg, model)}",
        f"preset={preset}",
        "data.image_size=128",
    ]
    cfg = make_cfg(*overrides, fast=False)
    with torch.device("meta"):
        assert sum(p.numel() for p in build_model(cfg).parameters()) > 0


def test_the_tiny_preset_is_narrower_than_the_paper_one(make_cfg):
    counts = {}
    for preset in ("tiny", "paper"):
        with torch.device("meta"):
            counts[preset] = sum(p.numel() for p in build_model(make_cfg(f"preset={preset}")).parameters())
    assert counts["tiny"] < counts["paper"] / 8


# What each recipe of experiments/ builds: the model config (conf/model/), the kind of data, the image
# size and the width preset.
RECIPES = {
    "paper/coco_funit_animals": ("coco_funit", "fewshot", 256, "paper"),
    "paper/cut_horse2zebra": ("cut", "unpaired", 256, "paper"),
    "paper/cyclegan_horse2zebra": ("cyclegan", "unpaired", 256, "paper"),
    "paper/drit_cat2dog": ("drit", "unpaired", 216, "paper"),
    "paper/drit_portrait": ("drit", "unpaired", 216, "paper"),
    "paper/fastcut_horse2zebra": ("fastcut", "unpaired", 256, "paper"),
    "paper/funit_animals": ("funit", "fewshot", 128, "paper"),
    "paper/lomit_celeba": ("lomit", "attributes", 128, "paper"),
    "paper/munit_edges2shoes": ("munit", "unpaired", 256, "paper"),
    "paper/munit_summer2winter": ("munit", "unpaired", 256, "paper"),
    "paper/tunit_afhq": ("tunit", "unlabeled", 128, "paper"),
    "paper/ugatit_selfie2anime_full": ("ugatit", "unpaired", 256, "paper"),
    "paper/ugatit_selfie2anime_light": ("ugatit", "unpaired", 256, "paper"),
    "paper/unit_summer2winter": ("unit", "unpaired", 256, "paper"),
    "quality/coco_funit": ("coco_funit", "fewshot", 96, "tiny"),
    "quality/cut": ("cut", "unpaired", 64, "tiny"),
    "quality/cyclegan": ("cyclegan", "unpaired", 64, "tiny"),
    "quality/drit": ("drit", "unpaired", 64, "tiny"),
    "quality/fastcut": ("fastcut", "unpaired", 64, "tiny"),
    "quality/funit": ("funit", "fewshot", 64, "tiny"),
    "quality/lomit": ("lomit", "attributes", 64, "tiny"),
    "quality/munit": ("munit", "unpaired", 64, "tiny"),
    "quality/tunit": ("tunit", "unlabeled", 64, "tiny"),
    "quality/ugatit": ("ugatit", "unpaired", 64, "tiny"),
    "quality/unit": ("unit", "unpaired", 64, "tiny"),
}


def recipe_values(experiment: str) -> dict[str, object]:
    """The dotted keys and values a recipe file writes itself (not those of a sibling it composes)."""
    own = OmegaConf.to_container(OmegaConf.load(CONF.joinpath("experiment", f"{experiment}.yaml")))
    own.pop("defaults", None)

    def leaves(node: object, prefix: str) -> dict[str, object]:
        if not isinstance(node, dict) or not node:
            return {prefix: node}
        return {k: v for key, child in node.items() for k, v in leaves(child, f"{prefix}.{key}").items()}

    return {key[1:]: value for key, value in leaves(own, "").items()}


def test_every_experiment_is_in_the_table():
    entries = list(CONF.joinpath("experiment").iterdir())
    found = {f"{kind.name}/{p.name}" for kind in entries if kind.is_dir() for p in kind.iterdir()}
    found |= {entry.name for entry in entries if not entry.is_dir()}
    assert found == {f"{recipe}.yaml" for recipe in RECIPES}


@pytest.mark.parametrize("experiment", sorted(RECIPES))
def test_every_experiment_composes_and_builds(experiment):
    model, kind, size, preset = RECIPES[experiment]
    cfg, choices = compose_with_choices([f"experiment={experiment}"])
    assert (choices["model"], choices["preset"]) == (model, preset)
    assert get_class(cfg.data._target_).kind == kind and cfg.data.image_size == size
    composed = OmegaConf.to_container(cfg, resolve=False)
    for key, value in recipe_values(experiment).items():
        node = composed
        for part in key.split("."):
            node = node[part]
        assert node == value, f"{experiment}: {key} is {node!r} composed, the recipe sets {value!r}"
    with torch.device("meta"):
        built = build_model(cfg)
    assert type(built) is target_class("model", model)


def test_a_model_refuses_data_of_another_kind_naming_both(make_cfg):
    cfg = make_cfg("model=funit", "data=shapes_color")
    datamodule = instantiate(cfg.data, _convert_="all")
    with pytest.raises(ConfigError) as error:
        check_data_fits_model(cfg, datamodule)
    assert (
        str(error.value)
        == "data='UnpairedDataModule' is not allowed: FUNIT trains on fewshot data, this data is unpaired"
    )
