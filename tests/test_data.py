"""Synthetic scenarios, their metrics, sampling, resumable loading and folder data errors."""

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.callbacks.metrics import score_scenario
from i2i.data.datamodule import UnpairedDataModule
from i2i.data.folder import ImageFolderSource, UnpairedFolders, read_image
from i2i.data.sampling import ResumableLoader, UnpairedSampler
from i2i.data.synthetic.color import LOOKS, ShapesColor
from i2i.errors import ConfigError, DataError
from i2i.metrics.shapes import mask_iou, mode_coverage, segment_objects


class Oracle:
    """Translates shapes_color perfectly from ground truth: target background, first target mode."""

    device = torch.device("cpu")

    def __init__(self, scenario: ShapesColor) -> None:
        self.scenario = scenario

    def translate(self, x, direction):
        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        masks = torch.stack([self._mask_of(image, source) for image in x])[:, None]
        background = torch.tensor(LOOKS[target].background).view(1, 3, 1, 1)
        objects = torch.tensor(LOOKS[target].modes[0]).view(1, 3, 1, 1)
        return (torch.where(masks, objects, background)) * 2 - 1

    def _mask_of(self, image, domain):
        for i in range(self.scenario.num_test):
            if torch.equal(self.scenario.image(domain, "test", i), image):
                return torch.from_numpy(self.scenario.sample(domain, "test", i).mask)
        raise AssertionError("not a test image")


class MultimodalOracle(Oracle):
    """A perfect `StyleTranslator`: with `n_styles=k`, style j gets target mode j mod `n_modes`."""

    def __init__(self, scenario: ShapesColor, n_modes: int) -> None:
        super().__init__(scenario)
        self.n_modes = n_modes

    def translate_reference(self, x, direction, reference):
        raise AssertionError("the synthetic metrics sample styles")

    def translate_styles(self, x, direction, n_styles, style_seed=None):
        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        masks = torch.stack([self._mask_of(image, source) for image in x])[:, None, None]
        modes = LOOKS[target].modes
        objects = torch.tensor([modes[j % self.n_modes % len(modes)] for j in range(n_styles)]).view(
            1, -1, 3, 1, 1
        )
        background = torch.tensor(LOOKS[target].background).view(1, 1, 3, 1, 1)
        return torch.where(masks, objects, background) * 2 - 1


class Identity:
    device = torch.device("cpu")

    def translate(self, x, direction):
        return x


def test_shapes_are_deterministic_from_seed_and_index():
    a, b = ShapesColor(seed=3), ShapesColor(seed=3)
    assert torch.equal(a.image("A", "train", 5), b.image("A", "train", 5))
    assert not torch.equal(a.image("A", "train", 5), a.image("A", "train", 6))
    assert not torch.equal(a.image("A", "train", 5), ShapesColor(seed=4).image("A", "train", 5))
    assert not torch.equal(a.image("A", "train", 5), a.image("A", "test", 5))


@pytest.mark.parametrize("size", [32, 48, 128])
def test_shapes_render_at_any_multiple_of_16(size):
    image = ShapesColor(image_size=size).image("B", "test", 0)
    assert image.shape == (3, size, size) and image.min() >= -1 and image.max() <= 1


def test_image_size_must_be_a_multiple_of_16():
    with pytest.raises(ConfigError, match="data.image_size=40 .* multiple of 16"):
        ShapesColor(image_size=40)


def test_objects_stay_off_the_border_and_b_uses_all_three_modes():
    scenario = ShapesColor()
    modes, shapes = set(), set()
    for i in range(60):
        sample = scenario.sample("B", "train", i)
        assert sample.mask.sum() >= 30 * len(sample.layout)  # every object is drawn
        shapes |= {p.shape for p in sample.layout}
        assert not sample.mask[:2].any() and not sample.mask[-2:].any()
        assert not sample.mask[:, :2].any() and not sample.mask[:, -2:].any()
        color = np.asarray(sample.object_colors[0])
        modes.add(int(np.argmin([np.linalg.norm(color - np.asarray(m)) for m in LOOKS["B"].modes])))
    assert modes == {0, 1, 2} and shapes == {"circle", "square", "triangle"}


def test_segmentation_recovers_the_ground_truth_masks():
    scenario = ShapesColor()
    for domain in ("A", "B"):
        images = (scenario.images(domain, "test", 32) + 1) / 2
        assert mask_iou(segment_objects(images), scenario.masks(domain, "test", 32)).mean() > 0.93


