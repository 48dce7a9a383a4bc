"""Epoch sampling and a data loader that resumes mid-epoch exactly.

The sampler draws every random choice of an epoch (order, the random B partner, the augmentation
seed of each pair) from a generator seeded with (seed, epoch), and splits the epoch across DDP
ranks itself. The loader counts the batches it has handed out; Lightning saves that count in
checkpoints, and a resumed run skips exactly those batches instead of replaying the epoch.
"""

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

Key = tuple[int, int, int]  # (index in domain A, index in domain B, augmentation seed)


class UnpairedSampler(Sampler[Key]):
    """One epoch of max(|A|, |B|) keys: A in shuffled order (wrapping), B drawn at random (CycleGAN)."""

    def __init__(self, len_a: int, len_b: int, *, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.len_a, self.len_b = len_a, len_b
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self.start = 0  # keys of this epoch (on this rank) already consumed

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-max(self.len_a, self.len_b) // self.world_size)

    def keys(self) -> list[Key]:
        """All keys of the current epoch on this rank."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        total = len(self) * self.world_size
        order = torch.randperm(max(self.len_a, self.len_b), generator=generator)
        order = torch.cat([order, order[: total - len(order)]])  # pad so every rank gets len(self)
        partners = torch.randint(0, self.len_b, (total,), generator=generator)
        seeds = torch.randint(0, 2**31 - 1, (total,), generator=generator)
        mine = slice(self.rank, total, self.world_size)
        return list(zip((order[mine] % self.len_a).tolist(), partners[mine].tolist(), seeds[mine].tolist()))

    def __iter__(self) -> Iterator[Key]:
        start, self.start = self.start, 0
        return iter(self.keys()[start:])


class ResumableLoader(DataLoader):
    """A DataLoader over an `UnpairedSampler` whose position within the epoch survives a checkpoint.

    Lightning calls `state_dict` when it saves and `load_state_dict` before it iterates again
    (its fetcher does not prefetch ahead of a sized loader, so "yielded" equals "trained on").
    """

    sampler: UnpairedSampler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._yielded = 0
        self._skip = 0

    def __iter__(self) -> Iterator[Any]:
        skip, self._skip = self._skip, 0
        self.sampler.start = skip * self.batch_size
        self._yielded = skip
        for batch in super().__iter__():
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["batches"] >= len(self):  # saved on the last batch: the next epoch starts fresh
            self.sampler.set_epoch(state["epoch"] + 1)
            self._skip = 0
        else:
            self.sampler.set_epoch(state["epoch"])
            self._skip = state["batches"]


def training_loader(
    dataset: Dataset, len_a: int, len_b: int, *, trainer: Any, batch_size: int, num_workers: int, seed: int
) -> ResumableLoader:
    """The training loader of every datamodule: an `UnpairedSampler` epoch over (len_a, len_b) split
    across the trainer's ranks, full batches only, workers kept alive across epochs."""
    sampler = UnpairedSampler(
        len_a,
        len_b,
        seed=seed,
        rank=trainer.global_rank if trainer else 0,
        world_size=trainer.world_size if trainer else 1,
    )
    return ResumableLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        drop_last=True,
        # the loader's own generator: creating an iterator must not consume the global RNG,
        # or a resumed run would draw different random numbers than an uninterrupted one
        generator=torch.Generator().manual_seed(seed),
    )
