"""The package's import arrows point one way (DESIGN §2, issue 25): read from the source with `ast`.

Forbidden: any import between `data/` and `metrics/` (either way: scenarios expose ground truth,
`metrics/` scores it, the callers pair them); any import of `models/` from `nets/`, `losses/`,
`data/` or `metrics/`; any import of one model file by another (`models/base.py` and
`models/schedules.py`, the spine, are not model files), except the two DESIGN §2 states:
`models/coco_funit.py` imports `models/funit.py`, because COCO-FUNIT is FUNIT with its own generator,
and `models/dunit.py` imports `models/drit.py`, because DUNIT is DRIT++ with an instance branch.
"""

import ast
from pathlib import Path

import pytest

import i2i

PACKAGE = Path(i2i.__file__).resolve().parent
SPINE = {"i2i.models", "i2i.models.base", "i2i.models.schedules"}
NEVER_IMPORT_MODELS = ("i2i.nets", "i2i.losses", "i2i.data", "i2i.metrics")
# The exceptions (DESIGN §2): COCO-FUNIT subclasses FUNIT, DUNIT subclasses DRIT++, whose objective
# and training each reuses.
ALLOWED_MODEL_IMPORTS = {
    ("i2i.models.coco_funit", "i2i.models.funit"),
    ("i2i.models.dunit", "i2i.models.drit"),
}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str, root: Path) -> bool:
    path = root.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or path.is_dir()


def imported_modules(path: Path, root: Path) -> set[str]:
    """The i2i modules `path` imports anywhere in it (`from i2i.x import y` counts as i2i.x.y when
    i2i/x/y is a module, else as i2i.x); relative imports are resolved."""
    importer = module_name(path, root)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, (base, node.module)))
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if is_module(submodule, root) else module)
    return {name for name in found if name == root.name or name.startswith(f"{root.name}.")}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def forbidden_arrow(importer: str, imported: str) -> str | None:
    """Why `importer` may not import `imported`, or None when it may."""
    for one, other in (("i2i.data", "i2i.metrics"), ("i2i.metrics", "i2i.data")):
        if within(importer, one) and within(imported, other):
            return "data/ and metrics/ import nothing of each other"
    if within(imported, "i2i.models"):
        if any(within(importer, package) for package in NEVER_IMPORT_MODELS):
            return "nets/, losses/, data/ and metrics/ import nothing from models/"
        if within(importer, "i2i.models") and importer != imported and imported not in SPINE:
            if (importer, imported) not in ALLOWED_MODEL_IMPORTS:
                return "no model file imports another"
    return None


def import_arrows(root: Path) -> set[tuple[str, str]]:
    """Every (importer, imported) pair of modules in the package at `root`."""
    return {
        (module_name(path, root), imported)
        for path in sorted(root.rglob("*.py"))
        for imported in imported_modules(path, root)
    }


def forbidden_imports(root: Path) -> list[str]:
    return sorted(
        f"{importer} imports {imported}: {reason}"
        for importer, imported in import_arrows(root)
        if (reason := forbidden_arrow(importer, imported))
    )


def test_imports_point_one_way():
    assert forbidden_imports(PACKAGE) == []


def test_every_allowed_model_import_still_exists():
    """The exception is the stated one, never a licence for new imports: it must still be in use."""
    assert ALLOWED_MODEL_IMPORTS <= import_arrows(PACKAGE), "an exception is no longer needed: remove it"


FAKE_TREE = ("i2i", "i2i.data", "i2i.data.synthetic", "i2i.metrics", "i2i.models", "i2i.nets", "i2i.losses")


def write(root: Path, module: str, source: str) -> None:
    path = root.parent / (module.replace(".", "/") + ".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)


@pytest.mark.parametrize(
    ("importer", "source", "reason"),
    [
        ("i2i.data.synthetic.color", "from i2i.metrics.shapes import mask_iou\n", "data/ and metrics/"),
        ("i2i.metrics.scoring", "def f():\n    from i2i.data.synthetic import base\n", "data/ and metrics/"),
        ("i2i.metrics.fewshot", "from ..data import fewshot\n", "data/ and metrics/"),
        ("i2i.nets.blocks", "import i2i.models.base\n", "nets/, losses/, data/ and metrics/"),
        ("i2i.losses.gan", "from i2i.models import munit\n", "nets/, losses/, data/ and metrics/"),
        ("i2i.models.unit", "from i2i.models.munit import MUNIT\n", "no model file imports another"),
        ("i2i.models.base", "from .cyclegan import CycleGAN\n", "no model file imports another"),
        ("i2i.models.funit", "from .coco_funit import COCOFUNIT\n", "no model file imports another"),
    ],
)
def test_the_check_finds_each_forbidden_arrow(tmp_path, importer, source, reason):
    root = tmp_path / "i2i"
    for package in FAKE_TREE:
        write(root, f"{package}.__init__", "")
    for module in ("i2i.metrics.shapes", "i2i.data.fewshot", "i2i.data.synthetic.base", "i2i.models.base"):
        write(root, module, "")
    for module in ("i2i.models.munit", "i2i.models.cyclegan", "i2i.models.funit"):
        write(root, module, "from i2i.models.base import TranslationModule\n")
    # the allowed exception
    write(root, "i2i.models.coco_funit", "from i2i.models.funit import FUNIT\n")
    assert forbidden_imports(root) == []
    write(root, importer, source)
    (problem,) = forbidden_imports(root)
    assert problem.startswith(f"{importer} imports ") and reason in problem
