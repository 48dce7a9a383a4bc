"""Each synthetic scenario is scored by the scorer registered for its class (`callbacks.metrics`)."""

import importlib
import pkgutil

import pytest
import torch

import i2i.data.synthetic
from i2i.callbacks.metrics import SCENARIO_SCORERS, score_scenario
from i2i.data.synthetic.base import SyntheticScenario
from i2i.data.synthetic.color import ShapesColor
from i2i.data.synthetic.shapes import Rendered


class Identity:
    device = torch.device("cpu")

    def translate(self, x, direction, **options):
        return x


def test_every_scenario_class_has_a_scorer():
    for module in pkgutil.iter_modules(i2i.data.synthetic.__path__, "i2i.data.synthetic."):
        importlib.import_module(module.name)
    scenarios = {c for c in SyntheticScenario.__subclasses__() if c.__module__.startswith("i2i.")}
    assert len(scenarios) == 6 and scenarios <= set(SCENARIO_SCORERS)


def test_a_subclass_is_scored_by_its_base_class_scorer():
    class Recoloured(ShapesColor):
        pass

    expected = score_scenario(ShapesColor(num_test=4), Identity(), 4)
    assert score_scenario(Recoloured(num_test=4), Identity(), 4) == expected
    assert set(expected) == {"content_iou_AtoB", "domain_acc_AtoB", "content_iou_BtoA", "domain_acc_BtoA"}


def test_a_scenario_without_a_scorer_is_named():
    class Unscored(SyntheticScenario):
        domains = ("A", "B")

        def render(self, domain: str, split: str, index: int) -> Rendered:
            raise AssertionError("not rendered: there is nothing to score it with")

    with pytest.raises(TypeError, match="no scorer for the scenario Unscored"):
        score_scenario(Unscored(), Identity(), 4)
