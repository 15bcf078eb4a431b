"""Skeleton-normalised motion features shared by both motion encoders.

:func:`canonical_points` turns any 3D :class:`~models.motion.Motion` into ``(T, 80, 3)`` body-part points
(:mod:`models.retrieval.body_parts`) at a fixed frame rate, canonicalised so that motions on different skeletons,
at different places, headings and body sizes look alike:

1. time resampled to ``fps`` (linear interpolation);
2. joints mapped to 5 chains x 16 points;
3. translated so the first frame's pelvis sits at the origin in x/z and the lowest foot point of the clip at y=0;
4. rotated about +Y so the first frame faces +Z (facing = (left - right) x up, from hips and shoulders);
5. divided by the rest-pose body height (units: body heights).

From these, :func:`tmr_frames` builds per-frame vectors for the TMR-style transformer (pelvis-relative body points
plus the pelvis trajectory and its velocity) and :func:`patch_image` the ``(3, frames, 80)`` Motion Patches image.
"""

from __future__ import annotations

import numpy as np

from models.motion.motion import Motion
from models.retrieval.body_parts import NUM_POINTS, POINTS_PER_PART, BodyParts, body_parts, joints_to_points

#: Per-frame TMR feature size: 80 pelvis-relative points x 3 + pelvis position (3) + pelvis velocity (3).
TMR_FEATURE_DIM = NUM_POINTS * 3 + 6
_RIGHT_LEG, _LEFT_LEG, _SPINE, _RIGHT_ARM, _LEFT_ARM = (i * POINTS_PER_PART for i in range(5))


def _resample_positions(positions: np.ndarray, source_fps: float, fps: float) -> np.ndarray:
    frames = positions.shape[0]
    if frames == 1 or abs(source_fps - fps) < 1e-6:
        return positions
    duration = frames / source_fps
    count = max(1, int(round(duration * fps)))
    src = np.arange(frames) / source_fps
    times = np.minimum(np.arange(count) / fps, src[-1])
    index = np.clip(np.searchsorted(src, times, side="right") - 1, 0, frames - 2)
    t = ((times - src[index]) / (src[index + 1] - src[index]))[:, None, None]
    return ((1 - t) * positions[index] + t * positions[index + 1]).astype(np.float32)


def facing_direction(points: np.ndarray) -> np.ndarray:
    """Unit facing direction in the x/z plane ``(T, 3)`` of body-part points ``(T, 80, 3)``.

    Facing = (left - right) x up, where left - right sums the hip-level and shoulder-level point differences of the
    left and right legs / arms (+X is the subject's left, +Z forward, DESIGN §2).
    """
    across = (points[:, _LEFT_LEG + 2] - points[:, _RIGHT_LEG + 2]) + (
        points[:, _LEFT_ARM + 4] - points[:, _RIGHT_ARM + 4]
    )
    forward = np.cross(across, np.array([0.0, 1.0, 0.0], dtype=np.float32))
    forward[:, 1] = 0.0
    norm = np.linalg.norm(forward, axis=1, keepdims=True)
    forward = np.where(norm > 1e-8, forward / np.maximum(norm, 1e-8), np.array([0.0, 0.0, 1.0], np.float32))
    return forward.astype(np.float32)


