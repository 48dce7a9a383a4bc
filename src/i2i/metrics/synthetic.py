"""Exact metrics of the `shapes_*` scenarios (DESIGN §6): one scorer per scenario.

A scenario exposes its ground truth only (renders, masks, layouts, palettes, evaluation episodes);
the scorers here translate its test images through the model's abilities (`i2i.abilities`) and
compare the translations with that ground truth (`metrics.shapes`). Each takes `(model, scenario, n_images)`
and scores the first `n_images` test images of each source domain (or training class). Which
scorer goes with which scenario class is the caller's table (`callbacks.metrics.SCENARIO_SCORERS`),
so that nothing here imports `data/`.
"""

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor

from i2i.abilities import (
    Clusterer,
    FewShotTranslator,
    InstanceTranslator,
    ReferenceTranslator,
    StyleTranslator,
    Translator,
    translation_directions,
)
from i2i.metrics.clustering import normalized_mutual_information
from i2i.metrics.instances import background_nearer, found_objects, took_look
from i2i.metrics.shapes import (
    background_error,
    border_color,
    looks_like_target,
    mask_iou,
    mean_color,
    measure_objects,
    mode_coverage,
    nearest_entry,
    recoloured,
    segment_objects,
)
from i2i.metrics.translation import translate_in_chunks
from i2i.types import SOURCE_TARGET

Color = Sequence[float]  # RGB in [0, 1]

# DESIGN §6: mode_coverage is measured over this many sampled styles per input, drawn with a fixed
# seed so that the metric is reproducible.
COVERAGE_STYLES = 12
COVERAGE_STYLE_SEED = 0
FEWSHOT_CHUNK = 16  # content images translated at a time by `score_fewshot`
CLUSTER_CHUNK = 64  # images clustered at a time by `score_unlabeled`


def score_color(model: Translator, scenario: Any, n_images: int) -> dict[str, float]:
    """`shapes_color`: content_iou and domain_acc per direction (keys `<metric>_<direction>`), in [0, 1].

    A `StyleTranslator` is scored on COVERAGE_STYLES translations of each input with styles sampled
    from a fixed seed: content_iou and domain_acc are their means, and mode_coverage the fraction of
    the target modes each input reaches (B's three for AtoB; A has one mode, so BtoA checks that
    some style reaches it). The ground truth: `scenario.looks[domain]` (background, modes), masks."""
    results = {}
    for direction in translation_directions(model):
        source, target = SOURCE_TARGET[direction]
        masks = scenario.masks(source, "test", n_images)
        images = scenario.images(source, "test", n_images)
        colours = (scenario.looks[source].background, scenario.looks[target].background)
        colours += (scenario.looks[source].modes, scenario.looks[target].modes)
        if isinstance(model, StyleTranslator):
            seeded = partial(model.translate_styles, n_styles=COVERAGE_STYLES, style_seed=COVERAGE_STYLE_SEED)
            styled = translate_in_chunks(partial(seeded, direction=direction), images, model.device)
            results[f"mode_coverage_{direction}"] = mode_coverage(styled, masks, *colours).mean().item()
            outputs, masks = styled.flatten(0, 1), masks.repeat_interleave(COVERAGE_STYLES, dim=0)
        else:
            outputs = translate_in_chunks(
                lambda x, direction=direction: model.translate(x, direction), images, model.device
            )
        results[f"content_iou_{direction}"] = mask_iou(segment_objects(outputs), masks).mean().item()
        results[f"domain_acc_{direction}"] = looks_like_target(outputs, masks, *colours).float().mean().item()
    return results


def score_geometry(model: Translator, scenario: Any, n_images: int) -> dict[str, float]:
    """`shapes_geometry`, per direction (keys `<metric>_<direction>`): shape_acc, the fraction of
    input objects that became the target shape (`scenario.shapes[domain]`), in [0, 1];
    centroid_err, the mean distance in pixels from each translated object's centroid to the input
    object's centre (`measure_objects` against the input's layout)."""
    results = {}
    for direction in translation_directions(model):
        source, target = SOURCE_TARGET[direction]
        images = scenario.images(source, "test", n_images)
        outputs = translate_in_chunks(
            lambda x, direction=direction: model.translate(x, direction), images, model.device
        )
        layouts = [scenario.sample(source, "test", i).layout for i in range(n_images)]
        shapes, errors = measure_objects(outputs, layouts)
        results[f"shape_acc_{direction}"] = sum(s == scenario.shapes[target] for s in shapes) / len(shapes)
        results[f"centroid_err_{direction}"] = sum(errors) / len(errors)
    return results


