"""Few-shot data: episode sampling, class folders and their errors, shapes_fewshot and its metrics."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.callbacks.metrics import score_scenario
from i2i.data.fewshot import ClassFolders, FewShotDataModule, content_of, evaluation_episodes, target_of
from i2i.data.sampling import EpisodeSampler, ResumableLoader
from i2i.data.synthetic.fewshot import BACKGROUNDS, HELD_OUT, OBJECT_COLORS, ShapesFewShot
from i2i.data.synthetic.shapes import render
from i2i.errors import ConfigError, DataError
from i2i.metrics.fewshot import per_class_generations


def scenario(**kwargs) -> ShapesFewShot:
    return ShapesFewShot(**{"shots": 3, "image_size": 32, "num_train": 6, "num_test": 6, **kwargs})


def datamodule(domains, **kwargs) -> FewShotDataModule:
    settings = dict(
        image_size=domains.image_size, num_train_classes=len(domains.classes("train")), train_shots=1
    )
    settings |= dict(test_shots=2, distinct_classes=True, batch_size=2)
    return FewShotDataModule(domains=domains, **(settings | kwargs))


# ---------------------------------------------------------------------------- the episode sampler
@pytest.mark.parametrize("shots", [1, 3])
def test_episodes_pair_each_content_image_with_k_shots_of_another_class(shots):
    sizes = [4, 7, 3, 5]
    keys = EpisodeSampler(sizes, shots=shots, distinct_classes=True, seed=0).keys()
    assert len(keys) == sum(sizes)
    assert Counter((c, i) for c, i, *_ in keys) == Counter(
        (c, i) for c, n in enumerate(sizes) for i in range(n)
    )
    for content_class, _, shot_class, shot_indices, _ in keys:
        assert shot_class != content_class
        assert len(shot_indices) == shots == len(set(shot_indices))  # K distinct images of one class
        assert all(0 <= i < sizes[shot_class] for i in shot_indices)


def test_episode_shot_classes_follow_the_class_sizes():
    samplers = [
        EpisodeSampler([10, 30, 60], shots=1, distinct_classes=False, seed=seed) for seed in range(30)
    ]
    keys = [key for sampler in samplers for key in sampler.keys()]
    counts = Counter(key[2] for key in keys)
    assert [round(counts[c] / len(keys), 1) for c in range(3)] == [
        0.1,
        0.3,
        0.6,
    ]  # official: images drawn uniformly
    assert any(key[0] == key[2] for key in keys)  # without distinct_classes, as the official loaders


def test_episodes_are_deterministic_per_epoch_and_split_across_ranks():
    sampler = EpisodeSampler([5, 6], shots=2, distinct_classes=True, seed=3)
    first = sampler.keys()
    assert sampler.keys() == first
    sampler.set_epoch(1)
    assert sampler.keys() != first
    ranks = [
        EpisodeSampler([5, 6], shots=2, distinct_classes=True, seed=3, rank=r, world_size=2).keys()
        for r in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) == 6
    assert {(c, i) for c, i, *_ in ranks[0] + ranks[1]} == {
        (c, i) for c, n in enumerate([5, 6]) for i in range(n)
    }


def test_episode_loader_resumes_mid_epoch():
    class Keys(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 11

        def __getitem__(self, key):
            return torch.tensor([key[0], key[1], key[2], *key[3], key[4]])

    def loader() -> ResumableLoader:
        sampler = EpisodeSampler([5, 6], shots=2, distinct_classes=True, seed=0)
        return ResumableLoader(Keys(), batch_size=2, sampler=sampler, drop_last=True)

    expected = list(loader())
    interrupted = iter(first := loader())
    seen = [next(interrupted) for _ in range(2)]
    resumed = loader()
    resumed.load_state_dict(first.state_dict())
    assert [b.tolist() for b in seen + list(resumed)] == [b.tolist() for b in expected]


# ---------------------------------------------------------------------------- class folders
def write_class(folder: Path, count: int, size: int = 48) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = np.random.default_rng(i).integers(0, 255, (size, size + 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")


def class_tree(root: Path, train: dict[str, int], test: dict[str, int]) -> ClassFolders:
    for split, classes in (("train", train), ("test", test)):
        for name, count in classes.items():
            write_class(root / split / name, count)
    return ClassFolders(root=str(root), load_size=40, crop_size=32)


def test_class_folders_give_labelled_episodes_with_funit_transforms(tmp_path):
    domains = class_tree(tmp_path, {"dog": 3, "cat": 2}, {"fox": 2})
    data = datamodule(domains)
    data.setup()
    assert data.train_classes == ("cat", "dog") and data.test_classes == ("fox",)  # labels: sorted names
    batch = next(iter(data.train_dataloader()))
    assert batch["content"].shape == (2, 3, 32, 32) and batch["class_images"].shape == (2, 1, 3, 32, 32)
    assert (
        batch["content_label"].dtype == torch.int64 and (batch["content_label"] != batch["class_label"]).all()
    )
    inputs = data.sample_inputs(3)
    assert inputs["content"].shape == (3, 3, 32, 32) and inputs["class_images"].shape == (3, 2, 3, 32, 32)


def test_a_class_folder_with_fewer_than_k_images_is_named_with_its_count(tmp_path):
    domains = class_tree(tmp_path, {"cat": 2, "dog": 2}, {"fox": 1})
    with pytest.raises(
        DataError, match=r"test/fox has 1 images; K=2 shots need at least 2 \(data.test_shots\)"
    ):
        datamodule(domains)
    with pytest.raises(
        DataError, match=r"train/cat has 2 images; K=3 shots need at least 3 \(data.train_shots\)"
    ):
        datamodule(domains, train_shots=3, test_shots=1)


def test_empty_class_folder_is_reported_with_count_zero(tmp_path):
    domains = class_tree(tmp_path, {"cat": 2, "dog": 0}, {"fox": 2})
    with pytest.raises(DataError, match="train/dog has 0 images"):
        datamodule(domains)


def test_overlapping_train_and_test_classes_are_refused(tmp_path):
    domains = class_tree(tmp_path, {"cat": 2, "dog": 2}, {"dog": 2, "fox": 2})
    with pytest.raises(DataError, match="classes dog are both training and test classes"):
        datamodule(domains)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: (root / "train" / "cat").mkdir(parents=True), r"missing .*test \(expected the layout"),
        (
            lambda root: [(root / s).mkdir(parents=True) for s in ("train", "test")],
            "no class folders in .*train",
        ),
    ],
)
def test_missing_root_split_or_classes_are_named(tmp_path, make, message):
    make(tmp_path / "root")
    with pytest.raises(DataError, match=message):
        ClassFolders(root=str(tmp_path / "root"))


def test_class_count_and_distinct_classes_are_checked(tmp_path):
    domains = class_tree(tmp_path, {"cat": 2}, {"fox": 2})
    with pytest.raises(ConfigError, match="data.num_train_classes=119 .* has 1 training classes"):
        datamodule(domains, num_train_classes=119)
    with pytest.raises(ConfigError, match="data.distinct_classes=True .* at least two training classes"):
        datamodule(domains)


# ---------------------------------------------------------------------------- shapes_fewshot
def test_the_held_out_classes_are_unseen_combinations_of_seen_attributes():
    domains = scenario()
    train, test = domains.classes("train"), domains.classes("test")
    assert set(test) == set(HELD_OUT) and len(train) == 12 and not set(train) & set(test)
    for name in test:
        color, background = name.split("_")
        assert (
            sum(t.startswith(color + "_") for t in train) == 3
            and sum(t.endswith("_" + background) for t in train) == 3
        )


def test_scenario_images_are_deterministic_and_per_split():
    a, b = scenario(seed=2), scenario(seed=2)
    assert torch.equal(a.image("red_moss", "train", 1), b.image("red_moss", "train", 1))
    assert not torch.equal(a.image("red_moss", "train", 1), a.image("red_moss", "test", 1))
    assert not torch.equal(a.image("red_moss", "train", 1), a.image("red_night", "train", 1))


def test_evaluation_episodes_meet_every_target_with_shots_of_that_class():
    domains = scenario()
    content, targets, shots = evaluation_episodes(domains, range(48), 3)
    assert content.shape == (48, 3, 32, 32) and shots.shape == (48, 3, 3, 32, 32)
    pairs = {(content_of(domains, i)[0], target_of(domains, i)) for i in range(48)}
    assert len(pairs) == 48  # 12 content classes x 4 targets
    assert torch.equal(shots[5, 0], domains.image(targets[5], "test", 15 % 6))  # shots (i K + j) mod count


class Oracle:
    """Renders each evaluation episode's ideal translation from the ground truth: the content image's
    layout in the target class's colours."""

    device = torch.device("cpu")

    def __init__(self, domains: ShapesFewShot) -> None:
        self.domains, self.next = domains, 0

    def translate_to_class(self, x, class_images):
        outputs = []
        for _ in x:
            name, image = content_of(self.domains, self.next)
            color, background = target_of(self.domains, self.next).split("_")
            layout = self.domains.sample(name, "test", image).layout
            ideal = render(
                np.random.default_rng(0),
                self.domains.image_size,
                layout,
                BACKGROUNDS[background],
                tuple(OBJECT_COLORS[color] for _ in layout),
            )
            outputs.append(torch.from_numpy(ideal.image).permute(2, 0, 1) * 2 - 1)
            self.next += 1
        return torch.stack(outputs)


