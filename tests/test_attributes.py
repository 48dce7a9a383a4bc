"""Attribute data (tables, folders, exemplar pairing, the datamodule) and the shapes_local scenario."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.callbacks.metrics import score_scenario
from i2i.data.attributes import (
    AttributeDataModule,
    AttributeFolder,
    ExemplarSampler,
    next_different,
    read_attribute_table,
)
from i2i.data.datamodule import UnpairedDataModule
from i2i.data.sampling import ResumableLoader, UnpairedSampler
from i2i.data.synthetic.local import MIN_CONTRAST, OBJECT_COLORS, ShapesLocal
from i2i.errors import ConfigError, DataError
from i2i.metrics.shapes import dilate

CELEBA = """3
Black_Hair Blond_Hair Smiling
a.png 1 -1 -1
b.png -1 1 1
c.png -1 -1 1
"""


def write_celeba(root: Path, text: str = CELEBA, size: tuple[int, int] = (40, 48)) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name in ("a.png", "b.png", "c.png"):
        pixels = np.random.default_rng(len(name)).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / name)
    (root / "list_attr_celeba.txt").write_text(text)
    return root / "list_attr_celeba.txt"


def folder(root: Path, **kwargs) -> AttributeFolder:
    settings = {"image_size": 16, "crop_size": 32, "test_rows": 1} | kwargs
    return AttributeFolder(
        root=str(root / "images"), attr_path=str(root / "list_attr_celeba.txt"), **settings
    )


def test_celeba_and_csv_tables_read_the_same(tmp_path):
    celeba = read_attribute_table(write_celeba(tmp_path))
    (tmp_path / "t.csv").write_text(
        "file,Black_Hair,Blond_Hair,Smiling\na.png,1,0,0\nb.png,0,1,1\nc.png,-1,0,1\n"
    )
    table = read_attribute_table(tmp_path / "t.csv")
    assert celeba.names == table.names == ("Black_Hair", "Blond_Hair", "Smiling")
    assert celeba.files == table.files == ("a.png", "b.png", "c.png")
    assert (
        celeba.values.tolist()
        == table.values.tolist()
        == [[True, False, False], [False, True, True], [False, False, True]]
    )
    assert celeba.lines == (3, 4, 5) and table.lines == (2, 3, 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3\nA B\na.png 1\n", "line 3: 1 values for 2 attributes"),
        ("3\nA B\na.png 1 -1\nb.png 1 yes\n", "line 4: attribute values must be 1 or -1/0"),
        ("3\n", "expected CelebA's format"),
        ("0\nA B\n", "lists no images"),
    ],
)
def test_bad_tables_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_attribute_table(path)
    with pytest.raises(DataError, match="does not exist"):
        read_attribute_table(tmp_path / "missing.txt")


def test_unknown_attribute_lists_the_available_ones(tmp_path):
    write_celeba(tmp_path)
    with pytest.raises(
        ConfigError, match="data.selected_attrs='Blonde' .* choose from Black_Hair, Blond_Hair, Smiling"
    ):
        AttributeDataModule(
            domains=folder(tmp_path), selected_attrs=["Blonde"], pairing="different", image_size=16
        )
    with pytest.raises(ConfigError, match="data.domains.require_any_of='Red_Hair' .* choose from Black_Hair"):
        folder(tmp_path, require_any_of=["Red_Hair"])
    with pytest.raises(ConfigError, match="select at least one"):
        AttributeDataModule(domains=folder(tmp_path), selected_attrs=[], pairing="different", image_size=16)


def test_an_image_listed_but_missing_is_named_with_its_line(tmp_path):
    write_celeba(tmp_path)
    (tmp_path / "images" / "b.png").unlink()
    with pytest.raises(DataError, match="list_attr_celeba.txt line 4 lists b.png, which is not in .*images"):
        folder(tmp_path)


def test_folder_splits_filters_and_loads_the_official_crops(tmp_path):
    write_celeba(tmp_path)
    data = folder(tmp_path, require_any_of=["Black_Hair", "Blond_Hair"])  # c.png has neither
    (test, _), (train, train_labels) = data.labelled("test"), data.labelled("train")
    assert [p.name for p in test.files] == ["a.png"] and [p.name for p in train.files] == ["b.png"]
    assert train_labels.tolist() == [[False, True, True]]
    image = train.load(0, seed=0)
    assert image.shape == (3, 16, 16) and -1 <= image.min() and image.max() <= 1
    assert torch.equal(test.load(0, seed=1), test.load(0, seed=2))  # no flip at test time
    with pytest.raises(DataError, match="b.png is 40x48; data.domains.crop_size=64 needs at least 64x64"):
        folder(tmp_path, crop_size=64).labelled("train")


def test_exemplars_differ_in_their_attributes_and_epochs_are_deterministic():
    labels = torch.tensor([[1, 0], [1, 0], [0, 1], [1, 1], [0, 1], [1, 0]])
    sampler = ExemplarSampler(labels, pairing="different", seed=3)
    keys = list(sampler)
    assert sorted(k[0] for k in keys) == list(range(6)) and keys == list(sampler)
    assert all(not torch.equal(labels[i], labels[j]) for i, j, _ in keys)
    drawn = set()
    for epoch in range(20):
        sampler.set_epoch(epoch)
        drawn |= {j for _, j, _ in sampler}
    assert drawn == set(range(6))  # every image serves as an exemplar
    random = ExemplarSampler(labels, pairing="random", seed=3)
    assert list(random) == list(UnpairedSampler(6, 6, seed=3))  # the official pairing: any image
    with pytest.raises(DataError, match="pairing=different needs two kinds"):
        ExemplarSampler(torch.ones(4, 2), pairing="different", seed=0)


def test_exemplar_epochs_split_across_ranks_and_resume_mid_epoch():
    labels = torch.eye(3)[torch.arange(10) % 3]
    ranks = [
        list(ExemplarSampler(labels, pairing="different", seed=0, rank=r, world_size=2)) for r in range(2)
    ]
    assert {k[0] for k in ranks[0] + ranks[1]} == set(range(10))

    class Keys(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 10

        def __getitem__(self, key):
            return key

    def loader() -> ResumableLoader:
        sampler = ExemplarSampler(labels, pairing="different", seed=0)
        return ResumableLoader(Keys(), batch_size=2, sampler=sampler, drop_last=True, collate_fn=list)

    expected = list(loader())
    interrupted = iter(first := loader())
    seen = [next(interrupted) for _ in range(3)]
    resumed = loader()
    resumed.load_state_dict(first.state_dict())
    assert seen + list(resumed) == expected


def test_next_different_is_the_next_row_of_other_labels():
    labels = torch.tensor([[1, 0], [1, 0], [0, 1], [1, 0]])
    assert next_different(labels, 4) == [2, 2, 3, 2]  # row 3 wraps round past rows 0 and 1
    assert next_different(torch.ones(2, 1), 2) == [0, 1]  # nothing differs: its own exemplar


def test_datamodule_batches_pair_inputs_with_exemplars_of_other_attributes():
    data = AttributeDataModule(
        domains=ShapesLocal(image_size=32, num_train=4, num_test=3),
        selected_attrs=["orange"],
        pairing="different",
        image_size=32,
    )
    data.setup()
    batch = data.sample_inputs(4)
    assert batch["A"].shape == batch["B"].shape == (4, 3, 32, 32)
    assert batch["attr_A"].tolist() == [[0.0], [1.0], [0.0], [1.0]] and batch["attr_B"].tolist() == [
        [1.0],
        [0.0],
        [1.0],
        [0.0],
    ]
    assert data.kind == "attributes" and data.scenario is data.domains
    train = next(iter(data.train_dataloader()))
    assert set(train) == {"A", "B", "attr_A", "attr_B"} and (train["attr_A"] != train["attr_B"]).all()
    with pytest.raises(ConfigError, match="data.pairing='closest'"):
        AttributeDataModule(
            domains=ShapesLocal(image_size=32), selected_attrs=["blue"], pairing="closest", image_size=32
        )


# ---------------------------------------------------------------------- shapes_local
def test_shapes_local_differs_only_in_object_colour_on_varied_backgrounds():
    scenario = ShapesLocal(image_size=32, seed=1)
    assert torch.equal(
        scenario.image("A", "train", 3), ShapesLocal(image_size=32, seed=1).image("A", "train", 3)
    )
    backgrounds, gradients = [], 0
    for i in range(20):
        for domain in ("A", "B"):
            sample = scenario.sample(domain, "train", i)
            assert (
                np.linalg.norm(np.asarray(sample.object_colors[0]) - OBJECT_COLORS[domain][1])
                <= 0.06 * 3**0.5
            )
            pixels = sample.image[~dilate(torch.from_numpy(sample.mask)[None])[0].numpy()]
            for _, color in OBJECT_COLORS.values():  # noise aside, the background stays far from both colours
                assert np.linalg.norm(pixels - np.asarray(color), axis=1).min() > MIN_CONTRAST - 0.15
            gradients += float(np.ptp(pixels, axis=0).max()) > 0.2
            backgrounds.append(sample.background)
    assert 5 < gradients < 35 and len({tuple(np.round(b, 2)) for b in backgrounds}) == 40


def test_shapes_local_serves_attribute_and_unpaired_models_from_the_same_images():
    scenario = ShapesLocal(image_size=32, num_train=3)
    source, labels = scenario.labelled("train")
    assert len(source) == 6 and labels.tolist()[:2] == [[True, False], [False, True]]
    assert torch.equal(source.load(3, seed=0), scenario.image("B", "train", 1))
    unpaired = UnpairedDataModule(domains=scenario, image_size=32)
    assert unpaired.sample_inputs(2)["B"].shape == (2, 3, 32, 32)


class Oracle:
    """Recolours the input's objects (ground-truth masks) with the exemplar's colour, keeps the rest."""

    device = torch.device("cpu")

    def __init__(self, scenario: ShapesLocal) -> None:
        self.scenario = scenario

    def translate_like(self, x, reference):
        out = x.clone()
        for n, (image, exemplar) in enumerate(zip(x, reference)):
            source, i = next(
                (domain, i)
                for domain in ("A", "B")
                for i in range(self.scenario.num_test)
                if torch.equal(self.scenario.image(domain, "test", i), image)
            )
            target = "B" if source == "A" else "A"
            assert torch.equal(self.scenario.image(target, "test", i), exemplar)  # exemplar i for input i
            color = torch.tensor(self.scenario.sample(target, "test", i).object_colors[0]) * 2 - 1
            mask = torch.from_numpy(self.scenario.sample(source, "test", i).mask)
            out[n][:, mask] = color[:, None]
        return out


class Unpaired:
    """A two-domain model that ignores its inputs' backgrounds: a flat grey image."""

    device = torch.device("cpu")

    def translate(self, x, direction):
        return torch.zeros_like(x)


def test_metrics_score_a_perfect_local_translation_one_and_zero():
    scenario = ShapesLocal(image_size=32, num_test=8)
    metrics = score_scenario(scenario, Oracle(scenario), 8)
    assert metrics["domain_acc_AtoB"] == metrics["domain_acc_BtoA"] == 1.0
    assert metrics["bg_err_AtoB"] == metrics["bg_err_BtoA"] == 0.0


def test_metrics_give_the_identity_no_domain_accuracy_and_a_flat_image_a_large_background_error():
    class Identity(Oracle):
        def translate_like(self, x, reference):
            return x

    scenario = ShapesLocal(image_size=32, num_test=8)
    metrics = score_scenario(scenario, Identity(scenario), 8)
    assert metrics["domain_acc_AtoB"] == 0.0 and metrics["bg_err_AtoB"] == pytest.approx(0, abs=1e-6)
    flat = score_scenario(scenario, Unpaired(), 8)  # no reference is passed to an unpaired model
    assert flat["bg_err_AtoB"] > 0.1 and flat["bg_err_BtoA"] > 0.1
