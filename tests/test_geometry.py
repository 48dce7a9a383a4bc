"""shapes_geometry (A circles, B squares) and its metrics shape_acc and centroid_err, hand-checked."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2i.callbacks.metrics import score_scenario
from i2i.data.synthetic.color import ShapesColor
from i2i.data.synthetic.geometry import ShapesGeometry
from i2i.data.synthetic.shapes import Placement, shape_coverage
from i2i.metrics.shapes import classify_shape, label_components, measure_objects


class Oracle:
    """Translates perfectly: image i of the target domain is image i of the source, reshaped."""

    device = torch.device("cpu")

    def __init__(self, scenario: ShapesGeometry, shift: int = 0) -> None:
        self.scenario, self.shift = scenario, shift

    def translate(self, x, direction):
        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        indices = [self._index_of(image, source) for image in x]
        out = torch.stack([self.scenario.image(target, "test", i) for i in indices])
        return torch.roll(out, self.shift, dims=-1)  # objects stay off the border: a roll moves them

    def _index_of(self, image, domain):
        return next(
            i
            for i in range(self.scenario.num_test)
            if torch.equal(self.scenario.image(domain, "test", i), image)
        )


class Identity:
    device = torch.device("cpu")

    def translate(self, x, direction):
        return x


def disc(size: int, cx: float, cy: float, r: float) -> torch.Tensor:
    return torch.from_numpy(shape_coverage(Placement("circle", cx, cy, r), size) >= 0.5)


def test_a_and_b_share_layout_colours_and_noise_and_differ_in_shape_only():
    scenario = ShapesGeometry(seed=2)
    for i in range(10):
        a, b = scenario.sample("A", "train", i), scenario.sample("B", "train", i)
        assert {p.shape for p in a.layout} == {"circle"} and {p.shape for p in b.layout} == {"square"}
        assert [(p.cx, p.cy, p.radius) for p in a.layout] == [(p.cx, p.cy, p.radius) for p in b.layout]
        assert a.object_colors == b.object_colors and a.background == b.background
        objects = torch.from_numpy(a.mask | b.mask).float()[None, None]
        background = ~F.max_pool2d(objects, 5, stride=1, padding=2)[0, 0].bool().numpy()  # off the edges
        assert np.array_equal(a.image[background], b.image[background])  # same pixels, noise included
    assert not torch.equal(scenario.image("A", "train", 0), scenario.image("A", "train", 1))
    assert not torch.equal(scenario.image("A", "train", 0), ShapesGeometry(seed=3).image("A", "train", 0))


def test_shapes_color_renders_the_same_images_through_the_shared_helper():
    # pixel sums of the foundation's ShapesColor renderer, before `render_look` was factored out
    scenario = ShapesColor(seed=0)
    sums = [scenario.image(d, "train", i).double().sum().item() for d in "AB" for i in (0, 1)]
    assert sums == pytest.approx([8067.925001, 7899.355309, -8913.095339, -8405.177724], abs=1e-3)


def test_connected_components_are_labelled_apart_with_8_connectivity():
    masks = torch.zeros(1, 6, 6, dtype=torch.bool)
    masks[0, 0, 0] = masks[0, 1, 1] = True  # diagonal neighbours: one component
    masks[0, 4:6, 3:6] = True
    labels = label_components(masks)[0]
    assert labels[0, 0] == labels[1, 1] != labels[4, 3] and labels[4, 3] == labels[5, 5]
    assert len(labels.unique()) == 3 and (labels[~masks[0]] == 0).all()


def test_classify_shape_by_fill_ratio_and_corners():
    square = torch.zeros(20, 20, dtype=torch.bool)
    square[4:16, 5:17] = True  # 12 x 12, fill 1, four filled corners
    assert classify_shape(square) == "square"
    assert classify_shape(disc(20, 10.0, 10.0, 6.5)) == "circle"  # 2-pixel tips left out of the box
    assert classify_shape(disc(20, 10.5, 10.5, 6.5)) == "circle"  # fill ~0.785, four empty corners
    rectangle = torch.zeros(20, 20, dtype=torch.bool)
    rectangle[4:10, 2:18] = True  # fill 1 but 6 x 16
    assert classify_shape(rectangle) == "other"
    rounded = square.clone()
    for y, x in ((4, 5), (4, 16), (15, 5), (15, 16)):
        rounded[y, x] = False  # one pixel off each corner is still a square
    assert classify_shape(rounded) == "square"
    notched = square.clone()
    notched[4:8, 5:9] = False  # a missing quarter corner: neither shape
    assert classify_shape(notched) == "other"
    stray = square.clone()
    stray[16, 9] = True  # a stray edge pixel does not widen the box
    assert classify_shape(stray) == "square"


def test_measure_objects_finds_centroids_and_missing_objects():
    image = torch.zeros(1, 3, 32, 32)
    image[0, :, 8:16, 4:12] = 1.0  # a square centred at (8, 12) in pixel units
    layout = [Placement("circle", 8.0, 12.0, 4.0), Placement("circle", 24.0, 24.0, 3.0)]
    shapes, errors = measure_objects(image, [layout])
    assert shapes == ["square", "missing"]
    assert errors == pytest.approx([0.0, 3.0])  # exact centroid; a vanished object counts one radius


def test_a_perfect_translation_scores_one_and_under_half_a_pixel():
    scenario = ShapesGeometry(num_test=24)
    metrics = score_scenario(scenario, Oracle(scenario), 24)
    assert metrics["shape_acc_AtoB"] == 1.0 and metrics["shape_acc_BtoA"] == 1.0
    assert metrics["centroid_err_AtoB"] < 0.5 and metrics["centroid_err_BtoA"] < 0.5


def test_the_identity_keeps_every_shape_and_scores_zero_shape_accuracy():
    metrics = score_scenario(ShapesGeometry(num_test=24), Identity(), 24)
    assert metrics["shape_acc_AtoB"] == 0.0 and metrics["shape_acc_BtoA"] == 0.0
    assert metrics["centroid_err_AtoB"] < 0.5 and metrics["centroid_err_BtoA"] < 0.5


def test_a_translation_moved_by_three_pixels_scores_about_three_pixels():
    scenario = ShapesGeometry(num_test=24)
    metrics = score_scenario(scenario, Oracle(scenario, shift=3), 24)
    assert metrics["shape_acc_AtoB"] == 1.0
    assert metrics["centroid_err_AtoB"] == pytest.approx(3.0, abs=0.5)
