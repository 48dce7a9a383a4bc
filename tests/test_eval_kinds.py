"""Class-wise KID/FID for the few-shot, unlabeled and attribute kinds of data (metrics.scoring)."""

import json

import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from i2i.errors import DataError
from i2i.metrics.protocols import Evaluator
from i2i.metrics.scoring import reference_guided_sets, score_model
from i2i.train import build_model, train

PROXY = ["metrics.extractor=proxy", "metrics.kid_subsets=10"]


def scores_of(cfg, n_images):
    """Score a freshly built (untrained) model of `cfg` on its data, as i2i-eval does."""
    model, datamodule = build_model(cfg).eval(), instantiate(cfg.data, _convert_="all")
    with torch.no_grad():
        scores = score_model(Evaluator(instantiate(cfg.metrics)), model, datamodule, n_images)
    return {score.metric: score for score in scores}, datamodule


def check_class_rows(scores, classes, n_real, n_fake, paper, units):
    expected = {f"{m}_proxy_{c}" for m in ("fid", "kid") for c in classes} | {"mfid_proxy", "mkid_proxy"}
    assert set(scores) == expected
    for name in classes:
        kid = scores[f"kid_proxy_{name}"]
        assert kid.n_images == n_fake and kid.extractor == "proxy" and kid.std is not None
        assert f"{n_fake} translations vs {n_real} real images of" in kid.protocol
    for metric in ("fid", "kid"):
        mean = scores[f"m{metric}_proxy"]
        values = [scores[f"{metric}_proxy_{c}"].value for c in classes]
        assert mean.value == pytest.approx(sum(values) / len(values))
        assert mean.n_images == n_fake * len(classes) and mean.subset is None
        assert mean.protocol.startswith(paper) and f"mean over {len(classes)} {units}" in mean.protocol


def test_fewshot_scores_each_unseen_class_and_the_mean(make_cfg):
    scores, data = scores_of(make_cfg("model=funit", "data=shapes_fewshot", *PROXY), n_images=3)
    # the 3 first content images translated into each unseen class vs its 4 real test images
    check_class_rows(scores, data.test_classes, n_real=4, n_fake=3, paper="FUNIT", units="classes")


def test_unlabeled_scores_each_ground_truth_domain_and_the_mean(make_cfg):
    scores, data = scores_of(make_cfg("model=tunit", "data=shapes_unlabeled", *PROXY), n_images=None)
    check_class_rows(scores, data.domains.domains, n_real=4, n_fake=4, paper="TUNIT", units="domains")


def test_attributes_score_each_target_attribute_vector_and_the_mean(make_cfg):
    scores, _ = scores_of(make_cfg("model=lomit", "data=shapes_local", *PROXY), n_images=3)
    check_class_rows(scores, ("blue", "orange"), n_real=3, n_fake=3, paper="LOMIT", units="attribute vectors")


class Echo:
    """Translates to its input (or, with `to_reference`, to the reference) unchanged."""

    device = torch.device("cpu")

    def __init__(self, to_reference: bool) -> None:
        self.to_reference = to_reference

    def translate_like(self, x, reference):
        return reference if self.to_reference else x


def test_reference_guided_inputs_take_the_other_groups_in_turn_and_references_cycle():
    groups = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    load = lambda index, seed: torch.full((3, 2, 2), index / 10)  # noqa: E731
    sets = lambda model: list(reference_guided_sets(model, groups, list("abc"), load, None, 2))  # noqa: E731
    (name, inputs, real), *rest = sets(Echo(to_reference=False))
    assert name == "a" and [n for n, _, _ in rest] == ["b", "c"]
    assert real[:, 0, 0, 0].tolist() == pytest.approx([0.0, 0.3, 0.6])  # the group's own images
    assert inputs[:, 0, 0, 0].tolist() == pytest.approx([0.1, 0.2, 0.4])  # b0, c0, b1: the others in turn
    _, references, _ = sets(Echo(to_reference=True))[2]  # group c: 2 real images, 2 translations
    assert references[:, 0, 0, 0].tolist() == pytest.approx([0.2, 0.5])


def test_unlabeled_folder_without_class_folders_is_refused(make_cfg, tmp_path):
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        for i in range(2):
            Image.new("RGB", (32, 32), (40 * i, 90, 160)).save(tmp_path / split / f"{i}.png")
    cfg = make_cfg("model=tunit", "data=folder_unlabeled", f"data.domains.root={tmp_path}", *PROXY)
    with pytest.raises(DataError, match=r"no ground-truth domains.*root/test/<class>/"):
        scores_of(cfg, n_images=None)


@pytest.mark.slow
def test_callback_scores_attribute_data_per_target_vector(make_cfg, tmp_path):
    metrics = ["callbacks=image_metrics", "callbacks.image_metrics.every_n_iterations=2"]
    metrics += ["callbacks.image_metrics.n_images=2"]
    train(make_cfg("model=lomit", "data=shapes_local", *metrics, "trainer.max_steps=2", *PROXY))
    report = json.loads((tmp_path / "image_metrics.json").read_text())
    rows = {row["metric"]: row for row in report["scores"]}
    per_vector = {f"{m}_proxy_{c}" for m in ("fid", "kid") for c in ("blue", "orange")}
    assert set(rows) == per_vector | {"mfid_proxy", "mkid_proxy"}
    assert rows["mkid_proxy"]["n_images"] == 4 and rows["kid_proxy_blue"]["n_images"] == 2
    assert report["history"][-1]["metrics"]["mfid_proxy"] == rows["mfid_proxy"]["value"]
