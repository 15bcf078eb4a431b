"""The ``Motion`` type: joint trajectories on a skeleton at a frame rate (../shared/DESIGN.md §2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.motion.skeleton import Skeleton


def _finite(name: str, array: np.ndarray) -> None:
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"Motion.{name} contains NaN or infinity (first at index {tuple(int(i) for i in bad)})")


@dataclass(eq=False)
class Motion:
    """Joint trajectories of one clip.

    Attributes:
        skeleton: the joint hierarchy (``J`` joints).
        fps: frames per second, > 0.
        positions: ``(T, J, 3)`` float32 world joint positions in metres (backend space, +Y up, +Z forward), or
            ``(T, J, 2)`` normalised image coordinates (y down) for 2D keypoint motions such as ``coco13``.
        rotations: optional ``(T, J, 4)`` float32 local joint rotations as unit quaternions (w, x, y, z), relative
            to the parent in the rest pose.
        root_translation: optional ``(T, 3)`` float32 root position in metres.
        metadata: free-form, JSON-serialisable facts (source path, units, license, ...).

    Raises:
        ValueError: when a shape does not match the skeleton, ``T`` is 0, ``fps`` is not a positive finite number,
            or any array holds NaN / infinity.
    """

    skeleton: Skeleton
    fps: float
    positions: np.ndarray
    rotations: np.ndarray | None = None
    root_translation: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.skeleton, Skeleton):
            raise TypeError(f"Motion.skeleton must be a Skeleton, got {type(self.skeleton).__name__}")
        try:
            fps = float(self.fps)
        except (TypeError, ValueError):
            raise ValueError(f"Motion.fps must be a number, got {self.fps!r}") from None
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"Motion.fps must be a positive number, got {self.fps!r}")
        self.fps = fps
        num = self.skeleton.num_joints
        self.positions = np.asarray(self.positions, dtype=np.float32)
        pos = self.positions
        if pos.ndim != 3 or pos.shape[1] != num or pos.shape[2] not in (2, 3):
            raise ValueError(
                f"Motion.positions must be (T, {num}, 3) or (T, {num}, 2) for skeleton {self.skeleton.name!r}, "
                f"got {pos.shape}"
            )
        if pos.shape[0] == 0:
            raise ValueError("Motion has zero frames; a motion needs at least one frame")
        _finite("positions", pos)
        frames = pos.shape[0]
        if self.rotations is not None:
            self.rotations = np.asarray(self.rotations, dtype=np.float32)
            if self.rotations.shape != (frames, num, 4):
                raise ValueError(f"Motion.rotations must be ({frames}, {num}, 4) (w,x,y,z), got {self.rotations.shape}")
            _finite("rotations", self.rotations)
            norms = np.linalg.norm(self.rotations, axis=-1)
            if np.abs(norms - 1).max() > 1e-3:
                raise ValueError(
                    f"Motion.rotations must be unit quaternions (norms {norms.min():.4g}..{norms.max():.4g})"
                )
        if self.root_translation is not None:
            self.root_translation = np.asarray(self.root_translation, dtype=np.float32)
            if self.root_translation.shape != (frames, 3):
                raise ValueError(f"Motion.root_translation must be ({frames}, 3), got {self.root_translation.shape}")
            _finite("root_translation", self.root_translation)

    @property
    def num_frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.positions.shape[0])

    @property
    def duration_s(self) -> float:
        """Duration in seconds, ``T / fps`` (each frame covers ``1 / fps``)."""
        return self.num_frames / self.fps

    @property
    def is_2d(self) -> bool:
        """True for 2D keypoint motions (positions ``(T, J, 2)``)."""
        return self.positions.shape[2] == 2

    def info(self) -> dict[str, Any]:
        """A JSON-serialisable summary: skeleton, joints, fps, frames, duration, channels."""
        return {
            "skeleton": self.skeleton.name,
            "joints": self.skeleton.num_joints,
            "joint_names": list(self.skeleton.joint_names),
            "fps": self.fps,
            "frames": self.num_frames,
            "duration_s": round(self.duration_s, 6),
            "dimensions": int(self.positions.shape[2]),
            "has_rotations": self.rotations is not None,
            "has_root_translation": self.root_translation is not None,
        }
