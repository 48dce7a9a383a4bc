"""Unlabeled data: the two views, the datamodule, folders with and without classes, shapes_unlabeled
and its metrics (NMI by hand, oracle and identity models)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.callbacks.metrics import score_scenario
from i2i.data.synthetic.unlabeled import LOOKS, ShapesUnlabeled
from i2i.data.unlabeled import TwoViews, UnlabeledDataModule, UnlabeledFolder
from i2i.errors import ConfigError, DataError
from i2i.metrics.clustering import normalized_mutual_information
from i2i.metrics.shapes import segment_objects
from i2i.metrics.synthetic import classify_domain

OFFICIAL_VIEWS = dict(
    degrees=20,
    translate=0.1,
    shear=10,
    scale=(0.9, 1.1),
    ratio=(0.9, 1.1),
    jitter=(0.4, 0.4, 0.4, 0.125),
    flip=True,
)


def views(size: int = 32) -> TwoViews:
    return TwoViews(image_size=size, **OFFICIAL_VIEWS)


def test_views_are_deterministic_from_the_seed_and_stay_in_range():
    image = ShapesUnlabeled(image_size=32).image("d1", "train", 0)
    x, x_tf = views()(image, seed=3)
    assert x.shape == x_tf.shape == (3, 32, 32) and x_tf.min() >= -1 and x_tf.max() <= 1
    assert torch.equal(x_tf, views()(image, seed=3)[1])
    assert not torch.equal(x_tf, views()(image, seed=4)[1]) and not torch.equal(x_tf, x)
    assert any(torch.equal(views()(image, seed=s)[0], image.flip(-1)) for s in range(8))  # x: only flipped
    state = torch.get_rng_state()
    views()(image, seed=5)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched


def test_shapes_unlabeled_interleaves_its_domains_and_keeps_labels_out_of_batches():
    scenario = ShapesUnlabeled(image_size=32, num_domains=3, num_train=4, num_test=2)
    collection = scenario.collection("train")
    assert len(collection) == 12 and collection.labels[:4] == [0, 1, 2, 0]
    assert torch.equal(collection.load(4, seed=0), scenario.image("d1", "train", 1))
    module = UnlabeledDataModule(domains=scenario, views=views(), image_size=32, batch_size=4)
    module.setup()
    batch = next(iter(module.train_dataloader()))
    assert set(batch) == {"x", "x_tf"} and batch["x"].shape == (4, 3, 32, 32)
    assert module.kind == "unlabeled" and module.scenario is scenario
    assert module.sample_inputs(3)["x"].shape == (3, 3, 32, 32)


def test_domains_differ_in_background_and_object_colour():
    scenario = ShapesUnlabeled(image_size=64, num_domains=5)
    for index, domain in enumerate(scenario.domains):
        sample = scenario.sample(domain, "test", 0)
        image = torch.from_numpy(sample.image).permute(2, 0, 1)[None]
        assert classify_domain(image, torch.from_numpy(sample.mask)[None], scenario.looks).item() == index
    with pytest.raises(ConfigError, match="data.domains.num_domains=6"):
        ShapesUnlabeled(num_domains=6)


def test_datamodule_refuses_a_batch_larger_than_the_train_split():
    scenario = ShapesUnlabeled(image_size=32, num_domains=3, num_train=1)
    module = UnlabeledDataModule(domains=scenario, views=views(), image_size=32, batch_size=4)
    module.setup()
    with pytest.raises(ConfigError, match="data.batch_size=4 .* only 3 images"):
        module.train_dataloader()


def write_images(folder: Path, count: int, size: int = 40) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = np.random.default_rng(i).integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")


def test_folder_reads_flat_and_class_layouts_with_labels_for_evaluation_only(tmp_path):
    write_images(tmp_path / "train" / "cats", 2)
    write_images(tmp_path / "train" / "dogs", 3)
    write_images(tmp_path / "test", 2)
    folder = UnlabeledFolder(root=str(tmp_path), image_size=32)
    train = folder.collection("train")
    assert len(train) == 5 and train.labels == [0, 0, 1, 1, 1] and train.class_names == ["cats", "dogs"]
    assert train.load(4, seed=0).shape == (3, 32, 32)
    assert folder.collection("test").labels is None
    module = UnlabeledDataModule(domains=folder, views=views(), image_size=32, batch_size=2)
    module.setup()
    assert set(next(iter(module.train_dataloader()))) == {"x", "x_tf"}


def test_folder_errors_name_the_path_and_the_layout(tmp_path):
    with pytest.raises(DataError, match="does not exist .* root/{train,test}"):
        UnlabeledFolder(root=str(tmp_path / "nowhere"), image_size=32)
    with pytest.raises(DataError, match=f"missing image folder {tmp_path / 'train'}"):
        UnlabeledFolder(root=str(tmp_path), image_size=32).collection("train")
    (tmp_path / "test").mkdir()
    with pytest.raises(DataError, match="no images and no class folders"):
        UnlabeledFolder(root=str(tmp_path), image_size=32).collection("test")


def test_nmi_by_hand():
    labels, clusters = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 0, 1])
    # joint (y, c): (0,0) 1/2, (1,0) 1/4, (1,1) 1/4; p_y = (1/2, 1/2), p_c = (3/4, 1/4)
    mutual = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)
    entropy_c = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert normalized_mutual_information(labels, clusters) == pytest.approx(
        2 * mutual / (math.log(2) + entropy_c)
    )
    assert normalized_mutual_information(labels, torch.tensor([7, 7, 3, 3])) == pytest.approx(1.0)  # renamed
    assert normalized_mutual_information(
        torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
    ) == pytest.approx(0.0)


class Oracle:
    """Clusters by look and paints the input's objects in the reference's colours."""

    device = torch.device("cpu")

    def __init__(self, scenario: ShapesUnlabeled) -> None:
        self.scenario = scenario

    def domain(self, x):
        images = (x + 1) / 2
        return classify_domain(images, segment_objects(images), self.scenario.looks)

    def cluster(self, x):
        return self.domain(x)

    def translate_like(self, x, reference):
        looks = torch.tensor(LOOKS)[self.domain(reference)]  # (B, 2, 3): background, object
        masks = segment_objects((x + 1) / 2)[:, None]
        return torch.where(masks, looks[:, 1, :, None, None], looks[:, 0, :, None, None]) * 2 - 1


class Identity(Oracle):
    def cluster(self, x):
        return torch.zeros(len(x), dtype=torch.long)

    def translate_like(self, x, reference):
        return x


def test_metrics_score_the_oracle_near_one_and_the_identity_zero():
    scenario = ShapesUnlabeled(image_size=64, num_domains=4, num_test=8)
    oracle = score_scenario(scenario, Oracle(scenario), 8)
    assert (
        oracle["cluster_nmi"] == pytest.approx(1.0)
        and oracle["domain_acc"] > 0.95
        and oracle["content_iou"] > 0.9
    )
    identity = score_scenario(scenario, Identity(scenario), 8)
    assert identity["cluster_nmi"] == 0.0 and identity["domain_acc"] == 0.0 and identity["content_iou"] > 0.9
