"""Regularisers of predicted soft masks (LOMIT's `mask_criterion`)."""

from torch import Tensor


def mask_similarity(mask: Tensor, features: Tensor, eps: float = 1e-8) -> Tensor:
    """mean over the batch and every pair of positions (i, j) of cos(f_i, f_j) * |m_i - m_j|.

    mask (B, 1, h, w) and features (B, C, h, w) share the spatial size. Positions whose features
    point the same way are pushed to the same mask value, so the mask follows feature regions. The
    features' norms are clamped at `eps` as the official `get_similarity`; pass them detached (the
    official code does) so only the mask learns from this term.
    """
    f = features.flatten(2).float()
    f = f / f.norm(dim=1, keepdim=True).clamp(min=eps)
    similarity = f.transpose(1, 2) @ f  # (B, hw, hw)
    m = mask.flatten(1).float()
    return (similarity * (m[:, :, None] - m[:, None, :]).abs()).mean()


def mask_total_variation(mask: Tensor) -> Tensor:
    """Sum (not mean, as the official code) of absolute differences between neighbouring mask values."""
    horizontal = (mask[..., :, 1:] - mask[..., :, :-1]).abs().sum()
    return horizontal + (mask[..., 1:, :] - mask[..., :-1, :]).abs().sum()
