"""Text-to-motion metrics in the embedding space of a retrieval model (the "judge"), HumanML3D protocol
(Guo et al. 2022; MoMask §4): FID, R-precision top-1/2/3, MM-Dist, Diversity, MultiModality, plus content accuracy,
foot skate and jitter.

All functions take plain arrays: text embeddings ``(N, D)`` and motion embeddings ``(N, D)`` of matched pairs
(row ``i`` of both describe test item ``i``), as produced by :meth:`models.retrieval.model.RetrievalModel.embed_text`
/ ``embed_motion``. Distances are Euclidean, as in the HumanML3D evaluator.
"""

from __future__ import annotations

import numpy as np

from models.metrics.conductor import frechet_distance, jitter
from models.metrics.motion import foot_skate_cm
from models.motion.foot_contact import detect_contacts

#: smpl22 foot joints (left / right ankle, left / right foot).
FOOT_JOINTS = (7, 8, 10, 11)


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(((a[:, None] - b[None]) ** 2).sum(-1), 0.0))


def r_precision(text: np.ndarray, motion: np.ndarray, batch: int = 32, top_k: int = 3,
                seed: int = 0) -> dict[str, float]:  # fmt: skip
    """R-precision: items are shuffled (``seed``) into batches of ``batch``; for each motion its own text is ranked
    among the batch's texts by distance; ``top-k`` is the fraction (%) ranked within the first ``k``.
    A last batch smaller than ``batch`` is dropped (unless it is the only one)."""
    text, motion = np.asarray(text, np.float64), np.asarray(motion, np.float64)
    n = len(text)
    order = np.random.default_rng(seed).permutation(n)
    batches = [order[i : i + batch] for i in range(0, n, batch)]
    if len(batches) > 1 and len(batches[-1]) < batch:
        batches = batches[:-1]
    hits = np.zeros(top_k)
    count = 0
    for idx in batches:
        d = _pairwise(motion[idx], text[idx])
        rank = (d < d[np.arange(len(idx)), np.arange(len(idx))][:, None]).sum(1)
        for k in range(top_k):
            hits[k] += (rank <= k).sum()
        count += len(idx)
    return {f"top{k + 1}": float(100.0 * hits[k] / max(1, count)) for k in range(top_k)}


def mm_dist(text: np.ndarray, motion: np.ndarray) -> float:
    """Mean distance between each motion embedding and its own text embedding."""
    return float(np.linalg.norm(np.asarray(text, np.float64) - np.asarray(motion, np.float64), axis=1).mean())


def diversity(motion: np.ndarray, pairs: int = 300, seed: int = 0) -> float:
    """Mean distance between ``pairs`` random pairs of motion embeddings (HumanML3D: 300)."""
    motion = np.asarray(motion, np.float64)
    if len(motion) < 2:
        raise ValueError("diversity needs at least two motions")
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(motion), pairs), rng.integers(0, len(motion), pairs)
    same = a == b
    b[same] = (b[same] + 1) % len(motion)
    return float(np.linalg.norm(motion[a] - motion[b], axis=1).mean())


def multimodality(groups: list[np.ndarray], pairs: int = 10, seed: int = 0) -> float:
    """Mean distance between ``pairs`` random pairs of samples generated for the same prompt, averaged over
    prompts (``groups``: one ``(K, D)`` array of K >= 2 samples per prompt)."""
    rng = np.random.default_rng(seed)
    values = []
    for g in groups:
        g = np.asarray(g, np.float64)
        if len(g) < 2:
            continue
        a = rng.integers(0, len(g), pairs)
        b = (a + rng.integers(1, len(g), pairs)) % len(g)
        values.append(np.linalg.norm(g[a] - g[b], axis=1).mean())
    if not values:
        raise ValueError("multimodality needs prompts with at least two samples")
    return float(np.mean(values))


def fid(generated: np.ndarray, reference: np.ndarray) -> float:
    """Fréchet distance between Gaussians of two embedding sets."""
    return frechet_distance(generated, reference)


def content_accuracy(motion: np.ndarray, prototypes: np.ndarray, labels: list[int]) -> float:
    """% of motions whose nearest content prototype (cosine, e.g. the judge's embeddings of each content's canonical
    caption) is their own content ``labels[i]`` (index into ``prototypes``)."""
    motion = np.asarray(motion, np.float64)
    proto = np.asarray(prototypes, np.float64)
    motion = motion / np.linalg.norm(motion, axis=1, keepdims=True)
    proto = proto / np.linalg.norm(proto, axis=1, keepdims=True)
    predicted = (motion @ proto.T).argmax(1)
    return float(100.0 * np.mean(predicted == np.asarray(labels)))


def foot_skate(positions: np.ndarray, fps: float) -> float:
    """Foot skate (cm per frame while in contact, :func:`models.metrics.motion.foot_skate_cm`) of a smpl22 motion
    ``(T, 22, 3)``, contacts detected by height and speed."""
    feet = np.asarray(positions)[:, list(FOOT_JOINTS)]
    return foot_skate_cm(feet, detect_contacts(feet, fps))


def motion_jitter(positions: np.ndarray, fps: float) -> float:
    """Mean joint acceleration (m/s²) of a ``(T, J, 3)`` motion (:func:`models.metrics.conductor.jitter`)."""
    return jitter(np.asarray(positions, np.float64), fps)


def limb_speed(positions: np.ndarray, fps: float) -> float:
    """Mean speed (m/s) of the joints relative to the root joint of a ``(T, J, 3)`` motion (``T >= 2``), root
    excluded: how fast the limbs and trunk move, whatever the body's travel. A motion that glides (root moving, legs
    barely swinging) has a low limb speed at a normal root speed.

    Raises:
        ValueError: for fewer than 2 frames or a shape other than ``(T, J, 3)``.
    """
    p = np.asarray(positions, np.float64)
    if p.ndim != 3 or p.shape[0] < 2 or p.shape[2] != 3:
        raise ValueError(f"positions must be (T>=2, J, 3), got {p.shape}")
    local = p[:, 1:] - p[:, :1]
    return float(np.linalg.norm(np.diff(local, axis=0), axis=-1).mean() * float(fps))


def seam_ratio(positions: np.ndarray, joins: list[int], percentile: float = 99.0) -> float:
    """Seam check: the largest mean joint speed (averaged over joints) in the frame steps touching each join,
    divided by the clip's own ``percentile`` of that speed (<= 1: the joins are no faster than the clip's own
    99th percentile, i.e. no seam). ``positions (T, J, 3)``; ``joins``: frames where windows / prompts meet."""
    p = np.asarray(positions, np.float64)
    speed = np.linalg.norm(p[1:] - p[:-1], axis=-1).mean(1)  # (T-1,)
    limit = max(float(np.percentile(speed, percentile)), 1e-9)
    worst = 0.0
    for j in joins:
        lo, hi = max(0, j - 1), min(len(speed), j + 1)
        if hi > lo:
            worst = max(worst, float(speed[lo:hi].max() / limit))
    return worst