def test_metrics_score_a_perfect_translation_near_one():
    scenario = ShapesColor(num_test=16)
    metrics = score_scenario(scenario, Oracle(scenario), 16)
    assert metrics["domain_acc_AtoB"] == 1.0 and metrics["domain_acc_BtoA"] == 1.0
    assert metrics["content_iou_AtoB"] > 0.93 and metrics["content_iou_BtoA"] > 0.93


def test_metrics_give_the_identity_zero_domain_accuracy_and_full_content():
    metrics = score_scenario(ShapesColor(num_test=16), Identity(), 16)
    assert metrics["domain_acc_AtoB"] == 0.0 and metrics["domain_acc_BtoA"] == 0.0
    assert metrics["content_iou_AtoB"] > 0.93


def test_mode_coverage_counts_the_target_modes_each_input_produces():
    scenario = ShapesColor(num_test=2)
    masks = scenario.masks("A", "test", 2)
    red, green, yellow = LOOKS["B"].modes
    blue = LOOKS["A"].modes[0]
    background = torch.tensor(LOOKS["B"].background).view(3, 1, 1)

    def translations(mask, colors):
        return torch.stack(
            [torch.where(mask, torch.tensor(color).view(3, 1, 1), background) for color in colors]
        )

    outputs = torch.stack(
        [
            translations(masks[0], (red, green, yellow, red)),
            translations(masks[1], (red, red, blue))[[0, 1, 2, 0]],
        ]
    )
    looks = (LOOKS["A"].background, LOOKS["B"].background, LOOKS["A"].modes, LOOKS["B"].modes)
    # input 1 produces red only: its blue (source-coloured) translation produces no mode
    torch.testing.assert_close(mode_coverage(outputs, masks, *looks), torch.tensor([1.0, 1 / 3]))


@pytest.mark.parametrize(("n_modes", "expected"), [(3, 1.0), (2, 2 / 3), (1, 1 / 3)])
def test_metrics_of_a_multimodal_model_report_mode_coverage(n_modes, expected):
    scenario = ShapesColor(num_test=4)
    metrics = score_scenario(scenario, MultimodalOracle(scenario, n_modes), 4)
    assert metrics["mode_coverage_AtoB"] == pytest.approx(expected)
    assert metrics["domain_acc_AtoB"] == 1.0 and metrics["content_iou_AtoB"] > 0.93  # over the 12 styles
    assert metrics["mode_coverage_BtoA"] == 1.0  # A has one mode
    assert "mode_coverage_AtoB" not in score_scenario(scenario, Oracle(scenario), 4)  # unimodal: not reported


