"""Loading and saving motions by file type: ``.bvh``, Baton ``.npz`` and HumanML3D ``.npy``.

The Baton ``.npz`` holds ``positions``, ``fps``, the skeleton (``joint_names``, ``parents``, ``rest_offsets``,
``skeleton_name``) and, when present, ``rotations`` and ``root_translation``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from models.atomic import atomic_write
from models.motion.bvh import load_bvh
from models.motion.motion import Motion
from models.motion.skeleton import Skeleton, get_skeleton, skeleton_names

#: File endings :func:`load_motion` understands.
MOTION_SUFFIXES = (".bvh", ".npz", ".npy")


def save_npz(motion: Motion, path: str | os.PathLike) -> Path:
    """Write ``motion`` as a Baton ``.npz`` atomically (temporary file renamed into place). Returns the path.

    Raises:
        ValueError: when the motion's arrays hold NaN / infinity (e.g. edited after construction); nothing is written.
    """
    path = Path(path)
    for name in ("positions", "rotations", "root_translation"):
        array = getattr(motion, name)
        if array is not None and not np.isfinite(array).all():
            raise ValueError(f"Motion.{name} contains NaN or infinity; {path} was not written")
    skel = motion.skeleton
    arrays = {
        "positions": motion.positions,
        "fps": np.float64(motion.fps),
        "skeleton_name": np.str_(skel.name),
        "joint_names": np.array(skel.joint_names),
        "parents": np.array(skel.parents, dtype=np.int32),
        "rest_offsets": skel.rest_offsets,
        "metadata_json": np.str_(json.dumps(motion.metadata, default=str)),
    }
    if motion.rotations is not None:
        arrays["rotations"] = motion.rotations
    if motion.root_translation is not None:
        arrays["root_translation"] = motion.root_translation
    with atomic_write(path, ".tmp.npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def load_npz(path: str | os.PathLike) -> Motion:
    """Read a Baton ``.npz`` written by :func:`save_npz`.

    Raises:
        ValueError: when required arrays are missing or invalid (the message names them).
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: a single .npy array, not a Baton motion .npz archive")
    with data:
        missing = [k for k in ("positions", "fps") if k not in data.files]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}; a Baton motion .npz needs positions and fps")
        name = str(data["skeleton_name"]) if "skeleton_name" in data.files else None
        if "joint_names" in data.files:
            skeleton = Skeleton(
                name=name or "custom",
                joint_names=tuple(str(n) for n in data["joint_names"]),
                parents=tuple(int(p) for p in data["parents"]),
                rest_offsets=data["rest_offsets"],
            )
            if name in skeleton_names():
                skeleton = get_skeleton(name)
        elif name is not None:
            skeleton = get_skeleton(name)
        else:
            raise ValueError(f"{path}: no skeleton (joint_names/parents/rest_offsets or skeleton_name)")
        metadata = json.loads(str(data["metadata_json"])) if "metadata_json" in data.files else {}
        return Motion(
            skeleton=skeleton,
            fps=float(data["fps"]),
            positions=data["positions"],
            rotations=data["rotations"] if "rotations" in data.files else None,
            root_translation=data["root_translation"] if "root_translation" in data.files else None,
            metadata={**metadata, "source_path": str(path)},
        )


def load_motion(path: str | os.PathLike) -> Motion:
    """Load a motion file by its ending: ``.bvh`` (BVH), ``.npz`` (Baton), ``.npy`` (HumanML3D ``new_joints``
    ``(T, 22, 3)`` or 263-d ``new_joint_vecs`` ``(T, 263)``, 20 fps; KIT-ML ``(T, 21, 3)`` / ``(T, 251)``;
    ConductorMotion100 ``motion.npy`` ``(T, 13, 2)``, 30 fps).

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for an unknown ending or invalid content.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"motion file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        return load_bvh(path)
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".npy":
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable numeric .npy file ({exc})") from None
        if len(shape) == 3 and shape[1:] == (13, 2):
            from models.motion.conductor_dataset import load_conductor_motion

            return load_conductor_motion(path)
        from models.motion.humanml3d import load_humanml3d

        return load_humanml3d(path)
    raise ValueError(f"{path}: unknown motion file type {suffix!r}; expected one of {', '.join(MOTION_SUFFIXES)}")
