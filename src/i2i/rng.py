"""The global random generators a run draws from: their state, kept in checkpoints so that a resumed
run draws what the uninterrupted one would have (DESIGN §10), the seed of each DDP rank, and the
style codes that multimodal models draw from their prior."""

import random
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """Every global random generator, in types `torch.load(weights_only=True)` accepts."""
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    numpy_keys = torch.from_numpy(keys.astype(np.int64))
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (numpy_keys, int(position), int(has_gauss), float(cached_gaussian)),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put every global random generator back in the state `rng_state` returned."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_rank(seed: int, rank: int) -> None:
    """Seed torch, numpy and random with a seed of their own for DDP rank `rank`."""
    rank_seed = (seed * 1_000_003 + rank) % 2**32
    torch.manual_seed(rank_seed)
    np.random.seed(rank_seed)
    random.seed(rank_seed)


def prior_codes(
    batch_size: int, n_styles: int, dim: int, style_seed: int | None, device: torch.device
) -> torch.Tensor:
    """(batch_size * n_styles, dim) codes from N(0, I), grouped per input (MUNIT's styles, DRIT's
    attributes).

    With a seed, the same n_styles codes (drawn on the CPU, so identical on every device) are used for
    every input, like MUNIT's official `test.py --synchronized`: an image's outputs do not depend on its
    batch. Without one, every input gets its own draws from the global generator.
    """
    if style_seed is None:
        return torch.randn(batch_size * n_styles, dim, device=device)
    generator = torch.Generator().manual_seed(style_seed)
    return torch.randn(n_styles, dim, generator=generator).to(device).repeat(batch_size, 1)
