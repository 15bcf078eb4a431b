"""The one place where backend space meets Blender space (numpy only; no bpy, no scipy).

Backend space (DESIGN §2): right-handed, +Y up, +Z forward (the subject faces +Z), +X the subject's left.
Blender space: +Z up, -Y forward (a character faces the front view), +X the character's left. The change of basis
is the rotation ``C`` of +90 degrees about X: ``(x, y, z)_backend -> (x, -z, y)_blender``.

Conventions:

* Points and directions map by ``C``; a frame (a bone's rest matrix: bone-local -> world) maps by ``C @ M``
  (bone-local coordinates do not change); a *delta* rotation acting on world vectors (the Skeleton-convention
  local rotations a retargeted Motion carries) maps by ``C @ L @ C^T``.
* A pose bone's rotation is relative to the bone's own rest frame ``B``: ``Q = B^T L B`` with ``L`` the delta in
  the same space. A root bone's location is in its rest frame too: ``loc = B^T (p - head)``.

Quaternions are (w, x, y, z) like Blender's and the backend's.
"""

from __future__ import annotations

import numpy as np

#: Backend -> Blender change of basis (rotation +90 degrees about X).
BACKEND_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
BLENDER_TO_BACKEND = BACKEND_TO_BLENDER.T


def points_to_blender(points: np.ndarray) -> np.ndarray:
    """``(..., 3)`` backend points or directions -> Blender space (float64)."""
    return np.asarray(points, dtype=np.float64) @ BACKEND_TO_BLENDER.T


def points_to_backend(points: np.ndarray) -> np.ndarray:
    """``(..., 3)`` Blender points or directions -> backend space (float64)."""
    return np.asarray(points, dtype=np.float64) @ BLENDER_TO_BACKEND.T


def _frame(matrices: np.ndarray, basis: np.ndarray) -> np.ndarray:
    m = np.asarray(matrices, dtype=np.float64)
    if m.shape[-2:] != (4, 4):
        raise ValueError(f"frames must be (..., 4, 4) matrices, got {m.shape}")
    out = m.copy()
    out[..., :3, :] = np.einsum("ij,...jk->...ik", basis, m[..., :3, :])
    return out


def frames_to_blender(matrices: np.ndarray) -> np.ndarray:
    """``(..., 4, 4)`` backend rest frames (bone -> world) -> Blender armature space: ``C @ M``."""
    return _frame(matrices, BACKEND_TO_BLENDER)


def frames_to_backend(matrices: np.ndarray) -> np.ndarray:
    """``(..., 4, 4)`` Blender armature-space frames (``bone.matrix_local``) -> backend space: ``C^T @ M``."""
    return _frame(matrices, BLENDER_TO_BACKEND)


