"""The multi-scale LSGAN objective of UNIT and MUNIT, computed by hand for their loss tests."""

import torch


def adversarial(scores: list[torch.Tensor], target: float) -> torch.Tensor:
    """The official LSGAN term summed over the discriminator's scales."""
    return sum(((s - target) ** 2).mean() for s in scores)


def assert_discriminator_loss_by_hand(model, batch, translations, d_loss, d_logs, gan_w: float) -> None:
    """The D update's terms of a two-domain model (D_a, D_b) equal the hand computation on the reals
    of `batch` and `translations` = (x_ab, x_ba), and its loss is their sum weighted by `gan_w`."""
    x_ab, x_ba = translations
    d_a = adversarial(model.D_a(batch["A"]), 1) + adversarial(model.D_a(x_ba), 0)
    d_b = adversarial(model.D_b(batch["B"]), 1) + adversarial(model.D_b(x_ab), 0)
    torch.testing.assert_close(d_logs["d_a"], d_a)
    torch.testing.assert_close(d_logs["d_b"], d_b)
    torch.testing.assert_close(d_loss, gan_w * (d_a + d_b))
