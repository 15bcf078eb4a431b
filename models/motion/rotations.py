"""Quaternion helpers in Baton's (w, x, y, z) convention, built on :mod:`scipy.spatial.transform`.

scipy stores quaternions as (x, y, z, w); these functions convert at the boundary so the rest of Baton only ever
sees (w, x, y, z). All inputs broadcast over leading dimensions ``(..., 4)``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def _flat(q: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1] != 4:
        raise ValueError(f"quaternions must have a last dimension of 4 (w, x, y, z), got shape {q.shape}")
    return q.reshape(-1, 4), q.shape[:-1]


def to_scipy(quaternions_wxyz: np.ndarray) -> Rotation:
    """A scipy ``Rotation`` (flattened over leading dims) from ``(..., 4)`` (w, x, y, z) quaternions."""
    flat, _ = _flat(quaternions_wxyz)
    return Rotation.from_quat(flat[:, [1, 2, 3, 0]])


def from_scipy(rotation: Rotation, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """(w, x, y, z) float64 quaternions with a non-negative w, reshaped to ``shape + (4,)`` when given."""
    xyzw = np.atleast_2d(rotation.as_quat())
    wxyz = xyzw[:, [3, 0, 1, 2]]
    wxyz *= np.where(wxyz[:, :1] < 0, -1.0, 1.0)
    return wxyz.reshape(*(wxyz.shape[:1] if shape is None else shape), 4)


def quat_to_matrix(quaternions_wxyz: np.ndarray) -> np.ndarray:
    """``(..., 4)`` (w, x, y, z) -> ``(..., 3, 3)`` float64 rotation matrices (quaternions are normalised)."""
    flat, lead = _flat(quaternions_wxyz)
    return Rotation.from_quat(flat[:, [1, 2, 3, 0]]).as_matrix().reshape(*lead, 3, 3)


def matrix_to_quat(matrices: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrices -> ``(..., 4)`` float64 (w, x, y, z), w >= 0."""
    m = np.asarray(matrices, dtype=np.float64)
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must end in (3, 3), got shape {m.shape}")
    return from_scipy(Rotation.from_matrix(m.reshape(-1, 3, 3)), m.shape[:-2])


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of (w, x, y, z) quaternions (apply ``b`` first, then ``a``); broadcasts."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_inverse(q: np.ndarray) -> np.ndarray:
    """Inverse (conjugate) of unit (w, x, y, z) quaternions."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v (..., 3)`` by unit quaternions ``q (..., 4)`` (w, x, y, z); broadcasts."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w = q[..., :1]
    xyz = q[..., 1:]
    t = 2.0 * np.cross(xyz, v)
    return v + w * t + np.cross(xyz, t)


def euler_to_quat(angles_degrees: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles -> (w, x, y, z).

    Args:
        angles_degrees: ``(..., 3)`` angles in degrees, in the order of ``order``.
        order: axis letters as in a BVH ``CHANNELS`` line, e.g. ``"ZYX"`` for ``Zrotation Yrotation Xrotation``,
            meaning ``R = Rz @ Ry @ Rx`` (intrinsic rotations, BVH convention).
    """
    a = np.asarray(angles_degrees, dtype=np.float64)
    order = order.upper()
    if len(order) != 3 or set(order) - set("XYZ"):
        raise ValueError(f"Euler order must be three of X, Y, Z, got {order!r}")
    rot = Rotation.from_euler(order, a.reshape(-1, 3), degrees=True)
    return from_scipy(rot, a.shape[:-1])


def quat_to_euler(quaternions_wxyz: np.ndarray, order: str) -> np.ndarray:
    """(w, x, y, z) -> intrinsic Euler angles ``(..., 3)`` in degrees, in the order of ``order`` (see above)."""
    flat, lead = _flat(quaternions_wxyz)
    rot = Rotation.from_quat(flat[:, [1, 2, 3, 0]])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: scipy still returns a valid decomposition
        angles = rot.as_euler(order.upper(), degrees=True)
    return angles.reshape(*lead, 3)


def quat_between(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """Unit (w, x, y, z) quaternions rotating directions ``v0`` onto ``v1`` (``(..., 3)``, broadcast).

    ``q = normalise(|v0||v1| + v0.v1, v0 x v1)`` (HumanML3D ``qbetween``). For opposite directions, where that
    formula is 0/0, a half turn about an axis perpendicular to ``v0`` is returned.
    """
    v0, v1 = np.broadcast_arrays(np.asarray(v0, np.float64), np.asarray(v1, np.float64))
    w = np.sqrt((v0**2).sum(-1) * (v1**2).sum(-1)) + (v0 * v1).sum(-1)
    q = np.concatenate([w[..., None], np.cross(v0, v1)], axis=-1)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    opposite = norm[..., 0] < 1e-12
    if opposite.any():
        axis = np.cross(v0[opposite], np.array([1.0, 0.0, 0.0]))
        weak = np.linalg.norm(axis, axis=-1) < 1e-6
        axis[weak] = np.cross(v0[opposite][weak], np.array([0.0, 1.0, 0.0]))
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        q[opposite] = np.concatenate([np.zeros(axis.shape[:-1] + (1,)), axis], axis=-1)
        norm[opposite] = 1.0
    return q / norm


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` (w, x, y, z) -> ``(..., 6)`` continuous 6D rotation (Zhou et al. 2019): the rotation matrix's
    first column followed by its second column (HumanML3D ``quaternion_to_cont6d_np``)."""
    w, x, y, z = np.moveaxis(np.asarray(q, np.float64), -1, 0)
    s = 2.0 / (w * w + x * x + y * y + z * z)
    col0 = np.stack([1 - s * (y * y + z * z), s * (x * y + z * w), s * (x * z - y * w)], axis=-1)
    col1 = np.stack([s * (x * y - z * w), 1 - s * (x * x + z * z), s * (y * z + x * w)], axis=-1)
    return np.concatenate([col0, col1], axis=-1)


def cont6d_to_matrix(cont6d: np.ndarray) -> np.ndarray:
    """``(..., 6)`` continuous 6D -> ``(..., 3, 3)`` rotation matrices (Gram-Schmidt, HumanML3D convention)."""
    c = np.asarray(cont6d, np.float64)
    x = c[..., 0:3] / np.linalg.norm(c[..., 0:3], axis=-1, keepdims=True)
    z = np.cross(x, c[..., 3:6])
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)
