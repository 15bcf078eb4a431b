"""Symmetric InfoNCE with negative filtering (TMR, Petrovich et al. ICCV 2023, §3.2).

For a batch of ``B`` matched (text_i, motion_i) pairs with L2-normalised embeddings, logits are
``S_ij = cos(t_i, m_j) / tau``. The loss is the mean of the text->motion and motion->text cross-entropies with the
diagonal as targets. Negative filtering removes off-diagonal pairs that are probably also positives — their
sentence-embedding cosine exceeds a threshold (0.6 in TMR; here computed with the frozen sentence encoder) or they
share a label group (the same content x style) — by setting their logits to -inf in both directions.
"""

from __future__ import annotations

import torch
from torch import nn


def negative_filter_mask(
    sentence_embeddings: torch.Tensor, threshold: float = 0.6, groups: torch.Tensor | None = None
) -> torch.Tensor:
    """Pairs to drop from the negatives, ``(B, B)`` bool, never on the diagonal.

    Args:
        sentence_embeddings: ``(B, D)`` L2-normalised frozen sentence embeddings of the batch's captions.
        threshold: off-diagonal pairs with cosine strictly above this are masked.
        groups: optional ``(B,)`` integer label ids; pairs with equal ids are masked too.
    """
    if sentence_embeddings.ndim != 2:
        raise ValueError(f"sentence_embeddings must be (B, D), got {tuple(sentence_embeddings.shape)}")
    similarity = sentence_embeddings @ sentence_embeddings.T
    mask = similarity > threshold
    if groups is not None:
        mask = mask | (groups[:, None] == groups[None, :])
    eye = torch.eye(len(similarity), dtype=torch.bool, device=similarity.device)
    return mask & ~eye


def info_nce(
    text: torch.Tensor, motion: torch.Tensor, temperature: float = 0.1, filter_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE loss (scalar).

    Args:
        text: ``(B, E)`` text embeddings (normalised here).
        motion: ``(B, E)`` motion embeddings (normalised here).
        temperature: tau in ``cos / tau``.
        filter_mask: ``(B, B)`` bool from :func:`negative_filter_mask` (True = not a negative).

    Raises:
        ValueError: on mismatched shapes or a non-positive temperature.
    """
    if text.shape != motion.shape or text.ndim != 2:
        raise ValueError(f"text and motion embeddings must both be (B, E), got {tuple(text.shape)} and "
                         f"{tuple(motion.shape)}")  # fmt: skip
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = nn.functional.normalize(text, dim=-1) @ nn.functional.normalize(motion, dim=-1).T / temperature
    if filter_mask is not None:
        logits = logits.masked_fill(filter_mask, float("-inf"))
    targets = torch.arange(len(logits), device=logits.device)
    return 0.5 * (nn.functional.cross_entropy(logits, targets) + nn.functional.cross_entropy(logits.T, targets))
