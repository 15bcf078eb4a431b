"""Body-part chains for any skeleton (Motion Patches, Yu et al. CVPR 2024, §3.1).

A skeleton is reduced to five kinematic chains in a fixed order — right leg, left leg, spine, right arm, left arm
(the SMPL / HumanML3D chain order) — and each chain is resampled to 16 points spaced evenly along its rest-pose arc
length. The result is one linear map ``(80, J)`` from joints to points, so any skeleton (SMPL-22/24, KIT-21, Bandai
21-joint BVH, CMU 31-joint BVH, a Mixamo rig) gives the same ``(T, 80, 3)`` representation.

The chains are tree paths between five end effectors found by joint name (alias tables below):
``leg = path(pelvis -> foot tip)``, ``spine = path(pelvis -> head)``, ``arm = path(chest -> hand tip)`` where the
pelvis is the lowest common ancestor of the two foot tips and the chest that of the two hand tips. When names do
not identify the end effectors, a topology fallback reads them from the hierarchy (pelvis = first three-way branch,
legs = its two smaller branches, chest = the spine's first three-way branch, head = the chest branch with the
shortest reach) and tells left from right with the rest pose (left = up x forward, forward from the feet).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from models.motion.skeleton import Skeleton

#: Chain order of the 80-point representation.
PART_NAMES = ("right_leg", "left_leg", "spine", "right_arm", "left_arm")
#: Points per chain.
POINTS_PER_PART = 16
NUM_POINTS = len(PART_NAMES) * POINTS_PER_PART

# Aliases per end effector, best first (normalised names: lower case, side marker removed, no separators).
_FOOT_ALIASES = ("toebase", "toes", "toe", "toeend", "foottip", "ball", "lf", "rf", "foot", "mrot", "ankle", "la", "ra")
_HAND_ALIASES = ("hand", "hnd", "wrist", "lw", "rw", "palm")
_HEAD_ALIASES = ("headtop", "headend", "head", "skull", "bun", "neck")
_EXCLUDE = re.compile(r"(finger|thumb|index|middle|ring|pinky|little|hand\d|twist|roll|nub|end$|eye|jaw|toe\d)")
_PREFIX = re.compile(r"^(mixamorig\d*[:_]|bip\d*[ _]|def[-_]|[a-z0-9_]*:)", re.IGNORECASE)


@dataclass(frozen=True)
class BodyParts:
    """The five chains of a skeleton and the joints -> points map.

    Attributes:
        chains: five tuples of joint indices (root end first), in :data:`PART_NAMES` order.
        weights: ``(80, J)`` float32; ``points = weights @ joints`` (each row sums to 1).
        height: rest-pose body height estimate in skeleton units (pelvis->head arc + mean leg arc), > 0.
        method: ``"names"`` or ``"topology"`` (how the end effectors were found).
    """

    chains: tuple[tuple[int, ...], ...]
    weights: np.ndarray
    height: float
    method: str


def _side_and_base(name: str) -> tuple[str | None, str]:
    """``("left"|"right"|None, normalised base name)`` for a joint name such as ``LeftHand``, ``Hand_L``, ``lhand``."""
    raw = _PREFIX.sub("", name)
    lower = raw.lower()
    side = None
    base = lower
    for word, value in (("left", "left"), ("right", "right")):
        if word in lower:
            side, base = value, lower.replace(word, "")
            break
    if side is None:
        match = re.match(r"^([lr])(?:[_.\s-]|(?=[A-Z]))", raw) or re.match(r"^([lr])(?=[a-z])", raw)
        if match and (raw[1:2].isupper() or raw[1:2] in "_.- " or lower[1:] in _KNOWN_PARTS):
            side, base = ("left" if match.group(1).lower() == "l" else "right"), lower[1:]
        else:
            match = re.search(r"[_.\s-]([lr])$", lower) or re.search(r"[_.\s-]([lr])[_.\s-]", lower)
            if match:
                side = "left" if match.group(1) == "l" else "right"
                base = lower[: match.start()] + lower[match.end() :]
    if side is None and len(raw) in (2, 3) and raw[0] in "LR" and raw[1:].isupper():  # KIT-ML MMM: LS, RW, LF
        side, base = ("left" if raw[0] == "L" else "right"), lower
    return side, re.sub(r"[^a-z0-9]", "", base)


_KNOWN_PARTS = {"hand", "foot", "toe", "toes", "wrist", "ankle", "shoulder", "elbow", "knee", "hip", "collar", "leg",
                "arm", "upleg", "forearm", "clavicle", "fingers", "thumb", "hipjoint"}  # fmt: skip


def _find(skeleton: Skeleton, aliases: tuple[str, ...], side: str | None) -> int | None:
    names = skeleton.joint_names
    parsed = [_side_and_base(n) for n in names]
    for alias in aliases:
        for j, (joint_side, base) in enumerate(parsed):
            if joint_side != side or _EXCLUDE.search(base):
                continue
            if side is not None and len(names[j]) in (2, 3) and names[j][0] in "LR" and names[j][1:].isupper():
                base = names[j].lower()  # MMM short names keep their side letter (LF, RW)
            if base == alias or (len(alias) > 3 and base.endswith(alias)):
                return j
    return None


def _path_to_root(skeleton: Skeleton, joint: int) -> list[int]:
    path = [joint]
    while skeleton.parents[path[-1]] >= 0:
        path.append(skeleton.parents[path[-1]])
    return path


def _lowest_common_ancestor(skeleton: Skeleton, a: int, b: int) -> int:
    ancestors = set(_path_to_root(skeleton, a))
    for j in _path_to_root(skeleton, b):
        if j in ancestors:
            return j
    return 0


def _path(skeleton: Skeleton, start: int, end: int) -> tuple[int, ...]:
    up = _path_to_root(skeleton, end)
    if start not in up:
        raise ValueError(f"skeleton {skeleton.name!r}: joint {skeleton.joint_names[start]!r} is not an ancestor of "
                         f"{skeleton.joint_names[end]!r}")  # fmt: skip
    return tuple(reversed(up[: up.index(start) + 1]))


def _effectors_by_name(skeleton: Skeleton) -> dict[str, int] | None:
    found = {
        "right_foot": _find(skeleton, _FOOT_ALIASES, "right"),
        "left_foot": _find(skeleton, _FOOT_ALIASES, "left"),
        "right_hand": _find(skeleton, _HAND_ALIASES, "right"),
        "left_hand": _find(skeleton, _HAND_ALIASES, "left"),
        "head": _find(skeleton, _HEAD_ALIASES, None),
    }
    if any(v is None for v in found.values()):
        return None
    return found  # type: ignore[return-value]


def _subtree(skeleton: Skeleton, joint: int) -> list[int]:
    out, stack = [], [joint]
    while stack:
        j = stack.pop()
        out.append(j)
        stack += skeleton.children(j)
    return out


def _deepest_leaf(skeleton: Skeleton, joint: int, rest: np.ndarray) -> int:
    """The leaf below ``joint`` farthest along the hierarchy (rest-pose arc length)."""
    best, best_length = joint, -1.0
    for j in _subtree(skeleton, joint):
        if skeleton.children(j):
            continue
        path = _path(skeleton, joint, j)
        length = float(np.linalg.norm(np.diff(rest[list(path)], axis=0), axis=1).sum()) if len(path) > 1 else 0.0
        if length > best_length:
            best, best_length = j, length
    return best


def _branch(skeleton: Skeleton, start: int) -> int | None:
    """First joint at or below ``start`` (following single children) with at least three children."""
    j = start
    while True:
        children = skeleton.children(j)
        if len(children) >= 3:
            return j
        if len(children) != 1:
            return None
        j = children[0]


def _effectors_by_topology(skeleton: Skeleton) -> dict[str, int]:
    """End effectors from the hierarchy alone: the pelvis is the first joint with three or more child branches, its
    two smallest branches are the legs and the largest the spine; the spine's first three-way branch is the chest,
    whose branch with the shortest reach is the neck/head and the other two the arms. Left and right come from
    the rest pose: up = pelvis -> head, forward = the feet's last bones, left = up x forward."""
    rest = skeleton.rest_positions().astype(np.float64)
    error = ValueError(
        f"skeleton {skeleton.name!r}: cannot find legs, spine and arms (needs a pelvis with two leg branches and a "
        "spine that branches into a head and two arms); name the joints (e.g. LeftFoot, RightHand, Head)"
    )
    pelvis = _branch(skeleton, 0)
    if pelvis is None:
        raise error
    branches = sorted(skeleton.children(pelvis), key=lambda c: len(_subtree(skeleton, c)))
    spine_start = branches[-1]
    feet = [_deepest_leaf(skeleton, c, rest) for c in branches[:2]]
    chest = _branch(skeleton, spine_start)
    if chest is None:
        raise error
    tips = [_deepest_leaf(skeleton, c, rest) for c in skeleton.children(chest)]
    reach = [float(np.linalg.norm(rest[t] - rest[chest])) for t in tips]
    order = np.argsort(reach)
    head, hands = tips[order[0]], [tips[order[-1]], tips[order[-2]]]
    up = rest[head] - rest[pelvis]
    forward = sum(rest[f] - rest[skeleton.parents[f]] for f in feet)
    forward = forward - up * (forward @ up) / max(up @ up, 1e-12)
    left = np.cross(up, forward)
    if np.linalg.norm(left) < 1e-9:
        left = np.array([1.0, 0.0, 0.0])

    def side(j: int) -> float:
        return float((rest[j] - rest[pelvis]) @ left)

    left_foot, right_foot = sorted(feet, key=side, reverse=True)
    left_hand, right_hand = sorted(hands, key=side, reverse=True)
    return {"right_foot": right_foot, "left_foot": left_foot, "right_hand": right_hand, "left_hand": left_hand,
            "head": head}  # fmt: skip


