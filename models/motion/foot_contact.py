"""Foot contact: detection by height and speed, and pinning with two-bone IK.

Detection (per foot joint): in contact when the joint is within ``height_m`` of its floor level (the clip's 5th
percentile height of that joint, so a foot joint's own clearance above the ground does not matter) and moves
slower than ``speed_m_s``. Single-frame flickers are removed.

Pinning: each contact segment of an ankle gets one pin position (the mean of the ankle's positions over the
segment); the ankle is pulled onto it with a linear blend over ``blend_frames`` at the segment's ends, by an
analytic two-bone IK on hip -> knee -> ankle that keeps the leg's bend plane. The foot keeps its world orientation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.motion.retarget_math import two_bone_ik, world_fk

UP_AXIS = 1


def detect_contacts(
    positions: np.ndarray, fps: float, *, height_m: float = 0.05, speed_m_s: float = 0.3
) -> np.ndarray:
    """Foot contacts by height and speed.

    Args:
        positions: ``(T, F, 3)`` foot-joint positions in metres (+Y up).
        fps: frames per second (speeds are in m/s).
        height_m: how far above its floor level a joint may be and still touch.
        speed_m_s: the speed below which a low joint counts as planted.

    Returns:
        ``(T, F)`` bool.

    Raises:
        ValueError: on a wrong shape or non-positive fps / thresholds.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 3 or pos.shape[-1] != 3:
        raise ValueError(f"positions must be (T, F, 3), got {pos.shape}")
    if not (fps > 0 and height_m > 0 and speed_m_s > 0):
        raise ValueError(f"fps, height_m and speed_m_s must be positive, got {fps}, {height_m}, {speed_m_s}")
    frames = pos.shape[0]
    if frames < 2:
        return np.zeros(pos.shape[:2], bool)
    floor = np.percentile(pos[..., UP_AXIS], 5, axis=0)
    low = pos[..., UP_AXIS] - floor[None] < height_m
    speed = np.linalg.norm(np.gradient(pos, axis=0), axis=-1) * fps
    contact = low & (speed < speed_m_s)
    # Close one-frame gaps and drop one-frame contacts.
    padded = np.pad(contact, ((1, 1), (0, 0)), mode="edge")
    gap = ~padded[1:-1] & padded[:-2] & padded[2:]
    contact = contact | gap
    padded = np.pad(contact, ((1, 1), (0, 0)), constant_values=False)
    lone = padded[1:-1] & ~padded[:-2] & ~padded[2:]
    return contact & ~lone


def contact_segments(contact: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` inclusive frame ranges of the True runs of a ``(T,)`` bool array."""
    edges = np.diff(np.concatenate([[0], contact.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _subtree(parents: Sequence[int], joint: int) -> np.ndarray:
    inside = np.zeros(len(parents), bool)
    inside[joint] = True
    for j in range(joint + 1, len(parents)):
        inside[j] = parents[j] >= 0 and inside[parents[j]]
    return inside


def pin_feet(
    world_rotations: np.ndarray,
    root_position: np.ndarray,
    rest_positions: np.ndarray,
    parents: Sequence[int],
    legs: Sequence[tuple[int, int, int]],
    contacts: np.ndarray,
    blend_frames: int = 3,
) -> np.ndarray:
    """Pin ankles during contact with two-bone IK.

    Args:
        world_rotations: ``(T, J, 3, 3)`` world rotations relative to the rest pose (not modified).
        root_position: ``(T, 3)``.
        rest_positions: ``(J, 3)``.
        parents: ``J`` parent indices.
        legs: per leg ``(hip, knee, ankle)`` joint indices.
        contacts: ``(T, len(legs))`` ankle contacts.
        blend_frames: frames over which the pin fades in before and out after each contact segment.

    Returns:
        ``(T, J, 3, 3)`` world rotations with the legs corrected.
    """
    rot = world_rotations.copy()
    frames = rot.shape[0]
    for leg, (hip, knee, ankle) in enumerate(legs):
        positions = world_fk(rot, root_position, rest_positions, parents)
        current = positions[:, ankle]
        weight = np.zeros(frames)
        goal = current.copy()
        for start, end in contact_segments(contacts[:, leg]):
            pin = current[start : end + 1].mean(axis=0)
            lo, hi = max(0, start - blend_frames), min(frames - 1, end + blend_frames)
            t = np.arange(lo, hi + 1)
            ramp = np.clip(np.minimum(t - (start - blend_frames - 1), (end + blend_frames + 1) - t), 0, None)
            w = np.minimum(1.0, ramp / (blend_frames + 1))
            better = w > weight[t]
            weight[t[better]] = w[better]
            goal[t[better]] = current[t[better]] + w[better, None] * (pin - current[t[better]])
        active = weight > 0
        if not active.any():
            continue
        thigh, shank = two_bone_ik(positions[active, hip], positions[active, knee], current[active], goal[active])
        upper = _subtree(parents, hip) & ~_subtree(parents, knee)
        lower = _subtree(parents, knee) & ~_subtree(parents, ankle)
        sub = rot[active]
        sub[:, upper] = thigh[:, None] @ sub[:, upper]
        sub[:, lower] = (shank @ thigh)[:, None] @ sub[:, lower]
        rot[active] = sub
    return rot
