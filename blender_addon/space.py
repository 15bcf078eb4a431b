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
    """``(..., 3, 3)`` rotations -> ``(..., 4)`` (w, x, y, z), w >= 0 (Shepperd's method, branch per element)."""
    m = np.asarray(matrices, dtype=np.float64)
    lead = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    trace = np.trace(m, axis1=1, axis2=2)
    diag = np.stack([trace, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    choice = np.argmax(diag, axis=1)
    q = np.empty((m.shape[0], 4))
    for case in range(4):
        sel = choice == case
        if not sel.any():
            continue
        r = m[sel]
        if case == 0:
            s = 2.0 * np.sqrt(1.0 + trace[sel])
            q[sel] = np.stack([0.25 * s, (r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s,
                               (r[:, 1, 0] - r[:, 0, 1]) / s], 1)  # fmt: skip
        else:
            i = case - 1
            j, k = (i + 1) % 3, (i + 2) % 3
            s = 2.0 * np.sqrt(np.maximum(1.0 + r[:, i, i] - r[:, j, j] - r[:, k, k], 1e-300))
            out = np.empty((r.shape[0], 4))
            out[:, 0] = (r[:, k, j] - r[:, j, k]) / s
            out[:, 1 + i] = 0.25 * s
            out[:, 1 + j] = (r[:, j, i] + r[:, i, j]) / s
            out[:, 1 + k] = (r[:, k, i] + r[:, i, k]) / s
            q[sel] = out
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).reshape(*lead, 4)


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
    local = np.einsum("ab,tjbc,dc->tjad", BACKEND_TO_BLENDER, quat_to_matrix(rotations), BACKEND_TO_BLENDER)
    pose = matrix_to_quat(np.einsum("jki,tjkl,jlm->tjim", basis, local, basis))
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
        dots = np.einsum("t...i,t...i->t...", q[1:], q[:-1])
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
