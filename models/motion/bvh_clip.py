"""The content of a BVH file in file units (:class:`BVHClip`) and its conversion to and from a :class:`Motion`.

Conventions: a joint's rotation channels, in the order listed, compose as intrinsic rotations (``Zrotation
Yrotation Xrotation`` means ``R = Rz @ Ry @ Rx``), angles in degrees. Position channels on the root give its world
position (its OFFSET is then ignored); position channels on any other joint replace its OFFSET for that frame.
These are the conventions of Blender's own importer (``io_anim_bvh``: it builds ``Euler(angles, order[::-1])``, i.e.
the same matrix, and places a root with position channels at their value).

Joint order: a BVH file lists its joints depth-first (each joint's subtree right after it) and every motion line
holds the channels in that same order, so a :class:`BVHClip` always keeps its joints in depth-first order
(:func:`depth_first_order`). A skeleton whose declared order is not depth-first (SMPL: pelvis, left_hip, right_hip,
spine1, ...) is permuted by :meth:`BVHClip.from_motion`, and :meth:`BVHClip.to_motion` puts the joints back in the
registry's declared order when the file's hierarchy is a registry skeleton's (same joint names, same parent of
each), so write -> read returns the motion that was written, joint for joint.
Text parsing and writing live in :mod:`models.motion.bvh`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from models.motion.kinematics import forward_kinematics
from models.motion.motion import Motion
from models.motion.rotations import euler_to_quat, quat_to_euler
from models.motion.skeleton import Skeleton, get_skeleton, skeleton_names

VALID_CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
CHANNEL_LOOKUP = {c.lower(): c for c in VALID_CHANNELS}
#: Metres per file unit for the units BVH files are commonly written in.
KNOWN_UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.056444}
#: Joint orders :meth:`BVHClip.to_motion` accepts.
JOINT_ORDERS = ("registry", "file")
#: How far (metres) a motion's positions may be from the forward kinematics of its rotations and rest offsets for
#: :meth:`BVHClip.from_motion` to write it (a BVH file stores only offsets and rotations).
FK_TOLERANCE_M = 1e-3


def depth_first_order(parents: list[int] | tuple[int, ...]) -> list[int]:
    """Joint indices in depth-first pre-order (children in index order): the order a BVH file lists joints.

    Args:
        parents: ``J`` parent indices, ``-1`` for the single root at index 0, each parent before its child.

    Returns:
        a permutation of ``range(J)``; ``order[k]`` is the joint written ``k``-th.

    Raises:
        ValueError: when ``parents`` does not describe one tree rooted at joint 0.
    """
    parents = [int(p) for p in parents]
    if not parents or parents[0] != -1 or any(not 0 <= p < j for j, p in enumerate(parents) if j):
        raise ValueError(f"BVH: parents must describe one tree rooted at joint 0, parents first; got {parents}")
    children: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents[1:], start=1):
        children[p].append(j)
    order, stack = [], [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    return order


@lru_cache(maxsize=1)
def _registry_hierarchies() -> tuple[tuple[str, tuple[str, ...], dict[str, str | None]], ...]:
    """Per registry skeleton: its name, joint names and each joint's parent name (``None`` for the root)."""
    out = []
    for registry in skeleton_names():
        skel = get_skeleton(registry)
        names = skel.joint_names
        parent_of = {n: (names[skel.parents[j]] if skel.parents[j] >= 0 else None) for j, n in enumerate(names)}
        out.append((registry, names, parent_of))
    return tuple(out)


def registry_order(joint_names: list[str] | tuple[str, ...], parents: list[int] | tuple[int, ...]) -> tuple[
        str, list[int]] | None:  # fmt: skip
    """The registry skeleton with this hierarchy, and where its joints are in ``joint_names``.

    A hierarchy matches a registry skeleton (``smpl24``, ``smpl22``, ``kit21``, ``coco13``) when it has exactly
    that skeleton's joint names and every joint has the same parent (by name); rest offsets may differ.

    Returns:
        ``(registry name, index)`` with ``index[k]`` the position in ``joint_names`` of the registry's ``k``-th
        joint, or ``None`` when no registry skeleton matches.
    """
    names = [str(n) for n in joint_names]
    parent_of = {n: (names[p] if p >= 0 else None) for n, p in zip(names, parents, strict=True)}
    for registry, registry_names, registry_parent_of in _registry_hierarchies():
        if parent_of == registry_parent_of and len(names) == len(registry_names):
            where = {n: i for i, n in enumerate(names)}
            return registry, [where[n] for n in registry_names]
    return None


