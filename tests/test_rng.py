"""The global random generators' state, as checkpoints keep it, and the seeds of DDP ranks."""

import io
import random

import numpy as np
import torch

from i2i.rng import restore_rng_state, rng_state, seed_rank


def draws() -> tuple[list[float], list[float], list[float]]:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_a_restored_state_draws_again_what_followed_it_and_survives_a_weights_only_load():
    seed_rank(0, 0)
    draws()
    buffer = io.BytesIO()
    torch.save(rng_state(), buffer)
    expected = draws()
    draws()  # the generators move on
    buffer.seek(0)
    restore_rng_state(torch.load(buffer, weights_only=True))
    assert draws() == expected


def test_every_rank_gets_its_own_reproducible_seed():
    seed_rank(7, 0)
    rank_0 = draws()
    seed_rank(7, 1)
    rank_1 = draws()
    seed_rank(7, 1)
    assert draws() == rank_1
    assert all(a != b for a, b in zip(rank_0, rank_1))
