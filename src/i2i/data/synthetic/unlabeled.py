"""`shapes_unlabeled` (DESIGN §6), TUNIT's scenario: several domains mixed, with no labels.

Each domain has its own background colour and object colour (1-3 circles, squares or triangles
per image, as in `shapes_color`); the training collection interleaves the domains, and only the
metrics know which image came from where. Colours are far apart in hue and brightness, so the
official colour-jitter augmentation does not carry one domain onto another.

The scenario exposes the ground truth (the domains, their `looks`, masks);
`metrics.synthetic.score_unlabeled` scores a model's clusters and translations against it.
"""

from torch import Tensor

from i2i.data.synthetic.base import SPLITS, SyntheticScenario
from i2i.data.synthetic.shapes import RGB, Rendered, jitter, render, rng_for, sample_layout
from i2i.errors import check_choice

#: (background, object colour) of each domain, in the order `num_domains` takes them
LOOKS: tuple[tuple[RGB, RGB], ...] = (
    ((0.88, 0.88, 0.86), (0.20, 0.35, 0.85)),  # light grey, blue
    ((0.12, 0.12, 0.14), (0.90, 0.20, 0.15)),  # near black, red
    ((0.15, 0.45, 0.20), (0.95, 0.85, 0.25)),  # green, yellow
    ((0.45, 0.20, 0.55), (0.95, 0.95, 0.95)),  # purple, white
    ((0.90, 0.65, 0.30), (0.10, 0.45, 0.50)),  # orange, teal
)
BACKGROUND_JITTER, OBJECT_JITTER = 0.05, 0.06


class ShapesUnlabeled(SyntheticScenario):
    """`num_domains` (3-5) domains that differ in colours; see the module docstring.

    `num_train`/`num_test` count the images of each domain; the collections hold all domains.
    """

    def __init__(self, *, num_domains: int = 4, **scenario: int) -> None:
        check_choice("data.domains.num_domains", num_domains, range(3, len(LOOKS) + 1))
        super().__init__(**scenario)
        self.domains = tuple(f"d{i}" for i in range(num_domains))
        self.looks = LOOKS[:num_domains]

    def render(self, domain: str, split: str, index: int) -> Rendered:
        domain_index = self.domains.index(domain)
        rng = rng_for(self.seed, SPLITS[split], domain_index, index)
        background, color = self.looks[domain_index]
        layout = sample_layout(rng, self.image_size)
        colors = tuple(jitter(rng, color, OBJECT_JITTER) for _ in layout)
        return render(rng, self.image_size, layout, jitter(rng, background, BACKGROUND_JITTER), colors)

    def collection(self, split: str) -> "MixedCollection":
        """Every domain's images of `split`, interleaved (image i is of domain i mod num_domains)."""
        return MixedCollection(self, split)


class MixedCollection:
    """The `Collection` of all domains of a split (labels are the true domains, for evaluation only)."""

    def __init__(self, scenario: ShapesUnlabeled, split: str) -> None:
        self.scenario, self.split = scenario, split
        count = len(scenario.domains)
        self.labels = [i % count for i in range(count * scenario.size(split))]
        self.class_names = list(scenario.domains)

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int, seed: int) -> Tensor:
        """Image `index` in [-1, 1]; `seed` is unused (the views are drawn by the dataset)."""
        count = len(self.scenario.domains)
        return self.scenario.image(self.scenario.domains[index % count], self.split, index // count)