@dataclass(eq=False)
class BVHClip:
    """A BVH file's content in file units.

    Attributes:
        joint_names: ``J`` names in file order, which is depth-first (:func:`depth_first_order`): the order of the
            hierarchy and of the channels on every motion line.
        parents: ``J`` parent indices (``-1`` for the root).
        offsets: ``(J, 3)`` float64 OFFSETs in file units.
        channels: per joint, its channel names in file order (e.g. ``("Zrotation", "Yrotation", "Xrotation")``).
        end_sites: ``(joint index, (x, y, z))`` for each End Site, file units.
        frame_time: seconds per frame (``1 / fps``).
        values: ``(F, C)`` float64 channel values, ``C = sum(len(c) for c in channels)``.

    Raises:
        ValueError: on inconsistent lengths, empty joint names or names with whitespace, joints not in depth-first
            order, an end site of a joint that does not exist, unknown channel names, NaN / infinity, or a
            non-positive frame time.
    """

    joint_names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    end_sites: list[tuple[int, tuple[float, float, float]]] = field(default_factory=list)
    frame_time: float = 1.0 / 30.0
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1, 3)
        self.values = np.asarray(self.values, dtype=np.float64)
        num = len(self.joint_names)
        if not (len(self.parents) == len(self.channels) == self.offsets.shape[0] == num):
            raise ValueError(
                f"BVH: {num} joints but {len(self.parents)} parents, {len(self.channels)} channel lists, "
                f"{self.offsets.shape[0]} offsets"
            )
        count = self.num_channels
        if self.values.ndim != 2 or self.values.shape[1] != count:
            raise ValueError(
                f"BVH: motion values must be (frames, {count}) for {count} channels, got {self.values.shape}"
            )
        if not np.isfinite(self.values).all() or not np.isfinite(self.offsets).all():
            raise ValueError("BVH: values or offsets contain NaN or infinity")
        spaced = [n for n in self.joint_names if not n or any(c.isspace() for c in n)]
        if spaced:
            raise ValueError(
                f"BVH: joint names must be single words (a BVH file separates tokens by whitespace), got {spaced[:5]}"
            )
        if depth_first_order(self.parents) != list(range(num)):
            raise ValueError(
                "BVH: joints must be listed depth-first (each joint's subtree right after it), the order of the "
                f"hierarchy and of the motion channels; parents {list(self.parents)} are not. "
                "BVHClip.from_motion reorders a skeleton."
            )
        if any(not 0 <= int(j) < num for j, _ in self.end_sites):
            raise ValueError(f"BVH: end sites name joints outside 0..{num - 1}: {[j for j, _ in self.end_sites]}")
        if not (math.isfinite(self.frame_time) and self.frame_time > 0):
            raise ValueError(f"BVH: Frame Time must be a positive number of seconds, got {self.frame_time!r}")
        for j, chans in enumerate(self.channels):
            for c in chans:
                if c not in VALID_CHANNELS:
                    raise ValueError(f"BVH: joint {self.joint_names[j]!r} has unknown channel {c!r}")

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    @property
    def num_frames(self) -> int:
        return int(self.values.shape[0])

    @property
    def fps(self) -> float:
        """Frames per second, ``1 / frame_time`` snapped to the nearest whole number when within 0.01 % of it.

        Files print Frame Time to a few decimals (``0.008333`` for 120 fps gives 120.0048); the snap restores the
        intended rate while leaving real fractional rates such as 29.97 alone.
        """
        rate = 1.0 / self.frame_time
        nearest = round(rate)
        return float(nearest) if nearest >= 1 and abs(nearest * self.frame_time - 1.0) < 1e-4 else rate

    def channel_slices(self) -> list[slice]:
        """Per joint, the slice of ``values`` columns holding its channels."""
        slices, start = [], 0
        for chans in self.channels:
            slices.append(slice(start, start + len(chans)))
            start += len(chans)
        return slices

    def rest_positions(self) -> np.ndarray:
        """``(J, 3)`` rest positions in file units (offsets accumulated)."""
        pos = np.zeros_like(self.offsets)
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] + (pos[p] if p >= 0 else 0.0)
        return pos

    def guess_unit_scale(self) -> float:
        """Metres per file unit, chosen from :data:`KNOWN_UNIT_SCALES` so the figure is closest to 1.7 m tall.

        The figure's size is the largest extent of its rest pose (end sites included), or of frame 0 when the rest
        pose is degenerate.
        """
        rest = self.rest_positions()
        tips = [rest[j] + np.asarray(off) for j, off in self.end_sites]
        points = np.vstack([rest, *tips]) if tips else rest
        extent = float((points.max(0) - points.min(0)).max())
        if extent <= 1e-9:
            return 1.0
        return min(KNOWN_UNIT_SCALES.values(), key=lambda s: abs(math.log(extent * s / 1.7)))

    def to_motion(self, scale: float | None = None, name: str | None = None, joint_order: str = "registry") -> Motion:
        """The clip as a :class:`Motion` in metres with local rotations, root translation and FK positions.

        Args:
            scale: metres per file unit; ``None`` guesses it (:meth:`guess_unit_scale`).
            name: the skeleton name (default ``"bvh"``).
            joint_order: ``"registry"`` (default): when the hierarchy is a registry skeleton's
                (:func:`registry_order`), the motion's joints come in that skeleton's declared order, so a motion
                written with :meth:`from_motion` reads back joint for joint; otherwise, and with ``"file"``, they
                come in file (depth-first) order. ``metadata["joint_order"]`` says which: the registry name or
                ``"file"``.

        Raises:
            ValueError: for a clip with no frames, a non-positive scale or an unknown ``joint_order``.
        """
        if self.num_frames == 0:
            raise ValueError("BVH: the file has no motion frames")
        if joint_order not in JOINT_ORDERS:
            raise ValueError(f"BVH: joint_order must be one of {', '.join(JOINT_ORDERS)}, got {joint_order!r}")
        scale = self.guess_unit_scale() if scale is None else float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"BVH: unit scale must be a positive number, got {scale!r}")
        frames, num = self.num_frames, len(self.joint_names)
        rotations = np.zeros((frames, num, 4))
        rotations[..., 0] = 1.0
        translations = np.broadcast_to(self.offsets, (frames, num, 3)).copy()
        has_local_translation = False
        for j, sl in enumerate(self.channel_slices()):
            chans, vals = self.channels[j], self.values[:, sl]
            rot_idx = [k for k, c in enumerate(chans) if c.endswith("rotation")]
            if rot_idx:
                order = "".join(chans[k][0] for k in rot_idx)
                if len(rot_idx) == 3:
                    rotations[:, j] = euler_to_quat(vals[:, rot_idx], order)
                else:  # one or two rotation channels: the rest are zero
                    full_order = order + "".join(a for a in "XYZ" if a not in order)
                    angles = np.zeros((frames, 3))
                    angles[:, : len(rot_idx)] = vals[:, rot_idx]
                    rotations[:, j] = euler_to_quat(angles, full_order)
            for k, c in enumerate(chans):
                if c.endswith("position"):
                    translations[:, j, "XYZ".index(c[0])] = vals[:, k]
                    has_local_translation = has_local_translation or j > 0
        match = registry_order(self.joint_names, self.parents) if joint_order == "registry" else None
        index = match[1] if match else list(range(num))
        where = {old: new for new, old in enumerate(index)}
        root_translation = translations[:, 0] * scale
        skeleton = Skeleton(
            name=name or "bvh",
            joint_names=tuple(self.joint_names[j] for j in index),
            parents=tuple(where[self.parents[j]] if self.parents[j] >= 0 else -1 for j in index),
            rest_offsets=self.offsets[index] * scale,
            end_sites=tuple((where[j], tuple(float(v) * scale for v in off)) for j, off in self.end_sites),
        )
        rotations, translations = rotations[:, index], translations[:, index]
        positions, _ = forward_kinematics(
            skeleton, rotations, root_translation, translations * scale if has_local_translation else None
        )
        return Motion(
            skeleton=skeleton,
            fps=self.fps,
            positions=positions,
            rotations=rotations.astype(np.float32),
            root_translation=root_translation.astype(np.float32),
            metadata={"format": "bvh", "unit_scale_m": scale, "frame_time": self.frame_time,
                      "joint_order": match[0] if match else "file"},  # fmt: skip
        )

    @classmethod
    def from_motion(cls, motion: Motion, rotation_order: str = "ZYX", scale: float = 0.01) -> BVHClip:
        """A BVH clip (root: 6 channels, other joints: 3 rotation channels) from a motion with rotations.

        The joints are written depth-first (:func:`depth_first_order`; SMPL's declared order is not), each joint's
        channels with it, so the hierarchy and the motion lines agree. The file holds the rest offsets and the
        local rotations only: every joint's position is their forward kinematics, which must be the motion's
        positions (checked, :data:`FK_TOLERANCE_M`).

        Args:
            motion: a 3D motion with ``rotations``; its root translation (or root positions) drives the root.
            rotation_order: Euler order for every joint's rotation channels (``"ZYX"`` writes ``Zrotation
                Yrotation Xrotation``).
            scale: metres per file unit (0.01 writes centimetres).

        Raises:
            ValueError: when the motion has no rotations or is 2D (retarget it onto a rig first), holds NaN /
                infinity, its positions are not the forward kinematics of its rotations and rest offsets, or
                ``rotation_order`` / ``scale`` are invalid.
        """
        if motion.is_2d or motion.rotations is None:
            raise ValueError(
                "BVH needs local joint rotations; this motion has positions only "
                f"(skeleton {motion.skeleton.name!r}). Retarget it onto a rig first (baton retarget)."
            )
        order = rotation_order.upper()
        if len(order) != 3 or set(order) != set("XYZ"):
            raise ValueError(f"rotation_order must be a permutation of XYZ, got {rotation_order!r}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"BVH: unit scale must be a positive number, got {scale!r}")
        root = motion.root_translation if motion.root_translation is not None else motion.positions[:, 0]
        for label, array in (("rotations", motion.rotations), ("root translation", root)):
            if not np.isfinite(array).all():
                raise ValueError(f"BVH: the motion's {label} contain NaN or infinity; nothing was written")
        skel = motion.skeleton
        fk, _ = forward_kinematics(skel, motion.rotations, root)
        error = np.linalg.norm(fk.astype(np.float64) - motion.positions, axis=-1)
        if error.max() > FK_TOLERANCE_M:
            t, j = np.unravel_index(int(error.argmax()), error.shape)
            raise ValueError(
                f"BVH: the motion's positions are not the forward kinematics of its rotations and rest offsets "
                f"(joint {skel.joint_names[j]!r}, frame {t}: {error.max() * 100:.2f} cm off); a BVH file stores only "
                "offsets and rotations, so it would not show this motion. Nothing was written."
            )
        file_order = depth_first_order(skel.parents)
        where = {old: new for new, old in enumerate(file_order)}
        rot_channels = tuple(f"{axis}rotation" for axis in order)
        channels = [("Xposition", "Yposition", "Zposition") + rot_channels] + [rot_channels] * (skel.num_joints - 1)
        euler = quat_to_euler(motion.rotations[:, file_order], order)  # (T, J, 3), file order
        values = np.concatenate([np.asarray(root, np.float64)[:, None, :] / scale, euler], axis=1)
        values = values.reshape(motion.num_frames, -1)
        end_sites = list(skel.end_sites)
        if not end_sites:  # give leaf joints a short tip so viewers draw their bones
            for j in range(skel.num_joints):
                if not skel.children(j) and skel.parents[j] >= 0:
                    end_sites.append((j, tuple(float(v) * 0.25 for v in skel.rest_offsets[j])))
        return cls(
            joint_names=[skel.joint_names[j] for j in file_order],
            parents=[where[skel.parents[j]] if skel.parents[j] >= 0 else -1 for j in file_order],
            offsets=skel.rest_offsets[file_order].astype(np.float64) / scale,
            channels=channels,
            end_sites=sorted((where[j], tuple(float(v) / scale for v in off)) for j, off in end_sites),
            frame_time=1.0 / motion.fps,
            values=values,
        )
