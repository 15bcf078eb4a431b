"""Forward kinematics and frame-rate resampling."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from models.motion.motion import Motion
from models.motion.rotations import from_scipy, quat_to_matrix, to_scipy
from models.motion.skeleton import Skeleton


def forward_kinematics(
    skeleton: Skeleton,
    rotations: np.ndarray,
    root_translation: np.ndarray | None = None,
    local_translations: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions and rotations from local rotations.

    ``G[j] = G[parent] @ R[j]`` and ``p[j] = p[parent] + G[parent] @ t[j]``, where ``t[j]`` is the rest offset (or
    the per-frame local translation when given) and the root sits at ``root_translation``.

    Args:
        skeleton: ``J`` joints.
        rotations: ``(T, J, 4)`` local rotations (w, x, y, z).
        root_translation: ``(T, 3)`` metres; defaults to the root's rest offset on every frame.
        local_translations: optional ``(T, J, 3)`` per-frame offsets replacing the rest offsets (BVH joints with
            position channels); the root's entry is ignored in favour of ``root_translation``.

    Returns:
        ``(positions (T, J, 3) float32, global rotation matrices (T, J, 3, 3) float64)``.

    Raises:
        ValueError: when shapes do not match the skeleton.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    frames, num = rotations.shape[0], skeleton.num_joints
    if rotations.shape != (frames, num, 4):
        raise ValueError(f"rotations must be (T, {num}, 4), got {rotations.shape}")
    if root_translation is None:
        root_translation = np.broadcast_to(skeleton.rest_offsets[0], (frames, 3))
    root_translation = np.asarray(root_translation, dtype=np.float64)
    if root_translation.shape != (frames, 3):
        raise ValueError(f"root_translation must be ({frames}, 3), got {root_translation.shape}")
    if local_translations is not None and np.shape(local_translations) != (frames, num, 3):
        raise ValueError(f"local_translations must be ({frames}, {num}, 3), got {np.shape(local_translations)}")
    local = quat_to_matrix(rotations)
    world = np.empty_like(local)
    positions = np.empty((frames, num, 3), dtype=np.float64)
    offsets = skeleton.rest_offsets.astype(np.float64)
    for j, p in enumerate(skeleton.parents):
        if p < 0:
            world[:, j] = local[:, j]
            positions[:, j] = root_translation
            continue
        offset = offsets[j] if local_translations is None else np.asarray(local_translations[:, j], np.float64)
        world[:, j] = world[:, p] @ local[:, j]
        positions[:, j] = positions[:, p] + np.einsum("tij,tj->ti", world[:, p], np.broadcast_to(offset, (frames, 3)))
    return positions.astype(np.float32), world


def resample(motion: Motion, fps: float) -> Motion:
    """The same motion at another frame rate, covering the same time span.

    Positions and root translation are linearly interpolated; rotations use spherical linear interpolation
    (scipy ``Slerp``) per joint. Frame ``i`` of the result is at time ``i / fps``; times past the last source frame
    hold it. The result has ``round(duration * fps)`` frames (at least 1).

    Raises:
        ValueError: for a non-positive or non-finite ``fps``.
    """
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    src_times = np.arange(motion.num_frames) / motion.fps
    count = max(1, int(round(motion.duration_s * fps)))
    times = np.minimum(np.arange(count) / fps, src_times[-1])

    def lerp(array: np.ndarray) -> np.ndarray:
        flat = array.reshape(motion.num_frames, -1)
        out = np.stack([np.interp(times, src_times, flat[:, k]) for k in range(flat.shape[1])], axis=1)
        return out.reshape((count,) + array.shape[1:]).astype(np.float32)

    rotations = None
    if motion.rotations is not None:
        if motion.num_frames == 1:
            rotations = np.repeat(motion.rotations, count, axis=0)
        else:
            rotations = np.empty((count, motion.skeleton.num_joints, 4), dtype=np.float32)
            for j in range(motion.skeleton.num_joints):
                slerp = Slerp(src_times, to_scipy(motion.rotations[:, j]))
                rotations[:, j] = from_scipy(slerp(times), (count,))
    return Motion(
        skeleton=motion.skeleton,
        fps=float(fps),
        positions=lerp(motion.positions),
        rotations=rotations,
        root_translation=None if motion.root_translation is None else lerp(motion.root_translation),
        metadata={**motion.metadata, "resampled_from_fps": motion.fps},
    )


def identity_rotations(frames: int, num_joints: int) -> np.ndarray:
    """``(frames, num_joints, 4)`` float32 identity quaternions (w=1)."""
    q = np.zeros((frames, num_joints, 4), dtype=np.float32)
    q[..., 0] = 1.0
    return q


__all__ = ["forward_kinematics", "resample", "identity_rotations", "Rotation"]
