"""Skeletons: joint names, parent indices, rest offsets and kinematic chains, plus the built-in registry.

Conventions (../shared/DESIGN.md §2): metres, right-handed, +Y up, +Z forward (the subject faces +Z), +X is the
subject's left. ``rest_offsets[j]`` is joint ``j``'s position relative to its parent in the rest pose, expressed in
the parent's rest frame (all rest rotations are identity, as in BVH). Parents always precede children.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A joint hierarchy in its rest pose.

    Attributes:
        name: registry name (``smpl24``) or a descriptive name (``bvh:131_01``).
        joint_names: ``J`` unique names.
        parents: ``J`` parent indices, ``-1`` for the single root; ``parents[j] < j``.
        rest_offsets: ``(J, 3)`` float32, metres, offset from the parent in the rest pose (the root's is its
            rest position).
        chains: kinematic chains as tuples of joint indices (root to tip), used by features and plots.
        end_sites: ``(joint index, (3,) offset)`` pairs for BVH end sites (tips without a joint), metres.

    Raises:
        ValueError: on inconsistent lengths, duplicate names, a parent that does not precede its child, more than
            one root, non-finite offsets, or chains naming unknown joints.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    rest_offsets: np.ndarray
    chains: tuple[tuple[int, ...], ...] = ()
    end_sites: tuple[tuple[int, tuple[float, float, float]], ...] = field(default=())

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.joint_names)
        parents = tuple(int(p) for p in self.parents)
        offsets = np.asarray(self.rest_offsets, dtype=np.float32)
        object.__setattr__(self, "joint_names", names)
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "rest_offsets", offsets)
        object.__setattr__(self, "chains", tuple(tuple(int(i) for i in c) for c in self.chains))
        num = len(names)
        if num == 0:
            raise ValueError(f"skeleton {self.name!r}: needs at least one joint")
        if len(parents) != num:
            raise ValueError(f"skeleton {self.name!r}: {num} joint names but {len(parents)} parents")
        if offsets.shape != (num, 3):
            raise ValueError(f"skeleton {self.name!r}: rest_offsets must be ({num}, 3), got {offsets.shape}")
        if not np.isfinite(offsets).all():
            raise ValueError(f"skeleton {self.name!r}: rest_offsets contain NaN or infinity")
        if len(set(names)) != num:
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"skeleton {self.name!r}: duplicate joint names {dup}")
        if parents[0] != -1 or any(p == -1 for p in parents[1:]):
            raise ValueError(f"skeleton {self.name!r}: joint 0 must be the only root (parent -1), got {parents}")
        for j, p in enumerate(parents[1:], start=1):
            if not 0 <= p < j:
                raise ValueError(
                    f"skeleton {self.name!r}: parent of joint {j} ({names[j]}) is {p}; parents must precede children"
                )
        for chain in self.chains:
            if any(not 0 <= i < num for i in chain):
                raise ValueError(f"skeleton {self.name!r}: chain {chain} names joints outside 0..{num - 1}")

    @property
    def num_joints(self) -> int:
        """Number of joints ``J``."""
        return len(self.joint_names)

    def index(self, joint_name: str) -> int:
        """Index of ``joint_name``. Raises ``ValueError`` naming the skeleton when it has no such joint."""
        try:
            return self.joint_names.index(joint_name)
        except ValueError:
            raise ValueError(f"skeleton {self.name!r} has no joint named {joint_name!r}") from None

    def children(self, joint: int) -> list[int]:
        """Indices of the direct children of ``joint``."""
        return [j for j, p in enumerate(self.parents) if p == joint]

    def rest_positions(self) -> np.ndarray:
        """World rest positions ``(J, 3)`` float32, metres (offsets accumulated down the hierarchy)."""
        positions = np.zeros((self.num_joints, 3), dtype=np.float32)
        for j, p in enumerate(self.parents):
            positions[j] = self.rest_offsets[j] + (positions[p] if p >= 0 else 0.0)
        return positions

    def bone_lengths(self) -> np.ndarray:
        """Rest length of the bone ending at each joint ``(J,)`` float32 (0 for the root)."""
        lengths = np.linalg.norm(self.rest_offsets, axis=1).astype(np.float32)
        lengths[0] = 0.0
        return lengths

    def scaled(self, factor: float, name: str | None = None) -> Skeleton:
        """The same hierarchy with offsets (and end sites) multiplied by ``factor``."""
        return Skeleton(
            name=name or self.name,
            joint_names=self.joint_names,
            parents=self.parents,
            rest_offsets=self.rest_offsets * np.float32(factor),
            chains=self.chains,
            end_sites=tuple((j, tuple(float(v) * factor for v in off)) for j, off in self.end_sites),
        )

    def to_dict(self) -> dict:
        """A JSON-serialisable description (names, parents, offsets, chains)."""
        return {
            "name": self.name,
            "joint_names": list(self.joint_names),
            "parents": list(self.parents),
            "rest_offsets": self.rest_offsets.tolist(),
            "chains": [list(c) for c in self.chains],
        }


def _from_directions(
    name: str,
    joint_names: Sequence[str],
    parents: Sequence[int],
    directions: Sequence[Sequence[float]],
    lengths: Sequence[float],
    root_position: Sequence[float],
    chains: Sequence[Sequence[int]],
) -> Skeleton:
    directions_arr = np.asarray(directions, dtype=np.float64)
    norms = np.linalg.norm(directions_arr, axis=1, keepdims=True)
    unit = np.divide(directions_arr, norms, out=np.zeros_like(directions_arr), where=norms > 0)
    offsets = unit * np.asarray(lengths, dtype=np.float64)[:, None]
    offsets[0] = root_position
    return Skeleton(name, tuple(joint_names), tuple(parents), offsets.astype(np.float32), tuple(map(tuple, chains)))


# --- SMPL (HumanML3D order) -------------------------------------------------------------------------------------
SMPL22_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip
SMPL24_NAMES = SMPL22_NAMES + ("left_hand", "right_hand")
SMPL22_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
SMPL24_PARENTS = SMPL22_PARENTS + (20, 21)
SMPL_CHAINS = ((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20))
#: Bone lengths (m) of the HumanML3D target skeleton 000021, joint 0..21 (root 0), measured to 0.1 mm precision and
#: beyond from ../shared/data/humanml3d_sample/new_joints/012314.npy (constant over its frames; README: 4 decimals).
T2M_BONE_LENGTHS = (
    0.0, 0.103074, 0.1098834, 0.1315682, 0.3936232, 0.3901882, 0.1431902, 0.432433, 0.4256434, 0.0573647,
    0.1433818, 0.1494191, 0.21936, 0.1374868, 0.1433828, 0.1030392, 0.131614, 0.1229844, 0.2568399, 0.2630919,
    0.2660118, 0.2698763,
)  # fmt: skip
#: HumanML3D ``t2m_raw_offsets`` directions (arms hanging down), joints 0..21.
T2M_RAW_OFFSETS = (
    (0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, -1, 0), (0, 1, 0), (0, -1, 0), (0, -1, 0),
    (0, 1, 0), (0, 0, 1), (0, 0, 1), (0, 1, 0), (1, 0, 0), (-1, 0, 0), (0, 0, 1), (0, -1, 0), (0, -1, 0),
    (0, -1, 0), (0, -1, 0), (0, -1, 0), (0, -1, 0),
)  # fmt: skip
# SMPL's rest pose is a T-pose: the arm chains (shoulder, elbow, wrist, hand) point along +-X instead of down.
_SMPL_TPOSE_DIRECTIONS = list(T2M_RAW_OFFSETS)
for _j, _side in ((16, 1), (18, 1), (20, 1), (17, -1), (19, -1), (21, -1)):
    _SMPL_TPOSE_DIRECTIONS[_j] = (_side, 0, 0)
_SMPL_TPOSE_DIRECTIONS[15] = (0, 1, 0)  # the head sits above the neck (t2m's IK reference points it forward)
_SMPL_HAND_LENGTH = 0.085
_SMPL_PELVIS_HEIGHT = 0.4324 + 0.3936 + 0.1031 * 0.2 + 0.07  # ankle + knee + hip drop + ankle height


def _smpl(name: str, num_joints: int) -> Skeleton:
    directions = list(_SMPL_TPOSE_DIRECTIONS)
    lengths = list(T2M_BONE_LENGTHS)
    names, parents = SMPL22_NAMES, SMPL22_PARENTS
    if num_joints == 24:
        directions += [(1, 0, 0), (-1, 0, 0)]
        lengths += [_SMPL_HAND_LENGTH, _SMPL_HAND_LENGTH]
        names, parents = SMPL24_NAMES, SMPL24_PARENTS
    return _from_directions(name, names, parents, directions, lengths, (0.0, _SMPL_PELVIS_HEIGHT, 0.0), SMPL_CHAINS)


# --- KIT-ML (MMM) ------------------------------------------------------------------------------------------------
KIT21_NAMES = (
    "root", "BP", "BT", "BLN", "BUN", "LS", "LE", "LW", "RS", "RE", "RW", "LH", "LK", "LA", "LMrot", "LF",
    "RH", "RK", "RA", "RMrot", "RF",
)  # fmt: skip
KIT21_PARENTS = (-1, 0, 1, 2, 3, 3, 5, 6, 3, 8, 9, 0, 11, 12, 13, 14, 0, 16, 17, 18, 19)
KIT_CHAINS = ((0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4), (3, 5, 6, 7), (3, 8, 9, 10))
KIT_RAW_OFFSETS = (
    (0, 0, 0), (0, 1, 0), (0, 1, 0), (0, 1, 0), (0, 1, 0), (1, 0, 0), (0, -1, 0), (0, -1, 0), (-1, 0, 0),
    (0, -1, 0), (0, -1, 0), (1, 0, 0), (0, -1, 0), (0, -1, 0), (0, 0, 1), (0, 0, 1), (-1, 0, 0), (0, -1, 0),
    (0, -1, 0), (0, 0, 1), (0, 0, 1),
)  # fmt: skip
# Typical adult MMM proportions in metres (the reference model is normalised to 1.75 m); arms hang down as in the
# KIT-ML raw offsets.
_KIT_LENGTHS = (
    0.0, 0.10, 0.15, 0.20, 0.15, 0.18, 0.28, 0.26, 0.18, 0.28, 0.26, 0.09, 0.42, 0.41, 0.06, 0.12, 0.09, 0.42,
    0.41, 0.06, 0.12,
)  # fmt: skip


def _kit21() -> Skeleton:
    height = 0.42 + 0.41 + 0.06
    return _from_directions(
        "kit21", KIT21_NAMES, KIT21_PARENTS, KIT_RAW_OFFSETS, _KIT_LENGTHS, (0, height, 0), KIT_CHAINS
    )


# --- COCO-13 (ConductorMotion100 upper body) ---------------------------------------------------------------------
COCO13_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
)  # fmt: skip
#: A spanning tree of the ST-GCN edges rooted at the nose (the cycle-closing edges (5,6) and (11,12) are dropped).
COCO13_PARENTS = (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6)
#: ST-GCN graph edges (DESIGN §4), self loops excluded.
COCO13_EDGES = (
    (0, 1), (0, 2), (1, 3), (2, 4), (0, 5), (0, 6), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (11, 12), (5, 11), (6, 12),
)  # fmt: skip
COCO13_CHAINS = ((5, 7, 9), (6, 8, 10), (0, 1, 3), (0, 2, 4), (5, 11), (6, 12))
#: 3D rest positions (m), T-pose, facing +Z; shoulder width 0.38 m.
_COCO13_REST = np.array(
    [
        [0.0, 1.56, 0.09], [0.033, 1.59, 0.07], [-0.033, 1.59, 0.07], [0.075, 1.57, 0.0], [-0.075, 1.57, 0.0],
        [0.19, 1.42, 0.0], [-0.19, 1.42, 0.0], [0.45, 1.42, 0.0], [-0.45, 1.42, 0.0], [0.70, 1.42, 0.0],
        [-0.70, 1.42, 0.0], [0.10, 0.95, 0.0], [-0.10, 0.95, 0.0],
    ],
    dtype=np.float32,
)  # fmt: skip


def _coco13() -> Skeleton:
    offsets = _COCO13_REST.copy()
    for j, p in enumerate(COCO13_PARENTS):
        if p >= 0:
            offsets[j] = _COCO13_REST[j] - _COCO13_REST[p]
    return Skeleton("coco13", COCO13_NAMES, COCO13_PARENTS, offsets, COCO13_CHAINS)


_BUILDERS = {"smpl24": lambda: _smpl("smpl24", 24), "smpl22": lambda: _smpl("smpl22", 22), "kit21": _kit21,
             "coco13": _coco13}  # fmt: skip


def skeleton_names() -> tuple[str, ...]:
    """Names accepted by :func:`get_skeleton`."""
    return tuple(_BUILDERS)


def get_skeleton(name: str) -> Skeleton:
    """A built-in skeleton by registry name (``smpl24``, ``smpl22``, ``kit21``, ``coco13``).

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    try:
        builder = _BUILDERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown skeleton {name!r}; known skeletons: {', '.join(_BUILDERS)}") from None
    return builder()