class Identity:
    device = torch.device("cpu")

    def translate_to_class(self, x, class_images):
        return x


def test_a_perfect_translation_scores_one():
    domains = scenario(image_size=64, num_test=4)
    metrics = score_scenario(domains, Oracle(domains), 4)
    assert metrics["class_acc"] == metrics["object_acc"] == metrics["background_acc"] == 1.0
    assert metrics["content_iou"] > 0.95


def test_the_identity_keeps_the_content_but_never_the_class():
    metrics = score_scenario(scenario(image_size=64, num_test=4), Identity(), 4)
    assert metrics["class_acc"] == 0.0
    assert metrics["object_acc"] == metrics["background_acc"] == 0.25  # one target in four shares each
    assert metrics["content_iou"] > 0.95


def test_metrics_translate_n_content_images_of_every_training_class_to_every_unseen_class():
    domains = scenario(image_size=64, num_test=8)
    translated = []

    class Recording(Identity):
        def translate_to_class(self, x, class_images):
            translated.append(len(x))
            return x

    score_scenario(domains, Recording(), 4)
    assert sum(translated) == 4 * len(domains.classes("train"))  # 4 per training class, the unseen in turn
    assert {target_of(domains, i) for i in range(sum(translated))} == set(domains.classes("test"))
    score_scenario(domains, Recording(), 100)  # capped at the split: every content image once
    assert sum(translated) == (4 + 8) * len(domains.classes("train"))


def test_per_class_generations_cover_every_unseen_class():
    domains = scenario()
    data = datamodule(domains)
    results = list(per_class_generations(Identity(), data.unseen_class_episodes(n_content=5, batch_size=2)))
    assert [name for name, _, _ in results] == list(domains.classes("test"))
    for name, generated, real in results:
        assert torch.equal(generated, evaluation_episodes(domains, range(5), 2)[0])  # identity: the content
        assert real.shape == (6, 3, 32, 32) and torch.equal(real[0], domains.image(name, "test", 0))
