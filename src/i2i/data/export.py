"""`i2i-data export`: a synthetic scenario's images as PNG files, to try `i2i-translate` and `i2i-eval` on.

    i2i-data export shapes_color inputs/                  # inputs/{testA,testB}/0000.png ...
    i2i-data export shapes_geometry inputs/ --num-train 100 --image-size 128

Two-domain scenarios are written in the CycleGAN layout (`testA`, `testB`, and `trainA`, `trainB`
with `--num-train`, so `data=folder data.domains.root=<folder>` trains on them). A scenario with
object boxes (shapes_instances) also gets one COCO-style JSON per image folder, `<folder>/testA.json`
..., which `data=folder data.domains.boxes=true` reads back. The images are the ones `data=<scenario>`
trains and evaluates on with the same seed and size: the scenario is built from its own config in
`conf/data/`, so export and training never disagree. The target folder must be new or empty: nothing
is overwritten.
"""

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf
from torchvision.utils import save_image

from i2i.data.boxes import BoxedImageSource, coco_document
from i2i.data.datamodule import UnpairedDataModule
from i2i.data.synthetic.base import SyntheticScenario
from i2i.errors import DataError, check_non_negative, check_positive

log = logging.getLogger(__name__)

TWO_DOMAIN_MODULE = f"{UnpairedDataModule.__module__}.{UnpairedDataModule.__qualname__}"


@dataclass(frozen=True)
class ExportRequest:
    """What to write: `num_test` (and `num_train`) images of each domain, at `image_size` (None: the
    scenario config's size), rendered with `seed` (the `seed` of `i2i-train`)."""

    scenario: str
    folder: Path
    num_test: int
    num_train: int = 0
    image_size: int | None = None
    seed: int = 0


def exportable_scenarios() -> tuple[str, ...]:
    """The synthetic data configs (`conf/data/shapes_*.yaml`) served as two domains A and B."""
    folder = resources.files("i2i.conf") / "data"
    names = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("shapes_") and entry.name.endswith(".yaml"):
            if OmegaConf.create(entry.read_text()).get("_target_") == TWO_DOMAIN_MODULE:
                names.append(entry.name.removesuffix(".yaml"))
    return tuple(names)


def build_scenario(request: ExportRequest) -> SyntheticScenario:
    """The scenario `data=<request.scenario>` trains on, with the request's size, seed and counts."""
    name = request.scenario
    known = exportable_scenarios()
    if name not in known:
        raise DataError(
            f"cannot export {name!r}: choose one of {', '.join(known)} (two-domain synthetic scenarios)"
        )
    data = OmegaConf.create((resources.files("i2i.conf") / "data" / f"{name}.yaml").read_text())
    if request.image_size is not None:
        data.image_size = request.image_size
    data.domains.num_test = request.num_test
    if request.num_train:
        data.domains.num_train = request.num_train
    # the data configs take their seed from the root config (`seed: ${seed}`), as in conf/train.yaml
    root = OmegaConf.create({"seed": request.seed, "data": data})
    return instantiate(root.data.domains)


def export(request: ExportRequest) -> dict[str, int]:
    """Write the scenario's images as `<folder>/<split><domain>/<index>.png`, and their boxes as
    `<folder>/<split><domain>.json` when it has boxes; {subfolder: count}.

    Refuses a folder that holds anything, before writing a file."""
    check_positive("--num-test", request.num_test)
    check_non_negative("--num-train", request.num_train)
    folder = request.folder
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DataError(f"{folder} is not an empty folder; export into a new one (nothing is overwritten)")
    scenario = build_scenario(request)
    counts = {"test": request.num_test, "train": request.num_train}
    written = {}
    for split, count in counts.items():
        for domain in scenario.domains if count else ():
            subfolder = folder / f"{split}{domain}"
            subfolder.mkdir(parents=True)
            for index in range(count):
                save_image(scenario.image(domain, split, index) * 0.5 + 0.5, subfolder / f"{index:04d}.png")
            written[subfolder.name] = count
            source = scenario.source(domain, split)
            if isinstance(source, BoxedImageSource):
                _write_boxes(source, count, scenario.image_size, subfolder.with_suffix(".json"))
    return written


def _write_boxes(source: BoxedImageSource, count: int, size: int, path: Path) -> None:
    """The boxes of the source's first `count` images as a COCO-style file, images named as `export`
    names them."""
    entries = [
        (f"{index:04d}.png", size, size, source.load_boxed(index, seed=index)[1]) for index in range(count)
    ]
    path.write_text(json.dumps(coco_document(entries), indent=1) + "\n")
    log.info("%s: the boxes of %d images", path, count)
