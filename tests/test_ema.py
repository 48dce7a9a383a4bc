"""The weight-average callback."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from i2i.callbacks.ema import EMAUpdate
from i2i.errors import ConfigError


def test_average_follows_the_official_update_rule():
    live, average = nn.Linear(3, 2), nn.Linear(3, 2)
    start = [p.detach().clone() for p in average.parameters()]
    module = SimpleNamespace(iteration=5, ema_pairs=lambda: [(average, live)])
    EMAUpdate(decay=0.999).on_train_batch_end(None, module)
    for a, s, p in zip(average.parameters(), start, live.parameters()):
        torch.testing.assert_close(a, 0.999 * s + 0.001 * p.detach())


def test_average_copies_the_live_weights_before_the_start():
    live, average = nn.Linear(3, 2), nn.Linear(3, 2)
    module = SimpleNamespace(iteration=2, ema_pairs=lambda: [(average, live)])
    EMAUpdate(decay=0.999, start_iteration=10).on_train_batch_end(None, module)
    assert all(torch.equal(a, p) for a, p in zip(average.parameters(), live.parameters()))


def test_bad_decay_and_a_model_without_averages_are_refused():
    with pytest.raises(ConfigError, match="callbacks.ema.decay=1.5"):
        EMAUpdate(decay=1.5)
    with pytest.raises(ConfigError, match="keeps no weight average"):
        EMAUpdate(decay=0.9).on_fit_start(None, nn.Linear(1, 1))
