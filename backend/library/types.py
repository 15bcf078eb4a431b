"""Plain records the motion library stores and returns (no storage or model code here)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SearchHit:
    """One search result (INTERFACES.md "Library").

    Attributes:
        clip_id: the clip's id in its library.
        name: the clip's display name (usually the source file stem).
        score: cosine similarity between the query and the clip embedding, in [-1, 1]; higher is closer.
        duration_s: clip duration in seconds.
        skeleton: skeleton label (``bandai22``, ``cmu31``, ``smpl22``, ...; see
            :func:`backend.library.codec.skeleton_label`).
        license: the clip's license (``CC BY-NC 4.0`` for Bandai Namco: non-commercial).
        caption: the clip's first caption ("" when it has none).
    """

    clip_id: int
    name: str
    score: float
    duration_s: float
    skeleton: str
    license: str
    caption: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "clip_id": self.clip_id, "name": self.name, "score": round(float(self.score), 6),
            "duration_s": round(float(self.duration_s), 4), "skeleton": self.skeleton, "license": self.license,
            "caption": self.caption,
        }  # fmt: skip


@dataclass(frozen=True)
class SearchFilters:
    """Restrictions applied before ranking.

    Attributes:
        skeleton: keep only clips with this skeleton label (``None``: any).
        min_duration_s / max_duration_s: inclusive duration range in seconds (``None``: unbounded).
        license: keep only clips whose license equals this string (``None``: any).
        commercial_only: drop clips whose license forbids commercial use (``NC`` licenses).

    Raises:
        ValueError: for a negative or inverted duration range.
    """

    skeleton: str | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    license: str | None = None
    commercial_only: bool = False

    def __post_init__(self) -> None:
        for name in ("min_duration_s", "max_duration_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(float(value)) and float(value) >= 0):
                raise ValueError(f"SearchFilters.{name} must be a non-negative number of seconds, got {value!r}")
        lo, hi = self.min_duration_s, self.max_duration_s
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"SearchFilters: min_duration_s {lo} is larger than max_duration_s {hi}")

    @property
    def active(self) -> bool:
        """True when any restriction is set."""
        return any(
            v not in (None, False)
            for v in (self.skeleton, self.min_duration_s, self.max_duration_s, self.license, self.commercial_only)
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SearchFilters:
        """Build from a JSON object with the attribute names as keys (unknown keys raise ``ValueError``)."""
        data = dict(data or {})
        unknown = set(data) - {"skeleton", "min_duration_s", "max_duration_s", "license", "commercial_only"}
        if unknown:
            raise ValueError(f"unknown search filter(s) {sorted(unknown)}")
        return cls(**data)


@dataclass
class NewClip:
    """A clip ready to be written: everything the store keeps about it.

    Attributes:
        content_hash: sha256 hex digest identifying the source content (import idempotency key).
        name: display name.
        source_path: absolute path of the file it came from.
        source_kind: ``bvh``, ``humanml3d``, ``amass`` or ``npz``.
        skeleton: skeleton label.
        fps: frames per second of the stored positions.
        frames: number of stored frames ``T``.
        license: license string.
        captions: natural-language descriptions (may be empty).
        tags: short labels (content, style, dataset).
        motion_blob: the encoded positions (:func:`backend.library.codec.encode_motion`).
        thumbnail_png: optional small PNG of a pose strip.
        embeddings: ``{model key: (D,) float32 unit vector}`` computed during import.
    """

    content_hash: str
    name: str
    source_path: str
    source_kind: str
    skeleton: str
    fps: float
    frames: int
    license: str
    captions: list[str]
    tags: list[str]
    motion_blob: bytes
    thumbnail_png: bytes | None = None
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True)
class ClipRecord:
    """A stored clip's metadata (without the motion blob)."""

    clip_id: int
    content_hash: str
    name: str
    source_path: str
    source_kind: str
    skeleton: str
    fps: float
    frames: int
    duration_s: float
    license: str
    captions: tuple[str, ...]
    tags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "clip_id": self.clip_id, "content_hash": self.content_hash, "name": self.name,
            "source_path": self.source_path, "source_kind": self.source_kind, "skeleton": self.skeleton,
            "fps": self.fps, "frames": self.frames, "duration_s": round(self.duration_s, 4), "license": self.license,
            "captions": list(self.captions), "tags": list(self.tags),
        }  # fmt: skip
