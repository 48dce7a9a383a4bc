"""The generation step of the FUNIT evaluation protocol: per unseen class, translations and real images.

The FUNIT paper reports the mean over the unseen classes of a per-class FID (Animal Faces: 30
classes); imaginaire computes its KID the same way, one class at a time (`trainers/funit.py
_compute_kid` with `set_sample_class_idx`). `per_class_generations` yields what each per-class
score compares; the scores themselves (KID/FID) are the evaluation metrics' job.
"""

from collections.abc import Iterator

import torch
from torch import Tensor

from i2i.data.fewshot import FewShotDataModule, content_images, load, shot_indices
from i2i.types import Translator


def per_class_generations(
    model: Translator,
    datamodule: FewShotDataModule,
    *,
    n_content: int | None,
    shots: int | None = None,
    batch_size: int = 16,
) -> Iterator[tuple[str, Tensor, Tensor]]:
    """For each unseen class in order: (class name, its `n_content` generated images, its real images).

    Generated images are the first `n_content` evaluation content images (the training classes in
    turn, `data.fewshot.content_of`; None: as many as the class has real images) translated to the
    class, content image i with the K shots `shot_indices(i, K, m)` of its m real images; K is
    `shots`, or the datamodule's `test_shots`.
    Real images are all of the class's evaluation images. Both (n, 3, H, W) in [-1, 1] on the CPU.
    Call it under `callbacks.periodic.evaluating(model)` (eval mode, no gradients).
    """
    domains, k = datamodule.domains, shots or datamodule.test_shots
    for name in domains.classes("test"):
        real = load(domains, name, range(domains.count(name, "test")))
        count = len(real) if n_content is None else n_content
        generated = []
        for start in range(0, count, batch_size):
            indices = range(start, min(start + batch_size, count))
            class_images = torch.stack([real[shot_indices(i, k, len(real))] for i in indices])
            content = content_images(domains, indices).to(model.device)
            generated.append(model.translate(content, class_images=class_images.to(model.device)).float().cpu())
        yield name, torch.cat(generated).clamp(-1, 1), real
