"""Paper recipes (experiments/paper/, at the paper width preset) say what they reproduce, and use the
official widths; quality recipes keep their lab notes in docs/; that every recipe composes and builds
is tests/test_configs.py's job."""

import re
from pathlib import Path

import pytest
import torch
from helpers.params import count
from helpers.recipes import compose_with_choices

from i2i.train import build_model

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
PAPER_RECIPES = sorted(p.stem for p in (EXPERIMENTS / "paper").glob("*.yaml"))
QUALITY_RECIPES = sorted(p.stem for p in (EXPERIMENTS / "quality").glob("*.yaml"))

# One recipe per paper setting of the scale-out issue (issue 9, item 5).
EXPECTED_RECIPES = [
    "coco_funit_animals",
    "cut_horse2zebra",
    "cyclegan_horse2zebra",
    "drit_cat2dog",
    "drit_portrait",
    "fastcut_horse2zebra",
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
VARIANTS = {
    "ugatit_selfie2anime_light": ["model.generator.light=true"],
    "drit_cat2dog": ["model.injection=featurewise"],
    "drit_portrait": ["model.injection=featurewise"],
}


def header(recipe: str, kind: str = "paper") -> str:
    lines = (EXPERIMENTS / kind / f"{recipe}.yaml").read_text().splitlines()
    return "\n".join(line for line in lines if line.startswith("#"))


def test_there_is_a_paper_recipe_for_every_paper_setting():
    assert PAPER_RECIPES == EXPECTED_RECIPES


@pytest.mark.parametrize("recipe", sorted(set(PAPER_RECIPES) - set(NOT_PUBLISHED)))
def test_every_paper_recipe_names_the_table_and_the_number_to_compare_with(recipe):
    text = header(recipe)
    assert re.search(r"Table \w+", text), f"{recipe}: name the paper table it reproduces"
    assert re.search(r"[Cc]ompare with:.*\d+\.\d+", text, re.DOTALL), (
        f"{recipe}: give the number to compare with"
    )


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
    cfg, choices = compose_with_choices([f"experiment=paper/{recipe}"])
    assert choices["preset"] == "paper"
    model, data = choices["model"], choices["data"]
    size = f"data.image_size={cfg.data.image_size}"
    variant = VARIANTS.get(recipe, [])
    paper = make_cfg(f"model={model}", f"data={data}", "preset=paper", size, *variant, fast=False)
    with torch.device("meta"):
        assert count(build_model(cfg)) == count(build_model(paper))


@pytest.mark.parametrize("recipe", QUALITY_RECIPES)
def test_a_quality_recipe_keeps_its_lab_notes_in_docs(recipe):
    """A quality recipe's comments say what it is and how to run it; the measurements behind its
    values live in docs/recipes.md, which it links."""
    text = header(recipe, "quality")
    assert f"make bench-quality MODEL={recipe}" in text
    assert len(text.splitlines()) <= 6, f"quality/{recipe}: move the lab notes to docs/recipes.md"
    headings = re.findall(r"^#+ (.+)$", (ROOT / "docs" / "recipes.md").read_text(), re.MULTILINE)
    anchors = {re.sub(r"[^\w -]", "", heading).lower().replace(" ", "-") for heading in headings}
    for link in re.findall(r"docs/recipes\.md#([\w-]+)", text):
        assert link in anchors, f"quality/{recipe}: docs/recipes.md has no section #{link}"
