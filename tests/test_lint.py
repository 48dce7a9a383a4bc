"""`make lint` (ruff, configured in pyproject.toml) enforces the line length and rules it states, and
CI runs it before the tests."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff_codes(tmp_path: Path, source: str) -> list[str]:
    """The rule codes `ruff check`, with the project's configuration, reports for `source`."""
    (tmp_path / "module.py").write_text(source)
    options = ["--config", str(ROOT / "pyproject.toml"), "--output-format", "json", "--no-cache"]
    command = [sys.executable, "-m", "ruff", "check", *options, "module.py"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    return sorted(finding["code"] for finding in json.loads(result.stdout))


def test_ruff_flags_a_line_over_110_characters_and_not_one_of_110(tmp_path):
    assert ruff_codes(tmp_path, f'NAME = "{"x" * 101}"\n') == []  # 110 characters
    assert ruff_codes(tmp_path, f'NAME = "{"x" * 102}"\n') == ["E501"]


def test_ruff_flags_unsorted_and_unused_imports_and_trailing_whitespace(tmp_path):
    source = "import sys\nimport os\n\nprint(os.sep) \n"
    assert ruff_codes(tmp_path, source) == ["F401", "I001", "W291"]


def test_ci_lints_before_it_runs_the_tests():
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make ")]
    assert commands == ["make lint", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nlint: install\n", 1)[1].split("\n\n", 1)[0]
    assert "ruff format --check ." in recipe and "ruff check ." in recipe
