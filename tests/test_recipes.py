"""Paper recipes (experiments/ at the paper width preset) say what they reproduce, and use the
official widths; that every recipe composes and builds is tests/test_configs.py's job."""

import re
from pathlib import Path

import pytest
import torch

from i2i.train import build_model

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
PAPER_RECIPES = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml") if "override /preset: paper" in p.read_text())


def header(recipe: str) -> str:
    lines = (EXPERIMENTS / f"{recipe}.yaml").read_text().splitlines()
    return "\n".join(line for line in lines if line.startswith("#"))


def test_there_are_paper_recipes():
    assert "cyclegan_horse2zebra" in PAPER_RECIPES


@pytest.mark.parametrize("recipe", PAPER_RECIPES)
def test_every_paper_recipe_names_the_table_and_the_number_to_compare_with(recipe):
    text = header(recipe)
    assert re.search(r"Table \w+", text), f"{recipe}: name the paper table it reproduces"
    assert re.search(r"[Cc]ompare with:.*\d+\.\d+", text, re.DOTALL), f"{recipe}: give the number to compare with"


@pytest.mark.parametrize("recipe", PAPER_RECIPES)
def test_every_paper_recipe_builds_the_paper_width_model(make_cfg, recipe):
    model = re.search(r"override /model: (\w+)", (EXPERIMENTS / f"{recipe}.yaml").read_text()).group(1)
    cfg = make_cfg(f"experiment={recipe}", fast=False)
    paper = make_cfg(f"model={model}", "preset=paper", f"data.image_size={cfg.data.image_size}", fast=False)
    with torch.device("meta"):
        counts = [sum(p.numel() for p in build_model(c).parameters()) for c in (cfg, paper)]
    assert counts[0] == counts[1]
