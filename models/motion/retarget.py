"""Retarget a source motion onto a target rig (DESIGN §1; issue 3).

Pipeline: parse (source Motion, target rest pose) -> map joints (:mod:`models.motion.joint_mapping`) -> plan and
solve world rotations per joint (numpy) -> root motion -> foot-contact pinning -> local rotations.

Solver, per target joint ``j`` in hierarchy order (Skeleton convention: world rotations ``A_j`` are relative to
the rest pose, so joint positions are ``p_j = p_parent + A_parent (rest_j - rest_parent)``):

* The bones from ``j`` to its nearest *mapped* descendants must point where the corresponding source bones point.
  With several descendants (pelvis, chest) ``A_j`` is the least-squares rotation (Wahba's problem) of the unit
  rest directions onto the unit source directions. With one descendant the direction is met exactly and the twist
  about it comes from a secondary axis: the limb's bend-plane normal (hip/shoulder use the knee/elbow bend,
  other joints their own), with a hinge axis from the rig's forward direction when the rest limb is straight
  (knees bend backwards, elbows forwards). A weak prior (the parent's rotation, i.e. "stay at rest relative to the
  parent") resolves whatever the data leaves open, so straight limbs do not flip.
* Because only world directions are matched, rest-pose differences (T vs A pose, bone rolls, axis conventions of
  BVH files) need no special case: each rig's rest pose defines its own zero.
* Root: the target's pelvis is placed at the source pelvis scaled by the leg-length ratio (so feet meet the floor
  at y = 0 and the target's own hip height is preserved), with the root mode applied: ``full`` (all of it),
  ``inplace`` (the horizontal travel removed, sway kept) or ``height`` (only the vertical motion).
* Unmapped target joints keep their rest pose relative to their parent.
* 2D COCO-13 sources are lifted (:mod:`models.motion.lift2d`) and drive the upper body only; the pelvis and legs
  stay at rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import savgol_filter

from models.metrics.motion import foot_skate_cm
from models.motion.foot_contact import detect_contacts, pin_feet
from models.motion.joint_mapping import LOWER_BODY_JOINTS, canonical_names, resolve_mapping
from models.motion.lift2d import lift_coco13
from models.motion.motion import Motion
from models.motion.retarget_math import fit_rotation, normalize, swing_rotation, world_fk
from models.motion.retarget_rig import TargetRig
from models.motion.rotations import matrix_to_quat
from models.motion.skeleton import Skeleton, get_skeleton, skeleton_names
from models.progress import Progress

__all__ = ["ROOT_MODES", "RetargetResult", "TargetRig", "resolve_target", "retarget"]

ROOT_MODES = ("full", "inplace", "height")
#: Weight of the "stay at rest relative to the parent" prior against unit-weight bone directions.
PRIOR_WEIGHT = 0.02
#: The same prior for joints with several mapped descendants (only breaks ties when their directions are collinear).
MULTI_PRIOR_WEIGHT = 1e-5
_MIN_LENGTH = 1e-4
_UPPER_LIMBS = {"left_hip", "right_hip", "left_shoulder", "right_shoulder"}
_LEG_HINGES = {"left_hip", "right_hip", "left_knee", "right_knee"}
_ARM_HINGES = {"left_shoulder", "right_shoulder", "left_elbow", "right_elbow"}


@dataclass
class RetargetResult:
    """What :func:`retarget` returns.

    Attributes:
        motion: the motion on the target: positions ``(T, J, 3)``, local rotations ``(T, J, 4)`` (w, x, y, z) in the
            Skeleton convention relative to the target's rest pose, root translation ``(T, 3)`` (the root joint's
            world position), metres, backend space, the source's fps.
        mapping: ``{target joint: source joint}`` actually used.
        foot_skate_before_cm: the source's foot skate (cm/frame) during its detected contacts.
        foot_skate_after_cm: the target's foot skate over the same contact frames.
        rig: the target rig (rest pose incl. bone frames).
        scale: the leg-length ratio target / source applied to root motion.
        details: JSON-serialisable facts (root mode, foot lock, contact joints, convention names, ...).
    """

    motion: Motion
    mapping: dict[str, str]
    foot_skate_before_cm: float
    foot_skate_after_cm: float
    rig: TargetRig
    scale: float = 1.0
    details: dict[str, Any] = field(default_factory=dict)

    def bone_rotations(self) -> np.ndarray:
        """``(T, J, 4)`` rotations relative to each bone's own rest frame (what Blender pose bones hold)."""
        return self.rig.bone_rotations(self.motion.rotations)

    def report(self) -> dict[str, Any]:
        """A JSON-serialisable summary (mapping, skate before/after, scale, frames, details)."""
        return {
            "target": self.rig.name,
            "frames": self.motion.num_frames,
            "fps": self.motion.fps,
            "mapping": dict(self.mapping),
            "mapped_joints": len(self.mapping),
            "target_joints": self.rig.num_joints,
            "scale": round(self.scale, 6),
            "foot_skate_before_cm": round(self.foot_skate_before_cm, 4),
            "foot_skate_after_cm": round(self.foot_skate_after_cm, 4),
            **self.details,
        }


