"""Search the motion library with a video clip (``baton search --video FILE``; the ``search_video`` job).

The video goes through the pose front end (:mod:`models.video.pose`: checks, MediaPipe Pose, lifting to 3D Motions
with a root trajectory). Every window of ``window_s`` seconds (1 s apart) of the people in the video is embedded in
the retrieval model's joint space — by its video encoder when it was trained on rendered clips (``baton train
retrieval --video``, :mod:`models.retrieval.trimodal`), else by its motion encoder. A library clip scores its mean
cosine over the windows (mean pooling; one search with the windows' mean embedding, which ranks identically), and
each hit says where in the video it matched best (``video_start_s``). Mean rather than max pooling: with max, one
window of noisy landmarks decides the ranking (on the real walking video a person whose coat hides her legs
"runs" in every window, and runs and dashes came up; the first plain walk was at rank 16 with max pooling, 5 with
mean). Bad videos raise :class:`models.video.pose.VideoError` (a ``ValueError``) naming what is wrong before
any model runs where possible.
"""

from __future__ import annotations

import time

import numpy as np

from backend.errors import NotAvailableError
from backend.library.library import Library
from backend.library.types import SearchFilters
from models.progress import Progress

#: Request keys of a video search besides ``video_path``.
VIDEO_KEYS = ("k", "filters", "exact", "fps", "max_seconds", "window_s")


def run_video_search(request: dict, library: Library, progress: Progress | None = None) -> dict:
    """Run ``{"video_path": FILE, "k": 10, "filters": {...}, "exact": false, "fps": 10, "max_seconds": 180,
    "window_s": 4.8}`` against ``library`` (``max_seconds``: the part of the video analysed, from its start).

    Returns:
        The search result of :func:`backend.library.jobs.run_search` (``query_kind`` ``"video"``) plus ``video``
        (codec, size, fps, duration) and ``query`` (the searched window: start in the video, frames, activity).

    Raises:
        FileNotFoundError: no such file; ValueError (``VideoError``): a bad video or request;
        NotAvailableError: no pose environment or no retrieval model.
    """
    from backend.library.jobs import MAX_K
    from models.video.pose import PoseUnavailableError, extract_pose, pose_to_windows, probe_video

    if not isinstance(request, dict) or not request.get("video_path"):
        raise ValueError("a video search needs video_path")
    unknown = set(request) - {"video_path", *VIDEO_KEYS}
    if unknown:
        raise ValueError(f"unknown video search field(s) {sorted(unknown)}")
    k = request.get("k", 10)
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer in 1..{MAX_K}, got {k!r}")
    filters = SearchFilters.from_dict(request.get("filters"))
    fps = float(request.get("fps", 10.0))
    max_seconds = float(request.get("max_seconds", 180.0))
    if not (0 < fps <= 60) or not (0 < max_seconds <= 600):
        raise ValueError(f"fps must be in (0, 60] and max_seconds in (0, 600], got {fps} and {max_seconds}")
    started = time.perf_counter()
    if progress is not None:
        progress.update(0.0, "checking the video")
    info = probe_video(request["video_path"])
    if progress is not None:
        progress.update(0.1, "finding the person (MediaPipe Pose)")
    try:
        pose = extract_pose(request["video_path"], fps=fps, max_seconds=max_seconds)
    except PoseUnavailableError as exc:
        raise NotAvailableError(str(exc)) from None
    windows = pose_to_windows(pose, window_s=float(request.get("window_s", 4.8)))
    if progress is not None:
        progress.update(0.7, "searching")
    embedder = library.embedder
    library.update_embeddings(embedder)
    exact = bool(request.get("exact", False))
    embed_video = getattr(embedder, "embed_video", None)  # the video encoder; other embedders: the motion encoder
    queries = np.asarray(embed_video(windows) if callable(embed_video) else embedder.embed_motion(windows))
    mean = queries.mean(axis=0)
    # mean_w <q_w, c> = <mean_w q_w, c>: searching with the (normalised) mean ranks the clips as mean pooling does;
    # the cosine to the normalised mean times |mean| is the mean cosine.
    ranked = library.search_embedding(mean, k, filters, model_key=embedder.model_key, exact=exact)
    norm = float(np.linalg.norm(mean))
    start = _best_windows(library, embedder.model_key, [hit.clip_id for hit in ranked], queries)
    hits = [{**hit.to_dict(), "score": round(hit.score * norm, 6),
             "video_start_s": windows[start.get(hit.clip_id, 0)].metadata["start_s"]} for hit in ranked]
    if progress is not None:
        progress.update(1.0, "done")
    return {
        "query_kind": "video",
        "hits": hits,
        "model": embedder.model_key,
        "library": library.url,
        "exact": exact,
        "video": {"codec": info.codec, "width": info.width, "height": info.height, "fps": round(info.fps, 3),
                  "duration_s": round(info.duration_s, 3)},  # fmt: skip
        "query": {"windows": len(windows), "window_frames": max(w.num_frames for w in windows), "fps": fps,
                  "frames_with_person": int(np.isfinite(pose["world"]).all(axis=(1, 2)).sum()),
                  "frames_analysed": int(len(pose["world"]))},  # fmt: skip
        "seconds": round(time.perf_counter() - started, 6),
    }


def _best_windows(library: Library, model_key: str, clip_ids: list[int], queries: np.ndarray) -> dict[int, int]:
    """For each clip of ``clip_ids``, the index of the query window ``queries (W, D)`` closest to its embedding."""
    if not clip_ids:
        return {}
    ids, vectors = library.store.embeddings(model_key, clip_ids)
    best = np.argmax(vectors @ np.asarray(queries, np.float32).T, axis=1)
    return {int(i): int(w) for i, w in zip(ids, best, strict=True)}
