"""`shapes_geometry` (DESIGN §6), the scenario of U-GAT-IT: a translation that must change shape.

Domain A draws circles, domain B squares of the same area; everything else is shared: the layouts
(1-3 non-overlapping objects), the colours (shapes_color's domain-B look: a dark background, one
of three object colours per image) and the pixel noise. Image i of A and image i of B are rendered
from the same random draws, so B's image i is the perfect translation of A's image i; training
still sees unpaired data, because the sampler draws the partner of every A image at random.
A translation must turn each circle into a square (or back) where it was: `shape_acc` and
`centroid_err` (`metrics.synthetic.score_geometry`, from the layouts and `shapes`).
"""

from i2i.data.synthetic.base import SPLITS, SyntheticScenario
from i2i.data.synthetic.color import LOOKS, render_look
from i2i.data.synthetic.shapes import Rendered, rng_for


class ShapesGeometry(SyntheticScenario):
    """Circles (A) and squares (B) in the same layouts and colours; see the module docstring."""

    domains = ("A", "B")
    shapes = {"A": "circle", "B": "square"}
    look = LOOKS["B"]

    def render(self, domain: str, split: str, index: int) -> Rendered:
        # the domain is not part of the seed: A's and B's image `index` differ only in shape
        rng = rng_for(self.seed, SPLITS[split], index)
        return render_look(rng, self.image_size, self.look, shape=self.shapes[domain])
