"""The JSON wire format between the backend and the add-on (../shared/DESIGN.md §2). numpy only, no bpy.

Arrays travel as ``{"dtype": "float32", "shape": [T, J, 3], "data": base64(little-endian bytes, C order)}``.
A motion travels as::

    {"skeleton": {"name", "joint_names", "parents", "rest_offsets": <array (J,3)>},
     "fps": float, "positions": <array (T,J,3|2)>, "rotations": <array (T,J,4) wxyz> | null,
     "root_translation": <array (T,3)> | null, "metadata": {...}}

Units: metres, seconds; backend space (+Y up, +Z forward) — the add-on converts to Blender space in ``space.py``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: dtypes allowed on the wire (no object / string arrays).
WIRE_DTYPES = ("float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "bool")
#: Largest array accepted by :func:`decode_array` (elements), a guard against absurd shapes.
MAX_ELEMENTS = 1 << 28


def encode_array(array: Any) -> dict:
    """``{"dtype", "shape", "data"}`` for an array-like (converted to little-endian, C order).

    Raises:
        TypeError: for a dtype not in :data:`WIRE_DTYPES` (e.g. object or string arrays).
    """
    arr = np.asarray(array)
    name = arr.dtype.name
    if name not in WIRE_DTYPES:
        raise TypeError(f"cannot send arrays of dtype {name!r} on the wire; allowed: {', '.join(WIRE_DTYPES)}")
    little = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    return {"dtype": name, "shape": [int(n) for n in arr.shape], "data": base64.b64encode(little.tobytes()).decode()}


def decode_array(payload: dict) -> np.ndarray:
    """The numpy array of an encoded payload (native byte order, writable copy).

    Raises:
        ValueError: when keys are missing, the dtype is not allowed, the shape is negative or too large, the data
            is not base64, or its length does not match ``prod(shape) * itemsize``.
    """
    if not isinstance(payload, dict) or not {"dtype", "shape", "data"} <= set(payload):
        raise ValueError("an array payload needs 'dtype', 'shape' and 'data'")
    name, shape, data = payload["dtype"], payload["shape"], payload["data"]
    if name not in WIRE_DTYPES:
        raise ValueError(f"array dtype {name!r} is not allowed; allowed: {', '.join(WIRE_DTYPES)}")
    if not isinstance(shape, list | tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"array shape must be a list of non-negative integers, got {shape!r}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count > MAX_ELEMENTS:
        raise ValueError(f"array of shape {list(shape)} has {count} elements; at most {MAX_ELEMENTS} are accepted")
    if not isinstance(data, str):
        raise ValueError("array data must be a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("array data is not valid base64") from None
    dtype = np.dtype(name).newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise ValueError(
            f"array data holds {len(raw)} bytes but shape {list(shape)} of {name} needs {count * dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(np.dtype(name), copy=True)


@dataclass
class WireMotion:
    """A decoded motion payload (plain numpy, no Baton imports): what the add-on keys onto a rig.

    Attributes:
        skeleton_name, joint_names, parents: the hierarchy (``parents[0] == -1``).
        rest_offsets: ``(J, 3)`` float32 metres, offset from the parent in the rest pose.
        fps: frames per second.
        positions: ``(T, J, 3)`` float32 metres, or ``(T, J, 2)`` normalised image coordinates (y down).
        rotations: ``(T, J, 4)`` float32 local rotations (w, x, y, z) or ``None``.
        root_translation: ``(T, 3)`` float32 metres or ``None``.
        metadata: free-form facts.
    """

    skeleton_name: str
    joint_names: list[str]
    parents: list[int]
    rest_offsets: np.ndarray
    fps: float
    positions: np.ndarray
    rotations: np.ndarray | None = None
    root_translation: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])


def decode_motion(payload: dict) -> WireMotion:
    """Decode a motion payload (see the module docstring) and check that its shapes agree.

    Raises:
        ValueError: for missing keys, bad arrays or inconsistent shapes.
    """
    try:
        skeleton = payload["skeleton"]
        names = [str(n) for n in skeleton["joint_names"]]
        parents = [int(p) for p in skeleton["parents"]]
        motion = WireMotion(
            skeleton_name=str(skeleton.get("name", "custom")),
            joint_names=names,
            parents=parents,
            rest_offsets=decode_array(skeleton["rest_offsets"]).astype(np.float32),
            fps=float(payload["fps"]),
            positions=decode_array(payload["positions"]).astype(np.float32),
            rotations=None if payload.get("rotations") is None else decode_array(payload["rotations"]),
            root_translation=None
            if payload.get("root_translation") is None
            else decode_array(payload["root_translation"]),
            metadata=dict(payload.get("metadata") or {}),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a motion payload: missing or malformed {exc}") from None
    joints = len(motion.joint_names)
    frames = motion.num_frames
    if len(parents) != joints or motion.rest_offsets.shape != (joints, 3):
        raise ValueError(f"skeleton of {joints} joints has {len(parents)} parents, offsets {motion.rest_offsets.shape}")
    shape = motion.positions.shape
    if len(shape) != 3 or shape[1] != joints or shape[2] not in (2, 3):
        raise ValueError(f"positions must be (T, {joints}, 3|2), got {motion.positions.shape}")
    if motion.rotations is not None and motion.rotations.shape != (frames, joints, 4):
        raise ValueError(f"rotations must be ({frames}, {joints}, 4), got {motion.rotations.shape}")
    if motion.root_translation is not None and motion.root_translation.shape != (frames, 3):
        raise ValueError(f"root_translation must be ({frames}, 3), got {motion.root_translation.shape}")
    return motion


def encode_motion(motion: WireMotion) -> dict:
    """The payload of a :class:`WireMotion` (inverse of :func:`decode_motion`)."""
    return {
        "skeleton": {
            "name": motion.skeleton_name,
            "joint_names": list(motion.joint_names),
            "parents": [int(p) for p in motion.parents],
            "rest_offsets": encode_array(np.asarray(motion.rest_offsets, dtype=np.float32)),
        },
        "fps": float(motion.fps),
        "positions": encode_array(np.asarray(motion.positions, dtype=np.float32)),
        "rotations": None if motion.rotations is None else encode_array(np.asarray(motion.rotations, np.float32)),
        "root_translation": None
        if motion.root_translation is None
        else encode_array(np.asarray(motion.root_translation, np.float32)),
        "metadata": dict(motion.metadata),
    }
