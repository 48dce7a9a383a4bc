"""Paper recipes (experiments/ at the paper width preset) say what they reproduce, and use the
official widths; that every recipe composes and builds is tests/test_configs.py's job."""

import re
from pathlib import Path

import pytest
import torch

from i2i.train import build_model

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
PAPER_RECIPES = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml") if "override /preset: paper" in p.read_text())

# One recipe per paper setting of the scale-out issue (issue 9, item 5).
EXPECTED_RECIPES = [
    "coco_funit_animals",
    "cyclegan_horse2zebra",
    "funit_animals",
    "lomit_celeba",
    "munit_edges2shoes",
    "munit_summer2winter",
    "tunit_afhq",
    "ugatit_selfie2anime_full",
    "ugatit_selfie2anime_light",
    "unit_summer2winter",
]

# Settings whose own paper table has no number in ../shared/research/results.md (the section named):
# their header must say so instead of naming a table; any anchor they give is extra.
NOT_PUBLISHED = {
    "coco_funit_animals": "§3",
    "lomit_celeba": "§4",
    "munit_summer2winter": "§6",
    "tunit_afhq": "§5",
    "unit_summer2winter": "§6",
}

# Architecture variants a recipe sets on top of the paper widths (the official option, not a width).
VARIANTS = {"ugatit_selfie2anime_light": ["model.generator.light=true"]}


def header(recipe: str) -> str:
    lines = (EXPERIMENTS / f"{recipe}.yaml").read_text().splitlines()
    return "\n".join(line for line in lines if line.startswith("#"))


def test_there_is_a_paper_recipe_for_every_paper_setting():
    assert PAPER_RECIPES == EXPECTED_RECIPES


@pytest.mark.parametrize("recipe", sorted(set(PAPER_RECIPES) - set(NOT_PUBLISHED)))
def test_every_paper_recipe_names_the_table_and_the_number_to_compare_with(recipe):
    text = header(recipe)
    assert re.search(r"Table \w+", text), f"{recipe}: name the paper table it reproduces"
    assert re.search(r"[Cc]ompare with:.*\d+\.\d+", text, re.DOTALL), f"{recipe}: give the number to compare with"


@pytest.mark.parametrize("recipe", sorted(NOT_PUBLISHED))
def test_a_recipe_without_a_published_number_says_so(recipe):
    text = header(recipe)
    compare = re.search(r"[Cc]ompare with:(.*)", text, re.DOTALL)
    assert compare, f"{recipe}: say what there is to compare with"
    assert "NOT FOUND" in compare.group(1), f"{recipe}: say that the paper's number was not found"
    section = NOT_PUBLISHED[recipe]
    assert f"results.md ({section}" in compare.group(1), f"{recipe}: cite results.md {section}"


@pytest.mark.parametrize("recipe", PAPER_RECIPES)
def test_every_paper_recipe_builds_the_paper_width_model(make_cfg, recipe):
    text = (EXPERIMENTS / f"{recipe}.yaml").read_text()
    model, data = (re.search(rf"override /{group}: (\w+)", text).group(1) for group in ("model", "data"))
    cfg = make_cfg(f"experiment={recipe}", fast=False)
    size = f"data.image_size={cfg.data.image_size}"
    variant = VARIANTS.get(recipe, [])
    paper = make_cfg(f"model={model}", f"data={data}", "preset=paper", size, *variant, fast=False)
    with torch.device("meta"):
        counts = [sum(p.numel() for p in build_model(c).parameters()) for c in (cfg, paper)]
    assert counts[0] == counts[1]
