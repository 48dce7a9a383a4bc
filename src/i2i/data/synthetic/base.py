"""The scenario interface: procedural domains that know their ground truth (scored by `metrics.synthetic`)."""

from abc import ABC, abstractmethod
from functools import lru_cache

import torch
from torch import Tensor

from i2i.data.synthetic.shapes import Rendered
from i2i.errors import check_choice, check_divisible, check_positive

SPLITS = {"train": 0, "test": 1}


class SyntheticScenario(ABC):
    """Domains rendered on the fly from (seed, split, domain, index); no files, no download.

    Subclasses define `domains` and `render`, and expose the ground truth their scorer in
    `metrics.synthetic` compares translations with; no scenario touches a model.
    """

    domains: tuple[str, ...]

    def __init__(
        self, *, image_size: int = 64, seed: int = 0, num_train: int = 2000, num_test: int = 200
    ) -> None:
        check_divisible(
            "data.image_size", image_size, 16, "the shapes scenarios render at multiples of 16 px"
        )
        check_positive("data.domains.num_train", num_train)
        check_positive("data.domains.num_test", num_test)
        self.image_size = image_size
        self.seed = seed
        self.num_train = num_train
        self.num_test = num_test
        self.sample = lru_cache(maxsize=4096)(self._sample)

    def __getstate__(self) -> dict:
        # The cache wraps a bound method, which does not pickle; spawned DDP workers and data
        # loader workers get a copy with an empty cache of their own.
        state = self.__dict__.copy()
        del state["sample"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.sample = lru_cache(maxsize=4096)(self._sample)

    def size(self, split: str) -> int:
        return self.num_train if split == "train" else self.num_test

    def _sample(self, domain: str, split: str, index: int) -> Rendered:
        check_choice("domain", domain, self.domains)
        check_choice("split", split, SPLITS)
        return self.render(domain, split, index)

    @abstractmethod
    def render(self, domain: str, split: str, index: int) -> Rendered:
        """The image `index` of `domain` in `split`, with its ground truth."""

    def source(self, domain: str, split: str) -> "SyntheticSource":
        """The images of one domain and split, as the datamodule reads them."""
        return SyntheticSource(self, domain, split)

    def image(self, domain: str, split: str, index: int) -> Tensor:
        """The image as a (3, H, W) tensor in [-1, 1], the model's input range."""
        return torch.from_numpy(self.sample(domain, split, index).image).permute(2, 0, 1) * 2 - 1

    def images(self, domain: str, split: str, count: int) -> Tensor:
        """The first `count` images of a split, (count, 3, H, W) in [-1, 1]."""
        return torch.stack([self.image(domain, split, i) for i in range(count)])

    def masks(self, domain: str, split: str, count: int) -> Tensor:
        """Ground-truth object masks of the first `count` images, (count, H, W) bool."""
        return torch.stack([torch.from_numpy(self.sample(domain, split, i).mask) for i in range(count)])


class SyntheticSource:
    """One domain and split of a scenario, with the `len`/`load` interface of a folder source."""

    def __init__(self, scenario: SyntheticScenario, domain: str, split: str) -> None:
        self.scenario, self.domain, self.split = scenario, domain, split

    def __len__(self) -> int:
        return self.scenario.size(self.split)

    def load(self, index: int, seed: int) -> Tensor:
        """Image `index` in [-1, 1]; the procedural images need no augmentation, so `seed` is unused."""
        return self.scenario.image(self.domain, self.split, index)