def quat_to_matrix(quaternions: np.ndarray) -> np.ndarray:
    """``(..., 4)`` (w, x, y, z) -> ``(..., 3, 3)`` (normalised first)."""
    q = np.asarray(quaternions, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def matrix_to_quat(matrices: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations -> ``(..., 4)`` (w, x, y, z), w >= 0.

    Shepperd's method, vectorised: all four candidate solutions are computed and, per matrix, the one built on the
    largest of ``(trace, R00, R11, R22)`` (numerically safest) is kept.
    """
    m = np.asarray(matrices, dtype=np.float64)
    lead = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    r00, r01, r02 = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    r10, r11, r12 = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    r20, r21, r22 = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    trace = r00 + r11 + r22
    candidates = np.stack(
        [
            np.stack([1.0 + trace, r21 - r12, r02 - r20, r10 - r01], -1),
            np.stack([r21 - r12, 1.0 + r00 - r11 - r22, r01 + r10, r02 + r20], -1),
            np.stack([r02 - r20, r01 + r10, 1.0 - r00 + r11 - r22, r12 + r21], -1),
            np.stack([r10 - r01, r02 + r20, r12 + r21, 1.0 - r00 - r11 + r22], -1),
        ],
        1,
    )  # (N, 4 candidates, 4); candidate c is 4 * q * q[c]
    choice = np.argmax(np.stack([trace, r00, r11, r22], -1), axis=-1)
    q = candidates[np.arange(m.shape[0]), choice]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(*lead, 4)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of (w, x, y, z) quaternions (apply ``b`` first); broadcasts."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def to_pose_space(
    rotations: np.ndarray,
    root_translation: np.ndarray | None,
    rest_frames_blender: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Backend Skeleton-convention motion -> Blender pose-bone values.

    Args:
        rotations: ``(T, J, 4)`` (w, x, y, z) local rotations of a retargeted Motion (backend space, identity-rest
            Skeleton convention).
        root_translation: ``(T, 3)`` backend world position of joint 0, or ``None``.
        rest_frames_blender: ``(J, 4, 4)`` the bones' ``matrix_local`` (armature space, Blender).

    Returns:
        ``(pose quaternions (T, J, 4), root bone location (T, 3) or None)`` in each bone's rest frame.
    """
    rest = np.asarray(rest_frames_blender, dtype=np.float64)
    basis = rest[:, :3, :3]
    # Q = B^T (C L C^T) B = M^T L M with M = C^T B, done as the quaternion conjugation conj(m) * l * m.
    bone = matrix_to_quat(np.einsum("ki,jkl->jil", BACKEND_TO_BLENDER, basis))  # (J, 4)
    unit = np.asarray(rotations, dtype=np.float64)
    unit = unit / np.linalg.norm(unit, axis=-1, keepdims=True)
    pose = quat_multiply(quat_multiply(bone * [1.0, -1.0, -1.0, -1.0], unit), bone)
    location = None
    if root_translation is not None:
        offset = points_to_blender(root_translation) - rest[0, :3, 3]
        location = offset @ basis[0]  # B^T (p - head) for each frame
    return pose, location


#: Names the add-on's other modules use.
backend_to_blender_points = points_to_blender
blender_to_backend_points = points_to_backend


def quat_to_euler(quaternions: np.ndarray, order: str) -> np.ndarray:
    """``(..., 4)`` (w, x, y, z) -> Blender Euler angles ``(..., 3)`` (radians, x/y/z components) for a rotation
    mode such as ``"XYZ"`` (rotate about X first, then Y, then Z: ``R = Rz Ry Rx``).

    Tait-Bryan extraction for the order's axes ``(i, j, k)`` with parity ``s`` (+1 for XYZ, YZX, ZXY):
    ``b = asin(-s R[k, i])``, ``a = atan2(s R[k, j], R[k, k])``, ``c = atan2(s R[j, i], R[i, i])``; ``a`` is about
    axis ``i``, ``b`` about ``j``, ``c`` about ``k``.
    """
    order = order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"Euler order must be a permutation of XYZ, got {order!r}")
    i, j, k = ("XYZ".index(a) for a in order)
    parity = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    r = quat_to_matrix(quaternions)
    out = np.empty(r.shape[:-2] + (3,))
    out[..., j] = np.arcsin(np.clip(-parity * r[..., k, i], -1.0, 1.0))
    out[..., i] = np.arctan2(parity * r[..., k, j], r[..., k, k])
    out[..., k] = np.arctan2(parity * r[..., j, i], r[..., i, i])
    return out


def quat_continuous(quaternions: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 so consecutive quaternions lie in the same hemisphere (smooth F-curves)."""
    q = np.array(quaternions, dtype=np.float64)
    if q.shape[0] > 1:
        dots = (q[1:] * q[:-1]).sum(axis=-1)
        flips = np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0)
        q[1:] *= flips[..., None]
    return q


def quat_to_axis_angle(quaternions: np.ndarray) -> np.ndarray:
    """``(..., 4)`` (w, x, y, z) -> Blender axis-angle ``(..., 4)`` (angle radians, x, y, z)."""
    q = np.asarray(quaternions, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    sin = np.linalg.norm(q[..., 1:], axis=-1)
    angle = 2.0 * np.arctan2(sin, q[..., 0])
    axis = np.where(sin[..., None] > 1e-12, q[..., 1:] / np.maximum(sin, 1e-12)[..., None], [0.0, 1.0, 0.0])
    return np.concatenate([angle[..., None], axis], axis=-1)
