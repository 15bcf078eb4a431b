"""``TargetRig``: the rig a motion is retargeted onto, described by its rest pose in backend space.

A rig is what a client (the Blender add-on, a BVH file, the skeleton registry) knows about its armature: joint
(bone) names, parent indices and each joint's rest *world* matrix: a 4x4 rigid transform whose translation is the
joint's rest position (metres, backend space: +Y up, +Z forward) and whose rotation is the joint's rest frame
(its bone roll included; identity for BVH / registry skeletons). Blender armatures are converted into this space
by ``blender_addon/space.py`` before they reach the backend.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.motion.skeleton import Skeleton

#: How far a rest matrix's rotation part may be from orthonormal (max abs entry of R^T R - I).
ORTHONORMAL_TOLERANCE = 1e-3


def _array(value: Any, what: str) -> np.ndarray:
    """A float64 array from nested lists, a numpy array or the wire format ``{"dtype", "shape", "data"}``."""
    if isinstance(value, Mapping) and {"dtype", "shape", "data"} <= set(value):
        try:
            raw = base64.b64decode(value["data"], validate=True)
            dtype = np.dtype(value["dtype"]).newbyteorder("<")
            return np.frombuffer(raw, dtype=dtype).reshape(value["shape"]).astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"rig {what}: invalid wire array ({exc})") from None
    try:
        return np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise ValueError(f"rig {what}: expected numbers, got {type(value).__name__}") from None


@dataclass(frozen=True, eq=False)
class TargetRig:
    """A target rig's joint hierarchy and rest pose.

    Attributes:
        joint_names: ``J`` unique joint (bone) names.
        parents: ``J`` parent indices, ``-1`` for the single root, ``parents[j] < j``.
        rest_world: ``(J, 4, 4)`` float64 rest world matrices (metres, backend space); rotation parts orthonormal.
        name: a descriptive name (``smpl24``, ``bvh:walk``, the Blender armature's name).

    Raises:
        ValueError: on inconsistent lengths, duplicate names, parents that do not precede children, non-finite or
            non-rigid rest matrices.
    """

    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    rest_world: np.ndarray
    name: str = "target"
    _skeleton: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.joint_names)
        parents = tuple(int(p) for p in self.parents)
        rest = np.asarray(self.rest_world, dtype=np.float64)
        object.__setattr__(self, "joint_names", names)
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "rest_world", rest)
        num = len(names)
        if rest.shape != (num, 4, 4):
            raise ValueError(f"rig {self.name!r}: rest_world must be ({num}, 4, 4) for {num} joints, got {rest.shape}")
        if not np.isfinite(rest).all():
            raise ValueError(f"rig {self.name!r}: rest_world contains NaN or infinity")
        rot = rest[:, :3, :3]
        error = np.abs(np.einsum("jki,jkl->jil", rot, rot) - np.eye(3)).max(axis=(1, 2)) if num else np.zeros(0)
        bad = [names[j] for j in np.flatnonzero(error > ORTHONORMAL_TOLERANCE)]
        if bad or (num and (np.linalg.det(rot) < 0).any()):
            raise ValueError(f"rig {self.name!r}: rest rotations must be rigid (orthonormal, det +1); bad: {bad}")
        # Skeleton validates names, parents and ordering with clear messages.
        self._skeleton.append(
            Skeleton(self.name, names, parents, self._world_offsets(rest[:, :3, 3], parents).astype(np.float32))
        )

    @staticmethod
    def _world_offsets(positions: np.ndarray, parents: Sequence[int]) -> np.ndarray:
        offsets = positions.copy()
        for j, p in enumerate(parents):
            if p >= 0:
                offsets[j] = positions[j] - positions[p]
        return offsets

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def rest_positions(self) -> np.ndarray:
        """``(J, 3)`` float64 rest world positions (metres)."""
        return self.rest_world[:, :3, 3].copy()

    @property
    def rest_rotations(self) -> np.ndarray:
        """``(J, 3, 3)`` float64 rest world rotations (bone frames)."""
        return self.rest_world[:, :3, :3].copy()

    def to_skeleton(self) -> Skeleton:
        """The rig as a :class:`Skeleton` (rest offsets = world rest position differences, rest rotations identity).

        Motions on this skeleton carry rotations in the Skeleton convention (``G[j] = G[parent] @ R[j]`` with
        identity rest rotations); :meth:`bone_rotations` converts them to rotations in each bone's own rest frame.
        """
        return self._skeleton[0]

    def bone_rotations(self, rotations: np.ndarray) -> np.ndarray:
        """Local rotations in the Skeleton convention -> rotations relative to each bone's rest frame.

        For a bone with rest world rotation ``B_j``: ``Q_j = B_j^T L_j B_j`` where ``L_j`` is the Skeleton-convention
        local rotation. ``Q_j`` is what a Blender pose bone's ``rotation_quaternion`` holds.

        Args:
            rotations: ``(T, J, 4)`` (w, x, y, z).

        Returns:
            ``(T, J, 4)`` float64 (w, x, y, z), w >= 0.
        """
        from models.motion.rotations import matrix_to_quat, quat_to_matrix

        local = quat_to_matrix(rotations)
        rest = self.rest_rotations
        return matrix_to_quat(np.einsum("jki,tjkl,jlm->tjim", rest, local, rest))

    @classmethod
    def from_skeleton(cls, skeleton: Skeleton) -> TargetRig:
        """A rig from a :class:`Skeleton` (identity rest rotations, rest positions from its offsets)."""
        rest = np.tile(np.eye(4), (skeleton.num_joints, 1, 1))
        rest[:, :3, 3] = skeleton.rest_positions()
        return cls(skeleton.joint_names, skeleton.parents, rest, name=skeleton.name)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetRig:
        """A rig from its JSON description.

        Accepts ``{"name", "joint_names", "parents", "rest_world": (J, 4, 4)}`` (:meth:`to_dict`) or a
        :meth:`Skeleton.to_dict` dictionary (``"rest_offsets": (J, 3)``). Arrays may be nested lists or the wire
        format ``{"dtype", "shape", "data"}``.

        Raises:
            ValueError / TypeError: when keys are missing or values malformed (the message names the key).
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"a rig description must be a dict, got {type(data).__name__}")
        missing = [k for k in ("joint_names", "parents") if k not in data]
        if missing or ("rest_world" not in data and "rest_offsets" not in data):
            raise ValueError(
                f"rig description lacks {missing or ['rest_world']}; expected joint_names, parents and rest_world "
                "(J, 4, 4) or rest_offsets (J, 3)"
            )
        names = [str(n) for n in data["joint_names"]]
        parents = [int(p) for p in _array(data["parents"], "parents").reshape(-1)]
        name = str(data.get("name") or "target")
        if "rest_world" in data:
            return cls(names, parents, _array(data["rest_world"], "rest_world"), name=name)
        offsets = _array(data["rest_offsets"], "rest_offsets")
        return cls.from_skeleton(Skeleton(name, tuple(names), tuple(parents), offsets))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable ``{"name", "joint_names", "parents", "rest_world"}``."""
        return {
            "name": self.name,
            "joint_names": list(self.joint_names),
            "parents": list(self.parents),
            "rest_world": self.rest_world.tolist(),
        }
