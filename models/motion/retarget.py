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
* Source rotation channels (BVH) are used where both rest poses agree around a joint (bones within 20 degrees,
  parent frames within 20 degrees): there the joint's twist, and a leaf's (head, hand, toe) whole orientation,
  follow the source, so a skeleton retargeted onto itself gets its own rotations back.
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

from models.metrics.motion import foot_skate_cm
from models.motion.foot_contact import detect_contacts, pin_feet
from models.motion.joint_mapping import LOWER_BODY_JOINTS, canonical_names, resolve_mapping
from models.motion.lift2d import lift_coco13
from models.motion.motion import Motion
from models.motion.retarget_math import world_fk
from models.motion.retarget_rig import TargetRig
from models.motion.retarget_solve import (
    Plan,
    fit_unmapped_root,
    leg_length,
    root_motion,
    solve_joint,
    source_informed,
    source_world_rotations,
)
from models.motion.rotations import matrix_to_quat
from models.motion.skeleton import Skeleton, get_skeleton, skeleton_names
from models.progress import Progress

__all__ = ["ROOT_MODES", "RetargetResult", "TargetRig", "resolve_target", "retarget"]

ROOT_MODES = ("full", "inplace", "height")
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


def _solve_world(
    plan: Plan, src: np.ndarray, rotation_source: Motion | None, anchor: int | None, pinned: bool
) -> np.ndarray:
    """World rotations ``(T, J, 3, 3)`` of every target joint, in hierarchy order (see the module docstring)."""
    frames, num = src.shape[0], len(plan.names)
    world = np.empty((frames, num, 3, 3))
    identity = np.broadcast_to(np.eye(3), (frames, 3, 3))
    above_anchor = set()
    j = plan.parents[anchor] if anchor is not None else -1
    while j >= 0:
        above_anchor.add(j)
        j = plan.parents[j]
    source_world = source_world_rotations(rotation_source) if rotation_source is not None else None
    source_rest = rotation_source.skeleton.rest_positions().astype(np.float64) if source_world is not None else None
    for j in range(num):
        p = plan.parents[j]
        prior = world[:, p] if p >= 0 else identity
        informed = source_informed(plan, j, source_world, source_rest, world) if source_world is not None else None
        if pinned and (j == 0 or plan.role.get(j) in LOWER_BODY_JOINTS):
            world[:, j] = prior
        elif j in above_anchor:
            world[:, j] = prior  # joints above the pelvis (e.g. a static BVH root) stay at rest
        elif plan.mapped(j) and plan.aims[j]:
            world[:, j] = solve_joint(plan, j, src, prior if informed is None else informed, informed is not None)
        elif informed is not None:  # a mapped leaf (head, hand, toe): its orientation comes from the source
            world[:, j] = informed
        elif j == 0 and anchor is None:
            world[:, j] = fit_unmapped_root(plan, src)
        else:
            world[:, j] = prior
    return world


def _lock_feet(
    plan: Plan, world: np.ndarray, root_position: np.ndarray, feet: list[int], contacts: np.ndarray
) -> np.ndarray:
    """Pin each leg's ankle during its contacts (two-bone IK on hip, knee, ankle)."""
    legs, leg_contacts = [], []
    for side in ("left", "right"):
        names = [f"{side}_hip", f"{side}_knee", f"{side}_ankle"]
        if all(n in plan.joint_of for n in names) and plan.joint_of[names[2]] in feet:
            legs.append(tuple(plan.joint_of[n] for n in names))
            leg_contacts.append(contacts[:, feet.index(plan.joint_of[names[2]])])
    if not legs:
        return world
    return pin_feet(world, root_position, plan.rest, plan.parents, legs, np.stack(leg_contacts, axis=1))


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
    use_source_rotations: bool = True,
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
        use_source_rotations: where the source has rotation channels and both rest poses agree around a joint,
            take that joint's twist (and a leaf's whole orientation) from the source
            (:func:`models.motion.retarget_solve.source_informed`); positions always decide where bones point.

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
    plan = Plan(rig, src_names, used)
    original = src_motion.positions.astype(np.float64)
    src = gaussian_filter1d(original, sigma=smoothing, axis=0, mode="nearest") if smoothing > 0 else original
    frames = src.shape[0]

    # Scale by leg length (target rest / source observed); 2D sources are already at human scale.
    _, src_roles_table = canonical_names(src_names)
    src_roles = {c: src_names.index(n) for c, n in src_roles_table.items()}
    source_legs = leg_length(lambda i: original[:, i], src_roles)
    target_legs = leg_length(lambda i: plan.rest[i], plan.joint_of)
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
    target_hips = root_motion(scale * source_hips, root, source.fps)

    if progress is not None:
        progress.update(0.1, "solving")
    world = _solve_world(plan, src, src_motion if use_source_rotations else None, anchor, pinned)
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
        world = _lock_feet(plan, world, root_position, feet, contacts)
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
