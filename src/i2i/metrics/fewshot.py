"""The generation step of the FUNIT evaluation protocol: per unseen class, translations and real images.

The FUNIT paper reports the mean over the unseen classes of a per-class FID (Animal Faces: 30
classes); imaginaire computes its KID the same way, one class at a time (`trainers/funit.py
_compute_kid` with `set_sample_class_idx`). `per_class_generations` yields what each per-class
score compares; the scores themselves (KID/FID) are the evaluation metrics' job. The episodes (which
content image meets which shots) are the data's: the caller passes them in
(`FewShotDataModule.unseen_class_episodes`), so this module imports nothing from `data/`.
"""

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor

from i2i.abilities import FewShotTranslator

#: per unseen class: (class name, its real images, its episodes as (content, shots) batches)
UnseenClassEpisodes = Iterable[tuple[str, Tensor, Iterable[tuple[Tensor, Tensor]]]]


def per_class_generations(
    model: FewShotTranslator, classes: UnseenClassEpisodes
) -> Iterator[tuple[str, Tensor, Tensor]]:
    """For each unseen class of `classes` in order: (class name, its generated images, its real images).

    A class's generated images are its episodes' content images (n, 3, H, W) translated with their
    shots (n, K, 3, H, W), one batch at a time; both sets are (n, 3, H, W) in [-1, 1] on the CPU.
    Call it under `callbacks.periodic.evaluating(model)` (eval mode, no gradients).
    """
    for name, real, episodes in classes:
        generated = [
            model.translate_to_class(content.to(model.device), shots.to(model.device)).float().cpu()
            for content, shots in episodes
        ]
        yield name, torch.cat(generated).clamp(-1, 1), real
