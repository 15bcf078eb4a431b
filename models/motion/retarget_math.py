"""Rotation fitting used by the retargeting solver (numpy, batched over frames).

* :func:`fit_rotation` solves Wahba's problem (Wahba 1965; SVD solution of Markley 1988): the rotation ``R``
  minimising ``sum_k w_k |R a_k - b_k|^2``.
* :func:`swing_rotation` is the minimal rotation taking one direction onto another.
* :func:`world_fk` places joints from world rotations: ``p_j = p_parent + A_parent (rest_j - rest_parent)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPS = 1e-9


def normalize(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors along the last axis and the original norms (zero vectors stay zero)."""
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    unit = np.divide(v, norm, out=np.zeros_like(v), where=norm > EPS)
    return unit, norm[..., 0]


def fit_rotation(rest: np.ndarray, current: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Wahba's problem per frame.

    Args:
        rest: ``(K, 3)`` or ``(T, K, 3)`` reference vectors ``a_k``.
        current: ``(T, K, 3)`` observed vectors ``b_k``.
        weights: ``(T, K)`` non-negative weights.

    Returns:
        ``(T, 3, 3)`` float64 proper rotations (det +1).
    """
    rest = np.broadcast_to(rest, current.shape)
    b = np.einsum("tk,tki,tkj->tij", weights, current, rest)
    u, _, vt = np.linalg.svd(b)
    det = np.sign(np.linalg.det(u @ vt))
    det[det == 0] = 1.0
    u[:, :, 2] *= det[:, None]
    return u @ vt


def axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` rotations about unit ``axis (T, 3)`` by ``angle (T,)`` radians (Rodrigues)."""
    k = np.zeros(axis.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    k[..., 1, 0], k[..., 2, 0], k[..., 2, 1] = axis[..., 2], -axis[..., 1], axis[..., 0]
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def swing_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The minimal rotations taking directions ``a (T, 3)`` onto ``b (T, 3)`` (any length; zero -> identity).

    Antiparallel pairs rotate by pi about an axis perpendicular to ``a``.
    """
    ua, na = normalize(a)
    ub, nb = normalize(b)
    axis = np.cross(ua, ub)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.einsum("ti,ti->t", ua, ub)
    unit_axis, _ = normalize(axis)
    flip = (sin < 1e-9) & (cos < 0)
    if flip.any():
        helper = np.where(np.abs(ua[flip, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        unit_axis[flip] = normalize(np.cross(ua[flip], helper))[0]
    rot = axis_angle(unit_axis, np.arctan2(sin, cos))
    rot[(na < EPS) | (nb < EPS)] = np.eye(3)
    return rot


def world_fk(
    world_rotations: np.ndarray, root_position: np.ndarray, rest_positions: np.ndarray, parents: Sequence[int]
) -> np.ndarray:
    """Joint positions ``(T, J, 3)`` from world rotations relative to the rest pose ``(T, J, 3, 3)``, the root's
    position ``(T, 3)`` and rest positions ``(J, 3)``."""
    frames, num = world_rotations.shape[:2]
    positions = np.empty((frames, num, 3))
    for j, p in enumerate(parents):
        if p < 0:
            positions[:, j] = root_position
        else:
            offset = rest_positions[j] - rest_positions[p]
            positions[:, j] = positions[:, p] + world_rotations[:, p] @ offset
    return positions


def two_bone_ik(
    hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, goal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic two-bone IK keeping the current bend plane (the knee acts as the pole).

    Args:
        hip, knee, ankle: ``(T, 3)`` current joint positions.
        goal: ``(T, 3)`` where the ankle should go (clamped to the reachable range).

    Returns:
        ``(thigh rotation (T, 3, 3), shank rotation (T, 3, 3))``: world rotations to pre-multiply onto the thigh's
        subtree (about the hip) and then onto the shank's subtree (about the new knee).
    """
    upper = np.linalg.norm(knee - hip, axis=-1)
    lower = np.linalg.norm(ankle - knee, axis=-1)
    to_goal = goal - hip
    u, dist = normalize(to_goal)
    dist = np.clip(dist, np.abs(upper - lower) + 1e-6, upper + lower - 1e-6)
    cos_hip = np.clip((upper**2 + dist**2 - lower**2) / np.maximum(2 * upper * dist, EPS), -1.0, 1.0)
    pole = knee - hip
    pole = pole - np.einsum("ti,ti->t", pole, u)[:, None] * u
    pole_unit, pole_norm = normalize(pole)
    # A straight leg has no bend plane: bend towards the old knee's side of the hip-ankle line, else keep it.
    fallback, _ = normalize(np.cross(u, np.cross(ankle - hip, u) + 1e-12))
    pole_unit = np.where(pole_norm[:, None] > 1e-6, pole_unit, fallback)
    sin_hip = np.sqrt(1 - cos_hip**2)
    new_knee = hip + upper[:, None] * (cos_hip[:, None] * u + sin_hip[:, None] * pole_unit)
    new_ankle = hip + dist[:, None] * u
    thigh = swing_rotation(knee - hip, new_knee - hip)
    shank = swing_rotation(np.einsum("tij,tj->ti", thigh, ankle - knee), new_ankle - new_knee)
    return thigh, shank
