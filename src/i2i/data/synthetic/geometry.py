"""`shapes_geometry` (DESIGN §6), the scenario of U-GAT-IT: a translation that must change shape.

Domain A draws circles, domain B squares of the same area; everything else is shared: the layouts
(1-3 non-overlapping objects), the colours (shapes_color's domain-B look: a dark background, one
of three object colours per image) and the pixel noise. Image i of A and image i of B are rendered
from the same random draws, so B's image i is the perfect translation of A's image i; training
still sees unpaired data, because the sampler draws the partner of every A image at random.
A translation must turn each circle into a square (or back) where it was: `shape_acc` and
`centroid_err`.
"""

from i2i.data.synthetic.base import SPLITS, SyntheticScenario, translate_in_chunks
from i2i.data.synthetic.color import LOOKS, render_look
from i2i.data.synthetic.shapes import Rendered, rng_for
from i2i.metrics.shapes import measure_objects
from i2i.types import DIRECTIONS, SOURCE_TARGET, Translator


class ShapesGeometry(SyntheticScenario):
    """Circles (A) and squares (B) in the same layouts and colours; see the module docstring."""

    domains = ("A", "B")
    shapes = {"A": "circle", "B": "square"}
    look = LOOKS["B"]

    def render(self, domain: str, split: str, index: int) -> Rendered:
        # the domain is not part of the seed: A's and B's image `index` differ only in shape
        rng = rng_for(self.seed, SPLITS[split], index)
        return render_look(rng, self.image_size, self.look, shape=self.shapes[domain])

    def metrics(self, model: Translator, n_images: int) -> dict[str, float]:
        """Per direction (keys `<metric>_<direction>`): shape_acc, the fraction of input objects
        that became the target shape, in [0, 1]; centroid_err, the mean distance in pixels from
        each translated object's centroid to the input object's centre (`measure_objects`)."""
        results = {}
        for direction in DIRECTIONS:
            source, target = SOURCE_TARGET[direction]
            outputs = translate_in_chunks(model, self.images(source, "test", n_images), direction)
            layouts = [self.sample(source, "test", i).layout for i in range(n_images)]
            shapes, errors = measure_objects(outputs, layouts)
            results[f"shape_acc_{direction}"] = sum(s == self.shapes[target] for s in shapes) / len(shapes)
            results[f"centroid_err_{direction}"] = sum(errors) / len(errors)
        return results