def canonical_points(motion: Motion, fps: float = 20.0, parts: BodyParts | None = None) -> np.ndarray:
    """Skeleton-normalised body-part points of ``motion``.

    Args:
        motion: a 3D motion (positions ``(T, J, 3)`` metres) on any skeleton with two legs, a spine and two arms.
        fps: output frame rate.
        parts: ``body_parts(motion.skeleton)`` when the caller already has it (saves recomputing it per clip).

    Returns:
        ``(T', 80, 3)`` float32, ``T' = round(T / motion.fps * fps)``, in body heights, first frame at the origin
        facing +Z, floor at y = 0.

    Raises:
        ValueError: for 2D keypoint motions or skeletons without identifiable limbs.
    """
    if not isinstance(motion, Motion):
        raise TypeError(f"canonical_points expects a Motion, got {type(motion).__name__}")
    if motion.is_2d:
        raise ValueError(f"retrieval needs a 3D motion; skeleton {motion.skeleton.name!r} has 2D keypoints")
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    parts = parts if parts is not None else body_parts(motion.skeleton)
    points = joints_to_points(_resample_positions(motion.positions, motion.fps, fps), parts).astype(np.float64)
    scale = parts.height
    pelvis0 = points[0, _SPINE].copy()
    points[..., 0] -= pelvis0[0]
    points[..., 2] -= pelvis0[2]
    feet = np.concatenate([points[:, _RIGHT_LEG : _RIGHT_LEG + 16, 1], points[:, _LEFT_LEG : _LEFT_LEG + 16, 1]], 1)
    points[..., 1] -= feet.min()
    forward = facing_direction(points[:1].astype(np.float32))[0].astype(np.float64)
    angle = np.arctan2(forward[0], forward[2])  # rotate by -angle about +Y so that forward -> +Z
    c, s = np.cos(-angle), np.sin(-angle)
    rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    points = points @ rotation.T
    return (points / scale).astype(np.float32)


def mirror_points(points: np.ndarray) -> np.ndarray:
    """The left/right mirror image of canonical points ``(T, 80, 3)``: x negated, left and right chains swapped."""
    mirrored = np.array(points, dtype=np.float32, copy=True)
    mirrored[..., 0] *= -1.0
    order = np.arange(NUM_POINTS)
    for a, b in ((_RIGHT_LEG, _LEFT_LEG), (_RIGHT_ARM, _LEFT_ARM)):
        order[a : a + 16], order[b : b + 16] = np.arange(b, b + 16), np.arange(a, a + 16)
    return mirrored[:, order]


def tmr_frames(points: np.ndarray, fps: float = 20.0) -> np.ndarray:
    """Per-frame TMR input ``(T, 246)`` float32 from canonical points ``(T, 80, 3)``.

    Layout: 80 points relative to the pelvis in x/z (y kept) (240), pelvis position (3), pelvis velocity in body
    heights per second (3; zero on the first frame).
    """
    points = np.asarray(points, dtype=np.float32)
    pelvis = points[:, _SPINE].copy()
    relative = points.copy()
    relative[..., 0] -= pelvis[:, None, 0]
    relative[..., 2] -= pelvis[:, None, 2]
    velocity = np.zeros_like(pelvis)
    velocity[1:] = (pelvis[1:] - pelvis[:-1]) * fps
    return np.concatenate([relative.reshape(len(points), -1), pelvis, velocity], axis=1).astype(np.float32)


def crop_or_pad(frames: np.ndarray, length: int, start: int | None = None) -> tuple[np.ndarray, int]:
    """Fit a ``(T, ...)`` array to ``length`` frames: crop a window (centred unless ``start`` is given) or pad by
    repeating the last frame. Returns ``(array (length, ...), number of real frames)``."""
    count = frames.shape[0]
    if count >= length:
        begin = (count - length) // 2 if start is None else int(np.clip(start, 0, count - length))
        return frames[begin : begin + length], length
    pad = np.repeat(frames[-1:], length - count, axis=0)
    return np.concatenate([frames, pad], axis=0), count


def patch_image(points: np.ndarray, frames: int) -> np.ndarray:
    """Motion Patches image ``(3, frames, 80)`` float32 from canonical points ``(T, 80, 3)``.

    Rows are time (cropped centred or padded by holding the last frame to ``frames``), columns the 5 x 16 body-part
    points, channels x/y/z (normalisation by dataset statistics happens in the encoder).
    """
    fitted, _ = crop_or_pad(np.asarray(points, dtype=np.float32), frames)
    return np.ascontiguousarray(fitted.transpose(2, 0, 1))
