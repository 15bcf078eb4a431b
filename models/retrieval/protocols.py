"""Retrieval metrics and the TMR evaluation protocols (Petrovich et al., ICCV 2023, §4.1).

All functions take a similarity matrix ``S (N_queries, N_items)`` (higher = more similar) and a boolean relevance
matrix of the same shape. The rank of a query is the 1-based position of its first relevant item when items are
sorted by decreasing similarity (ties broken by item index, a stable sort). ``R@k`` is the percentage of queries
with rank <= k; ``MedR`` the median rank.

Protocols over a test set of ``N`` (text_i, motion_i) pairs, reported text->motion (rows = texts) and
motion->text (rows = motions):
- ``all`` (TMR "All"): the whole set; only the paired item is relevant (identity relevance).
- ``threshold``: a retrieved item is relevant when its caption is a near duplicate of the query's caption
  (sentence-embedding cosine >= threshold, 0.95 by default; the pair itself always counts).
- ``dissimilar``: ``all`` on a subset of up to 100 pairs whose captions are far apart (greedy farthest-point
  selection on sentence embeddings, seeded).
- ``batch32``: ``all`` inside batches of 32 pairs (a seeded shuffle, incomplete last batch dropped), metrics averaged.
"""

from __future__ import annotations

import numpy as np

KS = (1, 2, 3, 5, 10)


def ranks(similarity: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based rank of the first relevant item per query ``(N_queries,)`` int64.

    Raises:
        ValueError: on shape mismatch, or a query without any relevant item.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if similarity.ndim != 2 or similarity.shape != relevant.shape:
        raise ValueError(f"similarity {similarity.shape} and relevance {relevant.shape} must be equal 2D shapes")
    if not relevant.any(axis=1).all():
        raise ValueError(f"{int((~relevant.any(axis=1)).sum())} queries have no relevant item")
    order = np.argsort(-similarity, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, order, axis=1)
    return hits.argmax(axis=1).astype(np.int64) + 1


def recall_metrics(query_ranks: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """``{"R@1": %, ..., "MedR": median rank}`` from ranks."""
    query_ranks = np.asarray(query_ranks)
    out = {f"R@{k}": float(100.0 * np.mean(query_ranks <= k)) for k in ks}
    out["MedR"] = float(np.median(query_ranks))
    return out


def both_directions(similarity: np.ndarray, relevant: np.ndarray) -> dict[str, dict[str, float]]:
    """Metrics text->motion (``similarity`` rows are texts) and motion->text (its transpose)."""
    relevant = np.asarray(relevant, bool)
    return {
        "text_to_motion": recall_metrics(ranks(similarity, relevant)),
        "motion_to_text": recall_metrics(ranks(np.asarray(similarity).T, relevant.T)),
    }


def protocol_all(similarity: np.ndarray) -> dict[str, dict[str, float]]:
    """``all`` protocol: only the paired item is relevant."""
    n = len(similarity)
    return both_directions(similarity, np.eye(n, dtype=bool))


def protocol_threshold(similarity: np.ndarray, caption_similarity: np.ndarray, threshold: float = 0.95) -> dict:
    """``threshold`` protocol: items whose caption cosine to the query caption is >= ``threshold`` count as hits.

    Args:
        similarity: ``(N, N)`` text x motion model similarity.
        caption_similarity: ``(N, N)`` cosine between the test captions (frozen sentence encoder).
        threshold: near-duplicate cosine (TMR reports 0.9 and 0.95 variants).
    """
    relevant = np.asarray(caption_similarity) >= threshold
    np.fill_diagonal(relevant, True)
    return both_directions(similarity, relevant)


def dissimilar_subset(caption_embeddings: np.ndarray, size: int = 100, seed: int = 0) -> np.ndarray:
    """Indices of up to ``size`` pairs with mutually far-apart captions (greedy farthest-point selection).

    Starts from a seeded random pair, then repeatedly adds the pair whose caption has the lowest maximum cosine to
    the captions already chosen.
    """
    embeddings = np.asarray(caption_embeddings, dtype=np.float64)
    n = len(embeddings)
    size = min(size, n)
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(n))]
    closest = embeddings @ embeddings[chosen[0]]
    closest[chosen[0]] = np.inf
    while len(chosen) < size:
        nxt = int(np.argmin(closest))
        chosen.append(nxt)
        closest = np.maximum(closest, embeddings @ embeddings[nxt])
        closest[chosen] = np.inf
    return np.array(sorted(chosen), dtype=np.int64)


def protocol_dissimilar(similarity: np.ndarray, caption_embeddings: np.ndarray, size: int = 100, seed: int = 0):
    """``dissimilar`` protocol: ``all`` on :func:`dissimilar_subset`."""
    index = dissimilar_subset(caption_embeddings, size, seed)
    result = protocol_all(np.asarray(similarity)[np.ix_(index, index)])
    result["size"] = int(len(index))
    return result


def protocol_batches(similarity: np.ndarray, batch_size: int = 32, seed: int = 0) -> dict:
    """``batch32`` protocol: ``all`` inside seeded random batches of ``batch_size``, metrics averaged.

    Raises:
        ValueError: when the test set is smaller than one batch.
    """
    n = len(similarity)
    if n < batch_size:
        raise ValueError(f"batch protocol needs at least {batch_size} pairs, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    per_batch = []
    for start in range(0, n - batch_size + 1, batch_size):
        index = order[start : start + batch_size]
        per_batch.append(protocol_all(np.asarray(similarity)[np.ix_(index, index)]))
    result: dict = {}
    for direction in ("text_to_motion", "motion_to_text"):
        result[direction] = {key: float(np.mean([b[direction][key] for b in per_batch]))
                             for key in per_batch[0][direction]}  # fmt: skip
    result["batches"] = len(per_batch)
    return result
