"""Epoch sampling and a data loader that resumes mid-epoch exactly.

A sampler draws every random choice of an epoch (order, the random partner or class images, the
augmentation seed of each item) from a generator seeded with (seed, epoch), and splits the epoch
across DDP ranks itself. The loader counts the batches it has handed out; Lightning saves that
count in checkpoints, and a resumed run skips exactly those batches instead of replaying the epoch.
"""

from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

import torch
from torch.utils.data import DataLoader, Sampler

Key = tuple[int, int, int]  # (index in domain A, index in domain B, augmentation seed)
# (content class, content index, class of the shots, the shots' indices in it, augmentation seed)
EpisodeKey = tuple[int, int, int, tuple[int, ...], int]
K = TypeVar("K")


class EpochSampler(Sampler[K], Generic[K]):
    """An epoch of keys that is a pure function of (seed, epoch, rank), so it can resume anywhere.

    Subclasses define `__len__` (keys per rank) and `keys()`; `start` is how many keys of the
    current epoch were consumed before a resume.
    """

    def __init__(self, *, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self.start = 0  # keys of this epoch (on this rank) already consumed

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def keys(self) -> list[K]:
        """All keys of the current epoch on this rank."""
        raise NotImplementedError

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)

    def mine(self) -> slice:
        """This rank's share of the epoch's `len(self) * world_size` keys."""
        return slice(self.rank, len(self) * self.world_size, self.world_size)

    def __iter__(self) -> Iterator[K]:
        start, self.start = self.start, 0
        return iter(self.keys()[start:])


class UnpairedSampler(EpochSampler[Key]):
    """One epoch of max(|A|, |B|) keys: A in shuffled order (wrapping), B drawn at random (CycleGAN)."""

    def __init__(self, len_a: int, len_b: int, *, seed: int, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(seed=seed, rank=rank, world_size=world_size)
        self.len_a, self.len_b = len_a, len_b

    def __len__(self) -> int:
        return -(-max(self.len_a, self.len_b) // self.world_size)

    def keys(self) -> list[Key]:
        generator = self.generator()
        total = len(self) * self.world_size
        order = torch.randperm(max(self.len_a, self.len_b), generator=generator)
        order = torch.cat([order, order[: total - len(order)]])  # pad so every rank gets len(self)
        partners = self.partners(order, generator)
        seeds = torch.randint(0, 2**31 - 1, (total,), generator=generator)
        mine = self.mine()
        return list(zip((order[mine] % self.len_a).tolist(), partners[mine].tolist(), seeds[mine].tolist()))

    def partners(self, order: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The B index paired with each entry of `order` (CycleGAN: uniformly at random)."""
        return torch.randint(0, self.len_b, (len(order),), generator=generator)


class EpisodeSampler(EpochSampler[EpisodeKey]):
    """FUNIT's training episodes: one epoch visits every training image once as content, in shuffled
    order; each is paired with `shots` distinct images of one class, that class drawn with
    probability proportional to its size (the official class loader draws images uniformly).

    With `distinct_classes` the shots' class is never the content's (drawn among the other classes'
    images); the official loaders draw both independently, so the two coincide with probability
    about 1/N for N classes: rare with FUNIT's 119 classes, frequent with a dozen, where an episode
    with the same class teaches reconstruction instead of translation.
    """

    def __init__(
        self,
        class_sizes: Sequence[int],
        *,
        shots: int,
        distinct_classes: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(seed=seed, rank=rank, world_size=world_size)
        if any(size < shots for size in class_sizes):
            raise ValueError(f"every class needs at least {shots} images, sizes are {list(class_sizes)}")
        if distinct_classes and len(class_sizes) < 2:
            raise ValueError("distinct content and shot classes need at least two classes")
        self.sizes = torch.tensor(class_sizes)
        self.offsets = torch.cumsum(self.sizes, 0) - self.sizes  # first global index of each class
        self.shots, self.distinct = shots, distinct_classes

    def __len__(self) -> int:
        return -(-int(self.sizes.sum()) // self.world_size)

    def keys(self) -> list[EpisodeKey]:
        generator = self.generator()
        total, images = len(self) * self.world_size, int(self.sizes.sum())
        order = torch.randperm(images, generator=generator)
        order = torch.cat([order, order[: total - len(order)]])  # pad so every rank gets len(self)
        content_class = torch.searchsorted(self.offsets, order, right=True) - 1
        # a uniform image among those of the other classes: skip over the content class's block
        other = self.sizes[content_class] if self.distinct else torch.zeros_like(order)
        draw = (torch.rand(total, generator=generator) * (images - other)).long()
        if self.distinct:
            draw = torch.where(draw >= self.offsets[content_class], draw + other, draw)
        shot_class = torch.searchsorted(self.offsets, draw, right=True) - 1
        drawn = draw - self.offsets[shot_class]
        seeds = torch.randint(0, 2**31 - 1, (total,), generator=generator)
        keys = []
        for i in range(self.rank, total, self.world_size):
            c, s = int(content_class[i]), int(shot_class[i])
            if self.shots == 1:  # the drawn image itself (the official K = 1)
                shots: tuple[int, ...] = (int(drawn[i]),)
            else:  # K distinct images of the drawn image's class
                shots = tuple(torch.randperm(int(self.sizes[s]), generator=generator)[: self.shots].tolist())
            keys.append((c, int(order[i] - self.offsets[c]), s, shots, int(seeds[i])))
        return keys


class ResumableLoader(DataLoader):
    """A DataLoader over an `EpochSampler` whose position within the epoch survives a checkpoint.

    Lightning calls `state_dict` when it saves and `load_state_dict` before it iterates again
    (its fetcher does not prefetch ahead of a sized loader, so "yielded" equals "trained on").
    """

    sampler: EpochSampler

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


def ranks(trainer: Any) -> dict[str, int]:
    """The `rank` and `world_size` arguments of a sampler on `trainer` (one process without one)."""
    return (
        {"rank": trainer.global_rank, "world_size": trainer.world_size}
        if trainer
        else {"rank": 0, "world_size": 1}
    )


def resumable_loader(
    dataset: Any, sampler: EpochSampler, *, batch_size: int, num_workers: int, seed: int
) -> ResumableLoader:
    """A datamodule's training loader over `sampler`: whole batches only, and a generator of its own,
    because creating an iterator must not consume the global RNG, or a resumed run would draw
    different random numbers than an uninterrupted one."""
    return ResumableLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed),
    )