def resolve_target(target: TargetRig | Skeleton | str | dict) -> tuple[TargetRig, Skeleton]:
    """The target as ``(TargetRig, Skeleton)`` from a rig, a skeleton, a registry name, a ``.bvh`` path or a rig
    dict.

    Raises:
        ValueError: for an unknown registry name / missing BVH file (the message lists the accepted targets).
        TypeError: for any other type.
    """
    if isinstance(target, TargetRig):
        return target, target.to_skeleton()
    if isinstance(target, Skeleton):
        return TargetRig.from_skeleton(target), target
    if isinstance(target, dict):
        rig = TargetRig.from_dict(target)
        return rig, rig.to_skeleton()
    if isinstance(target, str | Path):
        text = str(target)
        if text in skeleton_names():
            skeleton = get_skeleton(text)
            return TargetRig.from_skeleton(skeleton), skeleton
        if text.lower().endswith(".bvh"):
            path = Path(text)
            if not path.is_file():
                raise ValueError(f"target BVH file not found: {path}")
            from models.motion.bvh import load_bvh

            skeleton = load_bvh(path).skeleton
            return TargetRig.from_skeleton(skeleton), skeleton
        raise ValueError(f"unknown target {text!r}; use one of {', '.join(skeleton_names())} or a .bvh file")
    raise TypeError(f"target must be a TargetRig, Skeleton, registry name or .bvh path, got {type(target).__name__}")


