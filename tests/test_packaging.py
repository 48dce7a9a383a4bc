"""The package ships its configs and lists every subpackage."""

import tomllib
from importlib import resources
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_subpackage():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert listed == set(find_packages(ROOT / "src")) | {"i2i.conf"}


def test_configs_are_package_resources():
    conf = resources.files("i2i.conf")
    assert conf.joinpath("train.yaml").is_file()
    assert conf.joinpath("model", "cyclegan.yaml").is_file()
    assert conf.joinpath("experiment").is_dir()  # experiments/ reached through conf/experiment


def test_console_scripts_are_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["i2i-train"] == "i2i.train:main"
    assert scripts["i2i-translate"] == "i2i.translate:main"
    assert scripts["i2i-eval"] == "i2i.evaluate:main"
    assert scripts["i2i-compare"] == "i2i.compare:main"


def test_ci_runs_make_test_and_fails_on_errors():
    script = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script and "make test" in script
