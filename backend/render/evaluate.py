"""Retrieval metrics on a rendered text-video-motion dataset (:mod:`backend.render.dataset`).

Each rendered clip gives three views of one item: its video (``videos/KEY.mp4``), the motion window it shows
(``motions/KEY.npz``) and its captions. The video goes through the pose front end (:mod:`models.video.pose`:
MediaPipe Pose -> 3D Motion) and then the retrieval model's motion encoder; motions and captions through the
model's own encoders. Over the ``N`` items of a split this gives ``N x N`` similarity matrices, from which R@1/5/10
(%) and MedR are computed for video->motion, motion->video and text->motion (the first caption of each item; LAVIMO's
and TMR's "All" protocol, no near-duplicate threshold).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from models.motion.motion import Motion
from models.motion.skeleton import Skeleton

log = logging.getLogger(__name__)


def recall_at(similarity: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """R@k (%) and MedR of a square ``(N, N)`` similarity matrix whose matching pairs are on the diagonal
    (query ``i`` matches item ``i``; ties count against the match)."""
    similarity = np.asarray(similarity, np.float64)
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1] or similarity.shape[0] == 0:
        raise ValueError(f"similarity must be a non-empty square matrix, got shape {similarity.shape}")
    diagonal = np.diag(similarity)[:, None]
    ranks = (similarity >= diagonal).sum(axis=1)  # 1 = best
    out = {f"R@{k}": round(float((ranks <= k).mean() * 100), 2) for k in ks}
    out["MedR"] = float(np.median(ranks))
    return out


def load_window(path: Path) -> Motion:
    """The motion window of a dataset item (``motions/KEY.npz``) as a Motion (positions only)."""
    with np.load(path) as data:
        positions = data["positions"]
        names = tuple(str(n) for n in data["joint_names"])
        parents = tuple(int(p) for p in data["parents"])
        fps = float(data["fps"])
    offsets = np.zeros((len(names), 3), np.float32)
    for j, parent in enumerate(parents):
        if parent >= 0:
            offsets[j] = positions[0, j] - positions[0, parent]
    return Motion(skeleton=Skeleton(name="window", joint_names=names, parents=parents, rest_offsets=offsets),
                  fps=fps, positions=positions)  # fmt: skip


def evaluate_dataset(dataset: str | Path, embedder, split: str | None = "test", limit: int | None = None,
                     pose_fps: float | None = None) -> dict:
    """Video->motion, motion->video and text->motion R@1/5/10 and MedR on ``dataset`` with ``embedder``.

    Args:
        dataset: a dataset folder.
        embedder: an :class:`~backend.library.embedding.Embedder` (the retrieval model).
        split: ``train`` / ``val`` / ``test`` or ``None`` for every item.
        limit: only the first ``limit`` items.
        pose_fps: frame rate MediaPipe samples the videos at (default: the dataset's render fps).

    Returns:
        ``{"items", "video_found", "video_to_motion", "motion_to_video", "text_to_motion"}``; items whose video
        yields no person are kept with a zero query vector (they count as misses).

    Raises:
        FileNotFoundError: no ``manifest.jsonl``; ValueError: an empty split.
    """
    from models.video.pose import VideoError, extract_poses, pose_to_motion

    root = Path(dataset)
    entries = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]
    if split:
        entries = [e for e in entries if e["split"] == split]
    entries = entries[:limit] if limit else entries
    if not entries:
        raise ValueError(f"no items in split {split!r} of {root}")
    motions = [load_window(root / e["motion"]) for e in entries]
    motion_vectors = np.asarray(embedder.embed_motion(motions), np.float32)
    text_vectors = np.asarray(embedder.embed_text([e["captions"][0] if e["captions"] else "" for e in entries]))
    video_vectors = np.zeros_like(motion_vectors)
    found = 0
    poses = extract_poses([root / e["video"] for e in entries], fps=pose_fps or motions[0].fps, max_seconds=60.0)
    for index, (entry, pose) in enumerate(zip(entries, poses, strict=True)):
        try:
            if pose is None:
                raise VideoError("the video could not be opened")
            query = pose_to_motion(pose, min_seconds=0.75)
        except VideoError as exc:
            log.info("%s: %s", entry["key"], exc)
            continue
        embed_video = getattr(embedder, "embed_video", None)
        video_vectors[index] = (embed_video if callable(embed_video) else embedder.embed_motion)([query])[0]
        found += 1
    video_motion = video_vectors @ motion_vectors.T
    return {
        "items": len(entries),
        "video_found": found,
        "video_to_motion": recall_at(video_motion),
        "motion_to_video": recall_at(video_motion.T),
        "text_to_motion": recall_at(text_vectors @ motion_vectors.T),
    }