def _chain_weights(skeleton: Skeleton, chain: tuple[int, ...], rest: np.ndarray) -> np.ndarray:
    """``(16, J)`` weights placing 16 points evenly along the chain's rest-pose arc length."""
    weights = np.zeros((POINTS_PER_PART, skeleton.num_joints), dtype=np.float64)
    if len(chain) == 1:
        weights[:, chain[0]] = 1.0
        return weights
    segment = np.linalg.norm(np.diff(rest[list(chain)], axis=0), axis=1)
    if segment.sum() <= 0:
        segment = np.ones_like(segment)
    cumulative = np.concatenate([[0.0], np.cumsum(segment)])
    for k, s in enumerate(np.linspace(0.0, cumulative[-1], POINTS_PER_PART)):
        i = int(np.clip(np.searchsorted(cumulative, s, side="right") - 1, 0, len(chain) - 2))
        span = cumulative[i + 1] - cumulative[i]
        t = 0.0 if span <= 0 else float(np.clip((s - cumulative[i]) / span, 0.0, 1.0))
        weights[k, chain[i]] += 1.0 - t
        weights[k, chain[i + 1]] += t
    return weights


def _chains(skeleton: Skeleton, effectors: dict[str, int]) -> tuple[tuple[int, ...], ...]:
    """Tree paths pelvis -> feet / head and chest -> hands. Raises ``ValueError`` when they are not paths."""
    pelvis = _lowest_common_ancestor(skeleton, effectors["left_foot"], effectors["right_foot"])
    chest = _lowest_common_ancestor(skeleton, effectors["left_hand"], effectors["right_hand"])
    return (
        _path(skeleton, pelvis, effectors["right_foot"]),
        _path(skeleton, pelvis, effectors["left_foot"]),
        _path(skeleton, pelvis, effectors["head"]),
        _path(skeleton, chest, effectors["right_hand"]),
        _path(skeleton, chest, effectors["left_hand"]),
    )


