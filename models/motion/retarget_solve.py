"""Per-joint solving for :mod:`models.motion.retarget`: the plan (mapped joints and their aims), world rotations
from bone directions (Wahba fits with a bend-plane twist axis), source-rotation transfer, root motion and scale.

All rotations here are world rotations ``A_j`` relative to the rest pose (Skeleton convention), ``(T, 3, 3)``.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from models.motion.joint_mapping import canonical_names
from models.motion.kinematics import forward_kinematics
from models.motion.motion import Motion
from models.motion.retarget_math import fit_rotation, normalize, swing_rotation
from models.motion.retarget_rig import TargetRig

#: Weight of the "stay at rest relative to the parent" prior against unit-weight bone directions.
PRIOR_WEIGHT = 0.02
#: Rest poses "agree" around a joint when its bones point within this angle (degrees) in source and target.
REST_AGREEMENT_DEG = 20.0
#: The same prior for joints with several mapped descendants (only breaks ties when their directions are collinear).
MULTI_PRIOR_WEIGHT = 1e-5
#: Bones shorter than this (metres) have no direction.
MIN_LENGTH = 1e-4
_UPPER_LIMBS = {"left_hip", "right_hip", "left_shoulder", "right_shoulder"}
_LEG_HINGES = {"left_hip", "right_hip", "left_knee", "right_knee"}
_ARM_HINGES = {"left_shoulder", "right_shoulder", "left_elbow", "right_elbow"}


class Plan:
    """Index bookkeeping for one source -> target pairing.

    Attributes:
        names, parents: the target's joints.
        rest: ``(J, 3)`` float64 target rest positions (metres).
        source_of: ``(J,)`` int source joint index per target joint (``-1`` unmapped).
        role / joint_of: target joint index <-> canonical name (:mod:`models.motion.joint_mapping`).
        ancestor: nearest mapped ancestor per joint (``-1`` none).
        descendants: nearest mapped descendants per joint.
        aims: the descendants whose directions define a joint's rotation (looking through zero-length bones).
        top: mapped joints without a mapped ancestor.
        forward: ``(3,)`` the target's facing direction in its rest pose.
    """

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
        # Directions are aimed through zero-length bones (CMU's LHipJoint, lowerback sit on the pelvis): a mapped
        # descendant at the joint's own rest position is replaced by its own aims.
        self.aims: list[list[int]] = [[] for _ in range(num)]
        for j in range(num - 1, -1, -1):
            for k in self.descendants[j]:
                if np.linalg.norm(self.rest[k] - self.rest[j]) < MIN_LENGTH and self.aims[k]:
                    self.aims[j].extend(self.aims[k])
                else:
                    self.aims[j].append(k)
        #: Mapped joints without a mapped ancestor (what an unmapped root is fitted to).
        self.top = [j for j in range(num) if self.source_of[j] >= 0 and self.ancestor[j] < 0]
        self.forward = self._forward_axis()

    def mapped(self, j: int) -> bool:
        """Whether target joint ``j`` has a source joint."""
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


def secondary_axis(plan: Plan, j: int, c: int, src: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
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
    if role in _UPPER_LIMBS and len(plan.aims[c]) == 1:
        rest_n, cur = bend(j, c, plan.aims[c][0])
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


def solve_joint(plan: Plan, j: int, src: np.ndarray, prior: np.ndarray, from_source: bool) -> np.ndarray:
    """World rotation ``(T, 3, 3)`` of mapped joint ``j`` from its nearest mapped descendants.

    ``from_source``: the prior carries the source's own rotation of this joint (rotation channels), so a single
    bone's twist is taken from it instead of the bend-plane heuristic.
    """
    kids = plan.aims[j]
    frames = src.shape[0]
    rest_dirs, rest_len = normalize(plan.rest[kids] - plan.rest[j])
    cur_dirs, cur_len = normalize(src[:, plan.source_of[kids]] - src[:, plan.source_of[j]][:, None])
    weights = ((rest_len > MIN_LENGTH)[None] & (cur_len > MIN_LENGTH)).astype(np.float64)
    rest_vecs, cur_vecs, w = [np.broadcast_to(rest_dirs, cur_dirs.shape)], [cur_dirs], [weights]
    secondary = secondary_axis(plan, j, kids[0], src) if len(kids) == 1 and not from_source else None
    if secondary is not None:
        rest_n, cur_n = secondary
        strength = np.linalg.norm(cur_n, axis=-1)
        rest_vecs.append(np.broadcast_to(rest_n, (frames, 1, 3)))
        cur_vecs.append(normalize(cur_n)[0][:, None])
        w.append(np.clip((strength - 0.05) / 0.25, 0.0, 1.0)[:, None])
    rest_vecs.append(np.broadcast_to(np.eye(3), (frames, 3, 3)))
    cur_vecs.append(np.swapaxes(prior, 1, 2))  # prior's columns = where it sends the rest axes
    single = 1.0 if from_source else PRIOR_WEIGHT
    w.append(np.full((frames, 3), single if len(kids) == 1 else MULTI_PRIOR_WEIGHT))
    rotation = fit_rotation(np.concatenate(rest_vecs, 1), np.concatenate(cur_vecs, 1), np.concatenate(w, 1))
    if len(kids) == 1:  # meet the single bone direction exactly
        valid = weights[:, 0] > 0
        aimed = rotation @ rest_dirs[0]
        rotation[valid] = swing_rotation(aimed[valid], cur_dirs[valid, 0]) @ rotation[valid]
    return rotation


def root_motion(trajectory: np.ndarray, mode: str, fps: float) -> np.ndarray:
    """Apply a root mode (``full``, ``inplace``, ``height``) to a scaled pelvis trajectory ``(T, 3)`` (metres)."""
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


def leg_length(points_of, roles: dict[str, int]) -> float | None:
    """Mean over both legs of hip-knee + knee-ankle length (median over frames), ``None`` without a full leg.

    Args:
        points_of: joint index -> positions ``(3,)`` or ``(T, 3)``.
        roles: canonical name -> joint index.
    """
    lengths = []
    for side in ("left", "right"):
        names = [f"{side}_hip", f"{side}_knee", f"{side}_ankle"]
        if all(n in roles for n in names):
            hip, knee, ankle = (points_of(roles[n]) for n in names)
            lengths.append(np.median(np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1)))
    return float(np.mean(lengths)) if lengths else None


def source_informed(
    plan: Plan, j: int, source_world: np.ndarray, source_rest: np.ndarray, world: np.ndarray
) -> np.ndarray | None:
    """The source's own rotation of joint ``j`` carried onto the target, or ``None`` where it would mislead.

    With source rotation channels ``G_s`` (world, relative to the source's rest pose) and the target's solved mapped
    parent ``a``: ``G_s[j] G_s[a]^T A[a]``, the source joint's rotation relative to its parent applied in world space.
    This is only right where both rest poses agree around the joint, so it is used when the joint's bones (from
    ``a`` and to its aims) point within :data:`REST_AGREEMENT_DEG` of each other in the two rest poses and the
    parent's frames agree on average (``A[a]^T G_s[a]`` within the same angle of identity). Elsewhere (e.g. Bandai
    Namco's BVH rest pose, whose chains all lie along X) the bend-plane heuristic decides the twist.
    """
    a = plan.ancestor[j]
    if not plan.mapped(j) or a < 0:
        return None
    limit = np.cos(np.radians(REST_AGREEMENT_DEG))
    s_j, s_a = plan.source_of[j], plan.source_of[a]
    pairs = [(plan.rest[j] - plan.rest[a], source_rest[s_j] - source_rest[s_a])]
    pairs += [(plan.rest[k] - plan.rest[j], source_rest[plan.source_of[k]] - source_rest[s_j]) for k in plan.aims[j]]
    for target_bone, source_bone in pairs:  # zero-length bones (CMU's thumbs) have no direction to disagree
        (t_unit, t_len), (s_unit, s_len) = normalize(target_bone), normalize(source_bone)
        if t_len > MIN_LENGTH and s_len > MIN_LENGTH and float(t_unit @ s_unit) < limit:
            return None
    align = np.swapaxes(world[:, a], 1, 2) @ source_world[:, s_a]
    if np.mean((np.trace(align, axis1=1, axis2=2) - 1.0) / 2.0) < limit:
        return None
    return source_world[:, s_j] @ np.swapaxes(source_world[:, s_a], 1, 2) @ world[:, a]


def source_world_rotations(motion: Motion) -> np.ndarray | None:
    """``(T, J, 3, 3)`` world rotations of a source with rotation channels (``None`` without)."""
    if motion.rotations is None or motion.is_2d:
        return None
    root = motion.root_translation if motion.root_translation is not None else motion.positions[:, 0]
    return forward_kinematics(motion.skeleton, motion.rotations, root)[1]


def fit_unmapped_root(plan: Plan, src: np.ndarray) -> np.ndarray:
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