def score_instances(model: Translator, scenario: Any, n_images: int) -> dict[str, float]:
    """`shapes_instances`, per direction (keys `<metric>_<direction>`), in [0, 1]:
    - domain_acc (global, per image): the translation's background (border colour) is nearer the
      target domain's than the source's;
    - instance_acc (per object of the input): the translation took the target domain's object look at
      the object's place (`took_look`): its mean colours on the object's ring and on its core (the
      ground truth's regions) are nearest, among both domains' background and object colours, to the
      target look's (an outline: object colour, background; filled: object colour twice), and those
      of object colours stand out from the translation's background as object pixels do;
    - instance_iou (per object): IoU of the object's true mask and the object found in the translation
      inside its box grown by half the least gap between boxes (`found_objects`: object pixels with
      the regions they enclose filled, so an outline counts as the shape it outlines);
    - instance_acc_small / _large, instance_iou_small / _large: the same over the objects whose box
      is narrower than `scenario.small_side` (12 px at 64 px, the middle of the 8-16 px range) and
      over the others; left out when no scored object has that size.
    An `InstanceTranslator` (DUNIT) translates with the input's boxes, any other `Translator` by
    direction. The ground truth: `scenario.looks`, `scenario.sample(...)` (boxes, masks, sides)."""
    looks = scenario.looks
    domains = scenario.domains
    palette = [looks[d].background for d in domains] + [looks[d].object_color for d in domains]
    results = {}
    for direction in translation_directions(model):
        source, target = SOURCE_TARGET[direction]
        images, boxes, valid = scenario.boxed_images(source, "test", n_images)
        if isinstance(model, InstanceTranslator):
            translate = partial(model.translate_instances, direction=direction)
            outputs = translate_in_chunks(translate, images, model.device, boxes=boxes, valid=valid)
        else:
            outputs = translate_in_chunks(
                lambda x, direction=direction: model.translate(x, direction), images, model.device
            )
        truth = [scenario.sample(source, "test", i) for i in range(n_images)]
        owner = torch.cat([torch.full((len(t.instances),), i) for i, t in enumerate(truth)])
        objects = outputs[owner]
        ring_masks, core_masks, object_masks = (
            torch.from_numpy(np.concatenate([getattr(t, name) for t in truth]))
            for name in ("ring_masks", "core_masks", "object_masks")
        )
        target_entries = (len(domains) + domains.index(target), domains.index(target))
        took = took_look(objects, ring_masks, core_masks, palette, *target_entries, looks[target].filled)
        object_boxes = torch.from_numpy(np.concatenate([t.boxes for t in truth])).float()
        ious = mask_iou(found_objects(objects, object_boxes, scenario.gap / 2), object_masks)
        background = background_nearer(outputs, looks[source].background, looks[target].background)
        results[f"domain_acc_{direction}"] = background.float().mean().item()
        small = torch.tensor([instance.side < scenario.small_side for t in truth for instance in t.instances])
        for size, chosen in (("", torch.ones_like(small)), ("_small", small), ("_large", ~small)):
            if chosen.any():
                results[f"instance_acc{size}_{direction}"] = took[chosen].float().mean().item()
                results[f"instance_iou{size}_{direction}"] = ious[chosen].mean().item()
    return results


def score_local(model: Translator | ReferenceTranslator, scenario: Any, n_images: int) -> dict[str, float]:
    """`shapes_local`: domain_acc and bg_err per direction (keys `<metric>_<direction>`), in [0, 1].

    A `ReferenceTranslator` (LOMIT) translates source test image i towards target test image i as
    its reference; a `Translator` (MUNIT, measured alongside) translates by direction. domain_acc: the
    translation's object colour is nearer the exemplar's than the input's
    (`scenario.object_colors`); bg_err: mean absolute error on the input's background pixels."""
    results = {}
    for direction in translation_directions(model):
        source, target = SOURCE_TARGET[direction]
        inputs = scenario.images(source, "test", n_images)
        exemplars = scenario.images(target, "test", n_images)
        if isinstance(model, ReferenceTranslator):
            outputs = translate_in_chunks(model.translate_like, inputs, model.device, reference=exemplars)
        else:
            outputs = translate_in_chunks(
                lambda x, direction=direction: model.translate(x, direction), inputs, model.device
            )
        masks = scenario.masks(source, "test", n_images)
        input_colors = scenario.object_colors(source, "test", n_images)
        exemplar_colors = scenario.object_colors(target, "test", n_images)
        matches = recoloured(outputs, masks, input_colors, exemplar_colors)
        results[f"domain_acc_{direction}"] = matches.float().mean().item()
        results[f"bg_err_{direction}"] = background_error(outputs, (inputs + 1) / 2, masks).mean().item()
    return results


def classify_domain(images: Tensor, masks: Tensor, looks: Sequence[tuple[Color, Color]]) -> Tensor:
    """The index of the (background, object colour) look each image (B, 3, H, W) in [0, 1] has, (B,):
    its background's and its objects' (found inside `masks`) nearest looks when they agree, else -1."""
    background = nearest_entry(border_color(images), [b for b, _ in looks])
    colors = mean_color(images, segment_objects(images) & masks)
    found = ~colors.isnan().any(dim=1)
    objects = nearest_entry(colors.nan_to_num(), [c for _, c in looks])
    return torch.where(found & (objects == background), background, torch.full_like(background, -1))


