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
from i2i.data.synthetic.fewshot import ShapesFewShot, hue_distance
from i2i.data.synthetic.shapes import render
from i2i.errors import ConfigError, DataError
from i2i.metrics.fewshot import per_class_generations

TONE_RANGES = ([0.65, 0.9], [0.85, 1.0], [0.4, 0.6], [0.25, 0.4])  # conf/data/shapes_fewshot.yaml
SPACE = dict(grid=10, grid_jitter=0.2, unseen_stride=2, margin=0.04, hue_jitter=0.01, tone_jitter=0.03)
SPACE |= dict(
    zip(("object_saturation", "object_value", "background_saturation", "background_value"), TONE_RANGES)
)


def scenario(**kwargs) -> ShapesFewShot:
    return ShapesFewShot(**{"shots": 3, "image_size": 32, "num_train": 6, "num_test": 6, **SPACE, **kwargs})


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
def test_there_are_100_training_classes_and_25_unseen_ones_a_margin_away():
    domains = scenario()
    train, test = domains.classes("train"), domains.classes("test")
    assert len(train) == 100 and len(test) == 25 and not set(train) & set(test)
    assert domains.nearest_unseen_to_training() >= domains.margin == 0.04
    hues = np.array([domains.hues[name] for name in test])
    assert hue_distance(hues[:, None], hues[None])[~np.eye(25, dtype=bool)].min() == pytest.approx(0.2)
    for name in test:  # inside the ranges of the training classes: every hue, the same tone ranges
        assert all(0 <= hue < 1 for hue in domains.hues[name])
        for (low, high), tone in zip(TONE_RANGES, domains.tones[name]):
            assert low <= tone <= high


def test_a_margin_the_grid_cannot_keep_is_refused():
    with pytest.raises(ConfigError, match=r"data.domains.margin=0.07 .* lies 0.04\d+ from a training class"):
        scenario(margin=0.07)
    with pytest.raises(ConfigError, match="data.domains.object_value=.* must lie above"):
        scenario(object_value=[0.3, 1.0])


def test_images_jitter_around_their_class_point_and_objects_stand_apart():
    domains = scenario(image_size=64)
    for name in ("train_07", "unseen_03"):
        obj, background = (np.asarray(c) for c in domains.class_colors(name))
        for index in range(4):
            sample = domains.sample(name, "train", index)
            assert np.linalg.norm(np.asarray(sample.background) - background) < 0.08
            assert all(np.linalg.norm(np.asarray(c) - obj) < 0.12 for c in sample.object_colors)
            assert 1 <= len(sample.layout) <= 3 and sample.mask.any()
            assert all(np.linalg.norm(np.asarray(c) - sample.background) > 0.4 for c in sample.object_colors)


def test_scenario_images_are_deterministic_and_per_split():
    a, b = scenario(seed=2), scenario(seed=2)
    assert torch.equal(a.image("train_05", "train", 1), b.image("train_05", "train", 1))
    assert not torch.equal(a.image("train_05", "train", 1), scenario(seed=3).image("train_05", "train", 1))
    assert not torch.equal(a.image("train_05", "train", 1), a.image("train_05", "test", 1))
    assert not torch.equal(a.image("train_05", "train", 1), a.image("train_06", "train", 1))
    assert a.class_colors("unseen_07") == scenario(seed=3).class_colors("unseen_07")  # the space is fixed


def test_evaluation_episodes_meet_every_target_with_shots_of_that_class():
    domains = scenario()
    content, targets, shots = evaluation_episodes(domains, range(50), 3)
    assert content.shape == (50, 3, 32, 32) and shots.shape == (50, 3, 3, 32, 32)
    assert Counter(targets) == dict.fromkeys(domains.classes("test"), 2)  # the first n x 25: each n times
    assert torch.equal(shots[5, 0], domains.image(targets[5], "test", 15 % 6))  # shots (i K + j) mod count
    pairs = {(content_of(domains, i)[0], target_of(domains, i)) for i in range(100 * 25)}
    assert len(pairs) == 100 * 25  # every content class meets every target


class Oracle:
    """Renders each evaluation episode's translation from the ground truth: the content image's layout
    in the colours of `target` (default: the episode's target class)."""

    device = torch.device("cpu")

    def __init__(self, domains: ShapesFewShot, target=None) -> None:
        self.domains, self.next, self.target = domains, 0, target or (lambda index: target_of(domains, index))

    def translate_to_class(self, x, class_images):
        outputs = []
        for _ in x:
            name, image = content_of(self.domains, self.next)
            obj, background = self.domains.class_colors(self.target(self.next))
            layout = self.domains.sample(name, "test", image).layout
            ideal = render(
                np.random.default_rng(0), self.domains.image_size, layout, background, (obj,) * len(layout)
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
    assert metrics["class_acc"] == 1.0 and metrics["content_iou"] > 0.95
    assert metrics["colour_err"] < 0.03  # pixel noise and the objects' anti-aliased rims


def test_the_identity_keeps_the_content_but_never_the_class():
    metrics = score_scenario(scenario(image_size=64, num_test=4), Identity(), 4)
    assert metrics["class_acc"] == 0.0 and metrics["content_iou"] > 0.95
    assert metrics["colour_err"] > 0.15


def test_a_translation_to_the_wrong_unseen_class_scores_zero():
    domains = scenario(image_size=64, num_test=4)
    unseen = domains.classes("test")
    wrong = lambda index: unseen[(unseen.index(target_of(domains, index)) + 1) % len(unseen)]  # noqa: E731
    metrics = score_scenario(domains, Oracle(domains, wrong), 4)
    assert metrics["class_acc"] == 0.0 and metrics["content_iou"] > 0.95 and metrics["colour_err"] > 0.15


def test_metrics_translate_n_episodes_to_every_unseen_class():
    domains = scenario(image_size=64, num_test=8)
    translated = []

    class Recording(Identity):
        def translate_to_class(self, x, class_images):
            translated.append(len(x))
            return x

    score_scenario(domains, Recording(), 2)
    assert sum(translated) == 2 * 25
    assert Counter(target_of(domains, i) for i in range(sum(translated))) == dict.fromkeys(
        domains.classes("test"), 2
    )
    score_scenario(domains, Recording(), 100)  # capped at the split: num_test episodes per unseen class
    assert sum(translated) == (2 + 8) * 25


def test_per_class_generations_cover_every_unseen_class():
    domains = scenario()
    data = datamodule(domains)
    results = list(per_class_generations(Identity(), data.unseen_class_episodes(n_content=5, batch_size=2)))
    assert [name for name, _, _ in results] == list(domains.classes("test"))
    for name, generated, real in results:
        assert torch.equal(generated, evaluation_episodes(domains, range(5), 2)[0])  # identity: the content
        assert real.shape == (6, 3, 32, 32) and torch.equal(real[0], domains.image(name, "test", 0))
