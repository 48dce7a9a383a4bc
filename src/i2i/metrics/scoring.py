"""Which images KID/FID compare for each kind of data, and the one entry point that scores a model.

`score_model` dispatches on the datamodule's `kind`, through the model's abilities only
(`i2i.abilities`, no per-model code), for `i2i-eval` and the `ImageMetrics` callback alike:

- unpaired: per direction, the first N test images of the source domain translated vs the first N
  of the target domain (`Evaluator.evaluate`: KID, FID, LPIPS diversity).
- fewshot (FUNIT, COCO-FUNIT): FUNIT's protocol, per unseen test class: N evaluation content images
  translated given K examples of the class vs the class's real test images
  (`metrics.fewshot.per_class_generations` over the datamodule's `unseen_class_episodes`), then
  mFID/mKID over classes.
- unlabeled (TUNIT): per ground-truth domain of the test collection (its class folders), test images
  of the other domains translated with references from that domain vs its real test images, then the
  mean over domains (TUNIT reports this class-wise mFID; its official real set is the train images).
- attributes (LOMIT): per target attribute vector present in the test split, test inputs of other
  vectors translated towards exemplars having it vs the real test images having it, then the mean.

The class-wise kinds all end in `protocols.per_class_scores`. In the reference-guided ones a group
scores min(N, its test images) real images against as many translations, the inputs drawn in turn
from the other groups (the i-th image of each, then the i+1-th ...) and the references cycling
over the group's own images; a group of fewer than 2 test images is skipped with a warning (KID and
FID need two of each). Class-wise real features are extracted at every call (the sets are small);
under DDP every rank makes the same translations and extracts the features of its shard.
"""

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from i2i.abilities import FewShotTranslator, ReferenceTranslator, Translator
from i2i.errors import ConfigError, DataError
from i2i.metrics.fewshot import per_class_generations
from i2i.metrics.protocols import Evaluator, Score, per_class_scores
from i2i.metrics.translation import translate_in_chunks

log = logging.getLogger(__name__)

ScoringSets = Iterator[tuple[str, Tensor, Tensor]]  # (class name, translations, real images), in [-1, 1]


def reference_guided_sets(
    model: ReferenceTranslator,
    groups: Tensor,
    names: Sequence[str],
    load: Callable[..., Tensor],
    n_images: int | None,
    batch_size: int,
) -> ScoringSets:
    """Per group g of the test images (`groups` (N,) indices into `names`): up to `n_images` real
    images of g, and as many images of the other groups translated with references of g.
    `load(index, seed=index)` gives a test image (test images are not augmented)."""
    if len(names) < 2:
        raise DataError(f"the test images all belong to one group ({', '.join(names)}): nothing to score")
    for g, name in enumerate(names):
        members = (groups == g).nonzero().flatten()[:n_images]
        if len(members) < 2:
            log.warning("not scoring %s: %d test image(s), KID/FID need at least 2", name, len(members))
            continue
        others = [(groups == h).nonzero().flatten() for h in range(len(names)) if h != g]
        turns = sorted((turn, h, int(i)) for h, group in enumerate(others) for turn, i in enumerate(group))
        inputs = torch.stack([load(i, seed=i) for *_, i in turns[: len(members)]])
        real = torch.stack([load(int(i), seed=int(i)) for i in members])
        references = real[torch.arange(len(inputs)) % len(real)]
        translate = model.translate_like
        translations = translate_in_chunks(translate, inputs, model.device, batch_size, reference=references)
        yield name, translations * 2 - 1, real


def fewshot_sets(
    model: FewShotTranslator, datamodule: Any, n_images: int | None, batch_size: int
) -> ScoringSets:
    return per_class_generations(model, datamodule.unseen_class_episodes(n_images, batch_size))


def unlabeled_sets(
    model: ReferenceTranslator, datamodule: Any, n_images: int | None, batch_size: int
) -> ScoringSets:
    datamodule.setup()
    collection = datamodule.test_set
    if collection.labels is None:
        raise DataError(
            "the test images have no ground-truth domains, which TUNIT's class-wise FID/KID needs: "
            "group them in class folders, root/test/<class>/"
        )
    groups = torch.tensor(collection.labels)
    return reference_guided_sets(model, groups, collection.class_names, collection.load, n_images, batch_size)


def attribute_sets(
    model: ReferenceTranslator, datamodule: Any, n_images: int | None, batch_size: int
) -> ScoringSets:
    datamodule.setup()
    pairs = datamodule.test_set
    vectors, groups = torch.unique(pairs.labels, dim=0, return_inverse=True)  # sorted: a fixed order
    attributes = datamodule.selected_attrs
    names = ["+".join(a for a, on in zip(attributes, vector) if on) or "none" for vector in vectors]
    return reference_guided_sets(model, groups, names, pairs.source.load, n_images, batch_size)


class ClassWise(NamedTuple):
    """A class-wise protocol: the paper it follows, what a class is called, its scoring sets."""

    paper: str
    unit: str
    sets: Callable[[Any, Any, int | None, int], ScoringSets]


CLASS_WISE = {
    "fewshot": ClassWise("FUNIT", "class", fewshot_sets),
    "unlabeled": ClassWise("TUNIT", "domain", unlabeled_sets),
    "attributes": ClassWise("LOMIT", "attribute vector", attribute_sets),
}
KINDS = ("unpaired", *CLASS_WISE)


def check_kind(kind: str | None, key: str) -> None:
    if kind not in KINDS:
        raise ConfigError(key, kind, f"KID/FID score data of kind {', '.join(KINDS)}")


def score_model(
    evaluator: Evaluator,
    model: Translator | FewShotTranslator | ReferenceTranslator,
    datamodule: Any,
    n_images: int | None,
    rank: int = 0,
    world_size: int = 1,
) -> list[Score]:
    """Every configured score of `model` on `datamodule`'s test images, by the protocol of its kind
    (module docstring); `n_images` caps the images per domain or class (None: all of them). Call it
    with the model in eval mode (`callbacks.periodic.evaluating`)."""
    kind = getattr(datamodule, "kind", None)
    check_kind(kind, "data")
    if kind == "unpaired":
        count = n_images or sys.maxsize
        images = {domain: datamodule.test_images(domain, count) for domain in ("A", "B")}
        return evaluator.evaluate(model, images, rank, world_size)
    if evaluator.extractor is None:  # only LPIPS diversity asked for: a two-domain, multimodal score
        return []
    protocol, settings = CLASS_WISE[kind], evaluator.settings
    sets = protocol.sets(model, datamodule, n_images, settings.batch_size)
    extractor = evaluator.extractor
    return per_class_scores(
        sets, settings, extractor, paper=protocol.paper, unit=protocol.unit, rank=rank, world_size=world_size
    )
