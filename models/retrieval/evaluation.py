"""Evaluation of a retrieval model on the held-out split: TMR protocols and free-form query hit rates.

Test pairs are the ``test`` clips (:mod:`models.retrieval.datasets`) with their canonical caption
(:func:`~models.retrieval.captions.canonical_caption`, e.g. "a person waves the right hand in a tired way").
Free-form queries (:mod:`models.retrieval.freeform_queries`) are ranked against the same held-out clips; a content
query hits at k when any of its top-k clips has an accepted content, a style query when any has its style group.
"""

from __future__ import annotations

import numpy as np

from models.retrieval import protocols
from models.retrieval.captions import STYLE_GROUPS, canonical_caption
from models.retrieval.datasets import Clip
from models.retrieval.freeform_queries import CONTENT_QUERIES, STYLE_QUERIES
from models.retrieval.model import RetrievalModel

PROTOCOLS = ("all", "threshold", "dissimilar", "batch32")
HIT_KS = (1, 5, 10)


def held_out_pairs(clips: list[Clip]) -> tuple[list[Clip], list[str]]:
    """Held-out labelled clips and their canonical captions."""
    test = [c for c in clips if c.split == "test" and c.content is not None]
    return test, [canonical_caption(c.content, c.style) for c in test]


def hit_rates(similarity: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...] = HIT_KS) -> dict[str, float]:
    """``{"R@k": % of queries with a relevant item in the top k}`` for ``similarity (Q, N)``, ``relevant (Q, N)``."""
    order = np.argsort(-np.asarray(similarity), axis=1, kind="stable")
    hits = np.take_along_axis(np.asarray(relevant, bool), order, axis=1)
    return {f"R@{k}": float(100.0 * hits[:, :k].any(axis=1).mean()) for k in ks}


def style_group(style: str | None) -> str | None:
    """Style label -> its evaluation group (``old`` -> ``elderly``)."""
    return STYLE_GROUPS.get(style, style) if style is not None else None


def freeform_hits(model: RetrievalModel, test: list[Clip], motion_embeddings: np.ndarray) -> dict:
    """Content-level and style-level hit rates of the hand-written free-form queries (text -> motion).

    Returns ``{"content": {"R@1", "R@5", "R@10", "queries", "per_class": {...}}, "style": {...}}`` in percent; query
    classes whose accepted contents have no held-out clip are skipped (and listed under ``skipped``).
    """
    contents = np.array([c.content for c in test])
    texts, relevant_rows, classes, skipped = [], [], [], []
    for name, (accepted, queries) in CONTENT_QUERIES.items():
        relevant = np.isin(contents, accepted)
        if not relevant.any():
            skipped.append(name)
            continue
        texts += list(queries)
        relevant_rows += [relevant] * len(queries)
        classes += [name] * len(queries)
    result: dict = {"content": {}, "style": {}}
    if texts:
        similarity = model.embed_text(texts) @ motion_embeddings.T
        relevant = np.stack(relevant_rows)
        result["content"] = {**hit_rates(similarity, relevant), "queries": len(texts), "skipped": skipped}
        per_class = {}
        for name in dict.fromkeys(classes):
            rows = np.array([c == name for c in classes])
            per_class[name] = hit_rates(similarity[rows], relevant[rows])
        result["content"]["per_class"] = per_class
    groups = np.array([style_group(c.style) for c in test])
    style_texts = [q for q, g in STYLE_QUERIES if (groups == g).any()]
    if style_texts:
        relevant = np.stack([groups == g for q, g in STYLE_QUERIES if (groups == g).any()])
        similarity = model.embed_text(style_texts) @ motion_embeddings.T
        chance = {f"R@{k}": float(100.0 * np.mean([1 - _none_in_k(r, k) for r in relevant])) for k in HIT_KS}
        result["style"] = {**hit_rates(similarity, relevant), "queries": len(style_texts), "chance": chance}
    return result


def _none_in_k(relevant_row: np.ndarray, k: int) -> float:
    """Probability that k items drawn at random without replacement contain no relevant one."""
    n, r = len(relevant_row), int(relevant_row.sum())
    p = 1.0
    for i in range(k):
        p *= max(0.0, (n - r - i) / (n - i))
    return p


def evaluate(
    model: RetrievalModel, clips: list[Clip], protocol_names: tuple[str, ...] = PROTOCOLS, threshold: float = 0.95
) -> dict:
    """Metrics on the held-out split as a JSON-serialisable dict.

    Args:
        model: a trained model.
        clips: clips with their split (:func:`~models.retrieval.datasets.load_clips`).
        protocol_names: any of ``all`` (TMR "All": the whole held-out set), ``threshold``, ``dissimilar``,
            ``batch32``; ``batch32`` is skipped when there are fewer than 32 pairs.
        threshold: near-duplicate caption cosine for the threshold protocol.

    Returns:
        ``{"test_pairs", "distinct_captions", "protocols": {name: {"text_to_motion": {...}, "motion_to_text":
        {...}}}, "freeform": {...}}`` (percentages and median ranks).

    Raises:
        ValueError: for an unknown protocol or an empty held-out split.
    """
    unknown = [p for p in protocol_names if p not in PROTOCOLS]
    if unknown or not protocol_names:
        raise ValueError(f"unknown protocol {unknown or protocol_names}; choose from {', '.join(PROTOCOLS)}")
    test, captions = held_out_pairs(clips)
    if len(test) < 2:
        raise ValueError(f"the held-out split has {len(test)} labelled clips; need at least 2")
    motion = model.embed_points([np.asarray(c.points, np.float32) for c in test])
    text = model.embed_text(captions)
    similarity = text @ motion.T
    caption_embeddings = model.sentence_encoder.encode(captions)
    caption_similarity = caption_embeddings @ caption_embeddings.T
    result: dict = {"test_pairs": len(test), "distinct_captions": len(set(captions)), "protocols": {}}
    for name in dict.fromkeys(protocol_names):
        if name == "all":
            result["protocols"]["all"] = protocols.protocol_all(similarity)
        elif name == "threshold":
            result["protocols"]["threshold"] = {
                **protocols.protocol_threshold(similarity, caption_similarity, threshold), "threshold": threshold}
        elif name == "dissimilar":
            result["protocols"]["dissimilar"] = protocols.protocol_dissimilar(similarity, caption_embeddings)
        elif len(test) >= 32:
            result["protocols"]["batch32"] = protocols.protocol_batches(similarity, 32)
    result["freeform"] = freeform_hits(model, test, motion)
    return result