def body_parts(skeleton: Skeleton) -> BodyParts:
    """The five body-part chains of ``skeleton`` and the joints -> 80 points map.

    Joint names are tried first; when they do not identify the five end effectors, or the named joints do not form
    tree paths from the pelvis and chest, the topology fallback is used.

    Raises:
        ValueError: when neither the joint names nor the topology identify two legs, a spine and two arms, or the
            rest pose has zero-length legs and spine.
    """
    chains, method = None, "names"
    effectors = _effectors_by_name(skeleton)
    if effectors is not None:
        try:
            chains = _chains(skeleton, effectors)
        except ValueError:
            chains = None
    if chains is None:
        chains, method = _chains(skeleton, _effectors_by_topology(skeleton)), "topology"
    rest = skeleton.rest_positions().astype(np.float64)
    weights = np.concatenate([_chain_weights(skeleton, c, rest) for c in chains]).astype(np.float32)

    def arc(chain: tuple[int, ...]) -> float:
        return float(np.linalg.norm(np.diff(rest[list(chain)], axis=0), axis=1).sum()) if len(chain) > 1 else 0.0

    height = arc(chains[2]) + 0.5 * (arc(chains[0]) + arc(chains[1]))
    if not height > 0:
        raise ValueError(f"skeleton {skeleton.name!r}: zero-length legs and spine in the rest pose")
    return BodyParts(chains=chains, weights=weights, height=height, method=method)


def joints_to_points(positions: np.ndarray, parts: BodyParts) -> np.ndarray:
    """Map joint positions ``(T, J, 3)`` to body-part points ``(T, 80, 3)`` float32 (same units)."""
    positions = np.asarray(positions, dtype=np.float32)
    if positions.ndim != 3 or positions.shape[1] != parts.weights.shape[1]:
        raise ValueError(f"positions must be (T, {parts.weights.shape[1]}, 3), got {positions.shape}")
    return np.einsum("pj,tjc->tpc", parts.weights, positions).astype(np.float32)