def test_sampler_epochs_are_deterministic_and_cover_a():
    sampler = UnpairedSampler(10, 4, seed=1)
    first = list(sampler)
    assert len(first) == 10 and sorted(k[0] for k in first) == list(range(10))
    assert all(0 <= k[1] < 4 for k in first)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_sampler_splits_an_epoch_across_ranks():
    keys = [list(UnpairedSampler(7, 7, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert len(keys[0]) == len(keys[1]) == 4
    assert {k[0] for k in keys[0] + keys[1]} == set(range(7))


def test_loader_resumes_mid_epoch_where_it_stopped():
    class Keys(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 10

        def __getitem__(self, key):
            return key[0]

    def loader():
        return ResumableLoader(Keys(), batch_size=2, sampler=UnpairedSampler(10, 10, seed=0), drop_last=True)

    full = loader()
    expected = [batch for batch in full]
    interrupted = loader()
    iterator = iter(interrupted)
    seen = [next(iterator) for _ in range(2)]
    state = interrupted.state_dict()
    resumed = loader()
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert state == {"epoch": 0, "batches": 2}
    assert [b.tolist() for b in seen + rest] == [b.tolist() for b in expected]


def write_image(path: Path, size: int = 40, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).convert(
        mode
    ).save(path)


def make_folders(root: Path, count: int = 3, **kwargs) -> Path:
    for split in ("trainA", "trainB", "testA", "testB"):
        for i in range(count):
            write_image(root / split / f"{i}.png", **kwargs)
    return root


def test_folder_images_load_as_rgb_crops_in_range(tmp_path):
    root = make_folders(tmp_path / "data")
    write_image(root / "trainA" / "gray.png", mode="L")
    write_image(root / "trainA" / "alpha.png", mode="RGBA")
    source = UnpairedFolders(root=str(root), load_size=36, crop_size=32).source("A", "train")
    for index in range(len(source)):
        image = source.load(index, seed=index)
        assert image.shape == (3, 32, 32) and -1 <= image.min() and image.max() <= 1
    assert torch.equal(source.load(0, seed=7), source.load(0, seed=7))


def test_folder_test_images_are_deterministic(tmp_path):
    source = UnpairedFolders(root=str(make_folders(tmp_path)), load_size=36, crop_size=32).source("A", "test")
    assert torch.equal(source.load(0, seed=1), source.load(0, seed=2))


def test_missing_root_and_split_folder_are_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        UnpairedFolders(root=str(tmp_path / "nowhere"))
    root = make_folders(tmp_path)
    for path in (root / "testB").iterdir():
        path.unlink()
    (root / "testB").rmdir()
    folders = UnpairedFolders(root=str(root), load_size=36, crop_size=32)
    with pytest.raises(DataError, match=f"missing image folder {root / 'testB'}"):
        folders.source("B", "test")


def test_empty_folder_is_named(tmp_path):
    root = make_folders(tmp_path)
    for path in (root / "trainB").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=f"no images in {root / 'trainB'}"):
        UnpairedFolders(root=str(root), load_size=36, crop_size=32).source("B", "train")


def test_corrupt_image_is_named(tmp_path):
    root = make_folders(tmp_path)
    (root / "trainA" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=f"cannot read image {root / 'trainA' / 'broken.png'}"):
        UnpairedFolders(root=str(root), load_size=36, crop_size=32).source("A", "train")


@pytest.mark.parametrize("resize", ["square", "shorter_side"])
def test_images_smaller_than_the_crop_are_used_when_the_resize_brings_them_up_to_it(tmp_path, resize):
    """Issue 24 item 8: 20x20 images resized to load_size 36 give 32 px crops; sizes are checked after
    the transform's resize, not on the file."""
    root = make_folders(tmp_path, size=20)
    Image.new("RGB", (20, 30), (9, 99, 199)).save(root / "trainA" / "tall.png")
    folders = UnpairedFolders(root=str(root), load_size=36, crop_size=32)
    source = ImageFolderSource(root / "trainA", load_size=36, crop_size=32, train=True, resize=resize)
    for index in range(len(source)):
        assert source.load(index, seed=index).shape == (3, 32, 32)
    assert folders.source("A", "test").load(0, seed=0).shape == (3, 32, 32)


def test_load_size_below_the_crop_names_the_domains_keys(tmp_path):
    with pytest.raises(DataError, match=r"data.domains.load_size=16 must be >= data.domains.crop_size=32"):
        UnpairedFolders(root=str(make_folders(tmp_path)), load_size=16, crop_size=32)
    with pytest.raises(DataError, match=r"data.domains.root=.*nowhere does not exist"):
        UnpairedFolders(root=str(tmp_path / "nowhere"), load_size=36, crop_size=32)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG file whose header claims `width` x `height` pixels, with (almost) no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    pixels = zlib.compress(b"\0")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_image_claiming_a_huge_size_is_named_before_training(tmp_path):
    """PIL's DecompressionBombError is not an OSError; it is reported like any unreadable image."""
    root = make_folders(tmp_path)
    (root / "trainB" / "bomb.png").write_bytes(png_claiming(30000, 30000))  # 9e8 pixels, over 2x PIL's limit
    with pytest.raises(DataError, match=f"cannot read image {root / 'trainB' / 'bomb.png'}: Image size"):
        UnpairedFolders(root=str(root), load_size=36, crop_size=32).source("B", "train")
    with pytest.raises(DataError, match="bomb.png"):
        read_image(root / "trainB" / "bomb.png")


def test_truncated_image_found_during_training_is_skipped_and_named(tmp_path):
    root = make_folders(tmp_path, count=2)
    good = (root / "trainA" / "0.png").read_bytes()
    (root / "trainA" / "0.png").write_bytes(good[: len(good) // 2])  # header intact, pixels cut
    source = UnpairedFolders(root=str(root), load_size=36, crop_size=32).source("A", "train")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = source.load(0, seed=0)
    assert image.shape == (3, 32, 32)
    assert any("0.png" in str(w.message) for w in caught)


def test_datamodule_checks_the_image_size_matches_its_domains():
    with pytest.raises(ConfigError, match="data.image_size=32"):
        UnpairedDataModule(domains=ShapesColor(image_size=64), image_size=32)
