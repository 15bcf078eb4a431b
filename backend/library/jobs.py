"""What the backend's search job calls: a JSON-shaped request in, a JSON-serialisable result out.

Request (``dict``), exactly one query kind:
    ``{"text": "a person waves"}``, or ``{"motion": {"skeleton": Skeleton.to_dict(), "fps": 30, "positions": ARRAY}}``
    (e.g. the selected armature's evaluated joints; ARRAY is ``(T, J, 3)`` metres, backend space, either a nested
    list or the wire format ``{"dtype", "shape", "data"(base64 little-endian)}``), or ``{"motion_path": FILE}``
    (``.bvh`` / ``.npz`` / HumanML3D ``.npy``), or ``{"clip_id": 12}`` (more like this library clip);
    optional ``"k"`` (default 10, 1..1000), ``"filters"`` (:class:`~backend.library.types.SearchFilters` fields) and
    ``"exact"`` (default false: ANN).
Result: ``{"hits": [SearchHit.to_dict(), ...], "model": model key, "library": url, "query_kind": ..., "seconds": ...}``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from backend.library.library import Library
from backend.library.types import SearchFilters
from blender_addon import wire
from models.motion.io import load_motion
from models.motion.motion import Motion
from models.motion.skeleton import Skeleton
from models.progress import Progress

MAX_K = 1000


def decode_array(value: Any) -> np.ndarray:
    """A numpy array from the wire format (DESIGN §2, decoded by :func:`blender_addon.wire.decode_array` with its
    dtype, shape and size checks) or a nested list of numbers (float32).

    Raises:
        ValueError: for a malformed wire object (unknown dtype, bad shape, too large, bad base64, wrong byte count)
            or a nested list that is not a rectangular array of numbers.
    """
    if isinstance(value, dict):
        return wire.decode_array(value)
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed array (expected the wire format or a nested list of numbers): {exc}") from None


def motion_from_request(data: dict) -> Motion:
    """A :class:`Motion` from ``{"skeleton": {...}, "fps": ..., "positions": ARRAY}``.

    Raises:
        ValueError: when a key is missing or the arrays do not fit the skeleton.
    """
    try:
        skeleton_data, fps, positions = data["skeleton"], data["fps"], data["positions"]
        skeleton = Skeleton(
            name=str(skeleton_data.get("name", "query")),
            joint_names=tuple(skeleton_data["joint_names"]),
            parents=tuple(skeleton_data["parents"]),
            rest_offsets=decode_array(skeleton_data["rest_offsets"]),
            chains=tuple(tuple(c) for c in skeleton_data.get("chains", ())),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"motion query needs skeleton (joint_names, parents, rest_offsets), fps, positions: {exc}"
        ) from None
    return Motion(skeleton=skeleton, fps=fps, positions=decode_array(positions))


def run_search(request: dict, library: Library, progress: Progress | None = None) -> dict:
    """Run one search request (module docstring) against ``library`` with its retrieval model.

    Raises:
        ValueError: for a request with no or several query kinds, a bad ``k`` or bad filters.
    """
    if not isinstance(request, dict):
        raise TypeError(f"search request must be a JSON object, got {type(request).__name__}")
    kinds = [key for key in ("text", "motion", "motion_path", "clip_id") if request.get(key) is not None]
    if len(kinds) != 1:
        raise ValueError(
            f"search request needs exactly one of text, motion, motion_path, clip_id; got {kinds or 'none'}"
        )
    k = request.get("k", 10)
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer in 1..{MAX_K}, got {k!r}")
    filters = SearchFilters.from_dict(request.get("filters"))
    exact = bool(request.get("exact", False))
    started = time.perf_counter()
    if progress is not None:
        progress.update(0.0, "loading the retrieval model")
    embedder = library.embedder
    if progress is not None:
        progress.update(0.2, "embedding library clips")
    library.update_embeddings(embedder, progress=progress.sub(0.2, 0.8) if progress is not None else None)
    if progress is not None:
        progress.update(0.8, "searching")
    kind = kinds[0]
    if kind == "text":
        hits = library.search_text(str(request["text"]), k, filters, exact=exact)
    elif kind == "clip_id":
        hits = library.search_motion(int(request["clip_id"]), k, filters, exact=exact)
    else:
        motion = motion_from_request(request["motion"]) if kind == "motion" else load_motion(request["motion_path"])
        hits = library.search_motion(motion, k, filters, exact=exact)
    if progress is not None:
        progress.update(1.0, "done")
    return {
        "query_kind": kind,
        "hits": [hit.to_dict() for hit in hits],
        "model": embedder.model_key,
        "library": library.url,
        "exact": exact,
        "seconds": round(time.perf_counter() - started, 6),
    }