class _Plan:
    """Index bookkeeping for one source -> target pairing."""

    def __init__(self, rig: TargetRig, source_names: tuple[str, ...], mapping: dict[str, str]) -> None:
        self.names, self.parents = rig.joint_names, rig.parents
        self.rest = rig.rest_positions
        src_index = {n: i for i, n in enumerate(source_names)}
        self.source_of = np.array([src_index.get(mapping.get(n, ""), -1) for n in self.names])
        _, table = canonical_names(self.names)
        self.role = {self.names.index(name): canonical for canonical, name in table.items()}
        self.joint_of = {canonical: j for j, canonical in self.role.items()}
        num = len(self.names)
        self.descendants: list[list[int]] = [[] for _ in range(num)]
        self.ancestor = [-1] * num
        for j in range(num):
            p = self.parents[j]
            while p >= 0 and self.source_of[p] < 0:
                p = self.parents[p]
            self.ancestor[j] = p
            if p >= 0 and self.source_of[j] >= 0:
                self.descendants[p].append(j)
        #: Mapped joints without a mapped ancestor (what an unmapped root is fitted to).
        self.top = [j for j in range(num) if self.source_of[j] >= 0 and self.ancestor[j] < 0]
        self.forward = self._forward_axis()

    def mapped(self, j: int) -> bool:
        return bool(self.source_of[j] >= 0)

    def _forward_axis(self) -> np.ndarray:
        """The rig's facing direction in its rest pose: cross(left, up) from hips/shoulders and spine."""
        rest, at = self.rest, self.joint_of
        left = None
        for a, b in (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")):
            if a in at and b in at:
                left = rest[at[a]] - rest[at[b]]
                break
        up = None
        for top in ("head", "neck", "spine3", "spine1"):
            if top in at and "pelvis" in at:
                up = rest[at[top]] - rest[at["pelvis"]]
                break
        if left is None or up is None or np.linalg.norm(np.cross(left, up)) < 1e-6:
            return np.array([0.0, 0.0, 1.0])
        return normalize(np.cross(left, up))[0]


def _secondary(plan: _Plan, j: int, c: int, src: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Rest (3,) and current (T, 3) bend-plane normals used to fix the twist of joint ``j`` aiming at ``c``."""
    rest = plan.rest

    def bend(a: int, b: int, d: int) -> tuple[np.ndarray, np.ndarray]:
        rest_n = np.cross(normalize(rest[b] - rest[a])[0], normalize(rest[d] - rest[b])[0])
        cur = np.cross(
            normalize(src[:, plan.source_of[b]] - src[:, plan.source_of[a]])[0],
            normalize(src[:, plan.source_of[d]] - src[:, plan.source_of[b]])[0],
        )
        return rest_n, cur

    role = plan.role.get(j)
    if role in _UPPER_LIMBS and len(plan.descendants[c]) == 1:
        rest_n, cur = bend(j, c, plan.descendants[c][0])
    elif plan.ancestor[j] >= 0:
        rest_n, cur = bend(plan.ancestor[j], j, c)
    else:
        return None
    if np.linalg.norm(rest_n) < 0.25:  # straight at rest: use the anatomical hinge
        if role in _LEG_HINGES:
            rest_n = np.cross(normalize(rest[c] - rest[j])[0], -plan.forward)
        elif role in _ARM_HINGES:
            rest_n = np.cross(normalize(rest[c] - rest[j])[0], plan.forward)
        if np.linalg.norm(rest_n) < 0.25:
            return None
    return normalize(rest_n)[0], cur


def _solve_joint(plan: _Plan, j: int, src: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """World rotation ``(T, 3, 3)`` of mapped joint ``j`` from its nearest mapped descendants."""
    kids = plan.descendants[j]
    frames = src.shape[0]
    rest_dirs, rest_len = normalize(plan.rest[kids] - plan.rest[j])
    cur_dirs, cur_len = normalize(src[:, plan.source_of[kids]] - src[:, plan.source_of[j]][:, None])
    weights = ((rest_len > _MIN_LENGTH)[None] & (cur_len > _MIN_LENGTH)).astype(np.float64)
    rest_vecs, cur_vecs, w = [np.broadcast_to(rest_dirs, cur_dirs.shape)], [cur_dirs], [weights]
    secondary = _secondary(plan, j, kids[0], src) if len(kids) == 1 else None
    if secondary is not None:
        rest_n, cur_n = secondary
        strength = np.linalg.norm(cur_n, axis=-1)
        rest_vecs.append(np.broadcast_to(rest_n, (frames, 1, 3)))
        cur_vecs.append(normalize(cur_n)[0][:, None])
        w.append(np.clip((strength - 0.05) / 0.25, 0.0, 1.0)[:, None])
    rest_vecs.append(np.broadcast_to(np.eye(3), (frames, 3, 3)))
    cur_vecs.append(np.swapaxes(prior, 1, 2))  # prior's columns = where it sends the rest axes
    w.append(np.full((frames, 3), PRIOR_WEIGHT if len(kids) == 1 else MULTI_PRIOR_WEIGHT))
    rotation = fit_rotation(np.concatenate(rest_vecs, 1), np.concatenate(cur_vecs, 1), np.concatenate(w, 1))
    if len(kids) == 1:  # meet the single bone direction exactly
        valid = weights[:, 0] > 0
        aimed = rotation @ rest_dirs[0]
        rotation[valid] = swing_rotation(aimed[valid], cur_dirs[valid, 0]) @ rotation[valid]
    return rotation


def _root_motion(trajectory: np.ndarray, mode: str, fps: float) -> np.ndarray:
    """Apply a root mode to a (scaled) pelvis trajectory ``(T, 3)``."""
    out = trajectory.copy()
    if mode == "inplace":
        # The travel is a Savitzky-Golay fit (quadratic over ~1 s: a gait cycle, so no lag at starts and stops);
        # what remains around it is sway.
        frames = trajectory.shape[0]
        window = min(int(round(fps)) | 1, frames if frames % 2 else frames - 1)
        if window > 2:
            travel = savgol_filter(trajectory[:, [0, 2]], window, 2, axis=0, mode="interp")
        else:
            travel = trajectory[:, [0, 2]]
        out[:, [0, 2]] = trajectory[:, [0, 2]] - travel + travel[:1]
    elif mode == "height":
        out[:, [0, 2]] = trajectory[:1, [0, 2]]
    return out


def _leg_length(points_of, roles: dict[str, int]) -> float | None:
    lengths = []
    for side in ("left", "right"):
        names = [f"{side}_hip", f"{side}_knee", f"{side}_ankle"]
        if all(n in roles for n in names):
            hip, knee, ankle = (points_of(roles[n]) for n in names)
            lengths.append(np.median(np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1)))
    return float(np.mean(lengths)) if lengths else None


def _validate(source: Motion, root: str, smoothing: float) -> None:
    if not isinstance(source, Motion):
        raise TypeError(f"source must be a Motion, got {type(source).__name__}")
    if source.positions.shape[0] == 0:
        raise ValueError("source motion has zero frames")
    if not np.isfinite(source.positions).all():
        raise ValueError("source motion positions contain NaN or infinity")
    if root not in ROOT_MODES:
        raise ValueError(f"root must be one of {', '.join(ROOT_MODES)}, got {root!r}")
    if not (np.isfinite(smoothing) and smoothing >= 0):
        raise ValueError(f"smoothing must be a finite number >= 0 (Gaussian sigma in frames), got {smoothing!r}")


def retarget(
    source: Motion,
    target: TargetRig | Skeleton | str,
    *,
    mapping: dict[str, str | None] | None = None,
    root: str = "full",
    foot_lock: bool = True,
    smoothing: float = 0.0,
    progress: Progress | None = None,
) -> RetargetResult:
    """Retarget ``source`` onto ``target`` (see the module docstring for the method).

    Args:
        source: a 3D motion (positions drive the result) or a 2D ``coco13`` motion (lifted, upper body only).
        target: a :class:`TargetRig`, a :class:`Skeleton`, a registry name (``smpl24``, ``kit21``, ``coco13``,
            ``smpl22``), a ``.bvh`` path or a rig dict (:meth:`TargetRig.to_dict`).
        mapping: explicit ``{target joint: source joint}`` entries applied over the automatic mapping
            (``None`` values unmap a joint).
        root: ``"full"``, ``"inplace"`` or ``"height"`` root motion.
        foot_lock: pin feet during detected contacts (two-bone IK); only with ``root="full"`` and 3D sources.
        smoothing: Gaussian sigma in frames applied to the source positions before solving (0 = off).
        progress: optional progress sink (stages: mapping, solving, feet, done).

    Returns:
        :class:`RetargetResult`.

    Raises:
        ValueError: zero frames, NaN / infinite positions, an unknown target or root mode, a mapping naming bones
            that do not exist, nothing mapped, a negative smoothing.
        TypeError: when ``source`` is not a Motion or ``target`` has an unsupported type.
        models.progress.Cancelled: when ``progress`` was cancelled.
    """
    _validate(source, root, smoothing)
    rig, skeleton = resolve_target(target)
    if progress is not None:
        progress.update(0.0, "mapping")
    two_d = source.is_2d
    src_motion = lift_coco13(source) if two_d else source
    src_names = src_motion.skeleton.joint_names
    used = resolve_mapping(src_names, rig.joint_names, mapping)
    if two_d:
        _, target_roles = canonical_names(rig.joint_names)
        lower = {target_roles[c] for c in LOWER_BODY_JOINTS if c in target_roles}
        used = {t: s for t, s in used.items() if t not in lower}
        if not used:
            raise ValueError(f"no upper-body joint of {rig.name!r} maps to the 2D source")
    plan = _Plan(rig, src_names, used)
    original = src_motion.positions.astype(np.float64)
    src = gaussian_filter1d(original, sigma=smoothing, axis=0, mode="nearest") if smoothing > 0 else original
    frames, num = src.shape[0], rig.num_joints

    # Scale by leg length (target rest / source observed); 2D sources are already at human scale.
    _, src_roles_table = canonical_names(src_names)
    src_roles = {c: src_names.index(n) for c, n in src_roles_table.items()}
    source_legs = _leg_length(lambda i: original[:, i], src_roles)
    target_legs = _leg_length(lambda i: plan.rest[i], plan.joint_of)
    scale = target_legs / source_legs if (source_legs and target_legs and not two_d) else 1.0

    # Root: which target joint carries the source's pelvis trajectory.
    root_joint = 0
    pelvis = plan.joint_of.get("pelvis")
    anchor = pelvis if pelvis is not None and plan.mapped(pelvis) else (root_joint if plan.mapped(0) else None)
    pinned = two_d and (not plan.mapped(0) or plan.role.get(0) in LOWER_BODY_JOINTS)
    anchors = [anchor] if anchor is not None else plan.top
    if not anchors:
        raise ValueError(f"nothing below the root of {rig.name!r} is mapped")
    source_hips = src[:, plan.source_of[anchors]].mean(axis=1)
    target_hips = _root_motion(scale * source_hips, root, source.fps)

    if progress is not None:
        progress.update(0.1, "solving")
    world = np.empty((frames, num, 3, 3))
    identity = np.broadcast_to(np.eye(3), (frames, 3, 3))
    path_to_anchor = set()
    if anchor is not None:
        j = anchor
        while j >= 0:
            path_to_anchor.add(j)
            j = plan.parents[j]
    for j in range(num):
        p = plan.parents[j]
        prior = world[:, p] if p >= 0 else identity
        if pinned and (j == 0 or plan.role.get(j) in LOWER_BODY_JOINTS):
            world[:, j] = prior
        elif j in path_to_anchor and j != anchor:
            world[:, j] = prior  # joints above the pelvis (e.g. a static BVH root) stay at rest
        elif plan.mapped(j) and plan.descendants[j]:
            world[:, j] = _solve_joint(plan, j, src, prior)
        elif j == 0 and anchor is None:
            world[:, j] = _fit_unmapped_root(plan, src)
        else:
            world[:, j] = prior
    if pinned:
        root_position = np.broadcast_to(plan.rest[0], (frames, 3)).copy()
    elif anchor is not None:
        root_position = target_hips - (plan.rest[anchor] - plan.rest[0])
    else:
        offsets = plan.rest[anchors] - plan.rest[0]
        goals = target_hips[:, None] + scale * (src[:, plan.source_of[anchors]] - source_hips[:, None])
        root_position = goals.mean(axis=1) - world[:, 0] @ offsets.mean(axis=0)

    # Foot contacts (from the source) and pinning.
    if progress is not None:
        progress.update(0.6, "feet")
    foot_roles = [r for r in ("left_ankle", "right_ankle", "left_foot", "right_foot") if r in plan.joint_of]
    feet = [plan.joint_of[r] for r in foot_roles if plan.mapped(plan.joint_of[r])]
    contacts = (
        detect_contacts(original[:, plan.source_of[feet]], source.fps) if feet and not two_d else None
    )
    locked = bool(foot_lock and root == "full" and not two_d and contacts is not None)
    if locked:
        legs, leg_contacts = [], []
        for side in ("left", "right"):
            names = [f"{side}_hip", f"{side}_knee", f"{side}_ankle"]
            if all(n in plan.joint_of for n in names) and plan.joint_of[names[2]] in feet:
                legs.append(tuple(plan.joint_of[n] for n in names))
                leg_contacts.append(contacts[:, feet.index(plan.joint_of[names[2]])])
        if legs:
            world = pin_feet(world, root_position, plan.rest, plan.parents, legs, np.stack(leg_contacts, axis=1))
    positions = world_fk(world, root_position, plan.rest, plan.parents)
    if contacts is not None:
        skate_before = foot_skate_cm(original[:, plan.source_of[feet]], contacts)
        skate_after = foot_skate_cm(positions[:, feet], contacts)
    else:
        skate_before = skate_after = 0.0

    local = world.copy()
    for j, p in enumerate(plan.parents):
        if p >= 0:
            local[:, j] = np.swapaxes(world[:, p], 1, 2) @ world[:, j]
    rotations = matrix_to_quat(local).astype(np.float32)
    motion = Motion(
        skeleton=skeleton,
        fps=source.fps,
        positions=positions.astype(np.float32),
        rotations=rotations,
        root_translation=root_position.astype(np.float32),
        metadata={
            "retargeted_from": source.skeleton.name,
            "root_mode": root,
            "scale": scale,
            **{k: v for k, v in source.metadata.items() if k in ("source_path", "license")},
        },
    )
    if progress is not None:
        progress.update(1.0, "done")
    details = {
        "root_mode": root,
        "foot_lock": locked,
        "smoothing": float(smoothing),
        "contact_joints": [rig.joint_names[f] for f in feet] if contacts is not None else [],
        "source_convention": canonical_names(src_names)[0],
        "target_convention": canonical_names(rig.joint_names)[0],
        "lifted_2d": two_d,
    }
    return RetargetResult(motion, dict(used), skate_before, skate_after, rig, float(scale), details)


def _fit_unmapped_root(plan: _Plan, src: np.ndarray) -> np.ndarray:
    """Rotation of an unmapped root: rigid fit of its nearest mapped descendants' rest layout onto the source."""
    kids = plan.top
    frames = src.shape[0]
    rest = plan.rest[kids] - plan.rest[kids].mean(axis=0)
    goals = src[:, plan.source_of[kids]] - src[:, plan.source_of[kids]].mean(axis=1, keepdims=True)
    weights = np.ones((frames, len(kids)))
    rest_vecs = np.concatenate([np.broadcast_to(rest, goals.shape), np.broadcast_to(np.eye(3), (frames, 3, 3))], 1)
    cur_vecs = np.concatenate([goals, np.broadcast_to(np.eye(3), (frames, 3, 3))], 1)
    w = np.concatenate([weights, np.full((frames, 3), PRIOR_WEIGHT * 1e-2)], 1)
    return fit_rotation(rest_vecs, cur_vecs, w)