def score_unlabeled(model: Any, scenario: Any, n_images: int) -> dict[str, float]:
    """`shapes_unlabeled`, for a `Clusterer` and `ReferenceTranslator` (TUNIT):
    - cluster_nmi: normalised mutual information of the model's clusters and the true domains;
    - domain_acc: each image translated with a same-index reference of every other domain; correct
      when the background and the object colour are both nearest the reference domain's look
      (`classify_domain` over `scenario.looks`);
    - content_iou: IoU of the objects found in those translations and the input's object mask."""
    if not isinstance(model, Clusterer) or not isinstance(model, ReferenceTranslator):
        name = type(model).__name__
        raise TypeError(f"{name} cannot be scored on shapes_unlabeled: it must cluster and translate_like")
    images = [scenario.images(domain, "test", n_images) for domain in scenario.domains]
    masks = [scenario.masks(domain, "test", n_images) for domain in scenario.domains]
    chunks = torch.cat(images).split(CLUSTER_CHUNK)
    clusters = torch.cat([model.cluster(chunk.to(model.device)).cpu() for chunk in chunks])
    labels = torch.arange(len(scenario.domains)).repeat_interleave(n_images)
    correct, ious = [], []
    for source, (x, mask) in enumerate(zip(images, masks)):
        for target, reference in enumerate(images):
            if target != source:
                outputs = translate_in_chunks(model.translate_like, x, model.device, reference=reference)
                correct.append(classify_domain(outputs, mask, scenario.looks) == target)
                ious.append(mask_iou(segment_objects(outputs), mask))
    return {
        "cluster_nmi": normalized_mutual_information(labels, clusters),
        "domain_acc": torch.cat(correct).float().mean().item(),
        "content_iou": torch.cat(ious).mean().item(),
    }


def score_fewshot(model: FewShotTranslator, scenario: Any, n_images: int) -> dict[str, float]:
    """`shapes_fewshot`, on every unseen class: class_acc and content_iou in [0, 1], colour_err in RGB
    units ([0, 1] per channel).

    The colours of a translation are read at the content image's known regions: its object colour is
    the mean over the content image's ground-truth object mask, its background colour the mean over
    the rest of the image. class_acc: the pair (object, background) is nearer, in joint RGB distance,
    to the target class's colours (`scenario.class_colors`) than to every other unseen class's and to
    the content's own (source) class's. colour_err: the mean of the object's and the background's RGB
    distance to the target class's colours, so progress below the bar is visible. content_iou: the
    objects found in the translation (`segment_objects`) against the content's object mask.

    `n_images` counts episodes per unseen class (capped at `num_test`): the first `n_images` x U
    evaluation episodes (`scenario.evaluation_episodes`), each unseen class n_images times."""
    unseen = scenario.classes("test")
    count = min(n_images, scenario.num_test) * len(unseen)
    names = ("class_acc", "colour_err", "content_iou")
    scores: dict[str, list[Tensor]] = {name: [] for name in names}
    for start in range(0, count, FEWSHOT_CHUNK):
        indices = range(start, min(start + FEWSHOT_CHUNK, count))
        content, targets, shots = scenario.evaluation_episodes(indices)
        translated = model.translate_to_class(content.to(model.device), shots.to(model.device))
        outputs = (translated.float().cpu().clamp(-1, 1) + 1) / 2
        masks = scenario.content_masks(indices)
        looks = torch.cat([mean_color(outputs, masks), mean_color(outputs, ~masks)], dim=1)
        candidates = _class_looks(scenario, unseen)  # (U, 6)
        sources = _class_looks(scenario, scenario.content_classes(indices))  # (n, 6)
        target_index = torch.tensor([unseen.index(target) for target in targets])
        to_unseen = torch.cdist(looks, candidates)  # (n, U)
        to_target = to_unseen.gather(1, target_index[:, None])[:, 0]
        others = to_unseen.scatter(1, target_index[:, None], float("inf")).min(dim=1).values
        to_source = (looks - sources).norm(dim=1)
        scores["class_acc"].append(((to_target < others) & (to_target < to_source)).float())
        target = candidates[target_index]
        object_err = (looks[:, :3] - target[:, :3]).norm(dim=1)
        background_err = (looks[:, 3:] - target[:, 3:]).norm(dim=1)
        scores["colour_err"].append((object_err + background_err) / 2)
        scores["content_iou"].append(mask_iou(segment_objects(outputs), masks))
    return {name: torch.cat(values).mean().item() for name, values in scores.items()}


def _class_looks(scenario: Any, names: Sequence[str]) -> Tensor:
    """(len(names), 6): each class's object colour then background colour, RGB in [0, 1]."""
    return torch.tensor([[*obj, *background] for obj, background in map(scenario.class_colors, names)])
