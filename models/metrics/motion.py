"""Motion metrics for retargeting: MPJPE, bone-direction error and foot skate.

Units: positions in metres (backend space, +Y up); MPJPE in millimetres, angles in degrees, skate in cm/frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from models.motion.motion import Motion

UP_AXIS = 1


def _positions(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"{what} must be (T, J, 3) positions, got {array.shape}")
    return array


def mpjpe_mm(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Mean per-joint position error in millimetres: mean over frames and joints of ``|p - r|``.

    Args:
        predicted, reference: ``(T, J, 3)`` metres.

    Raises:
        ValueError: on shape mismatch or empty input.
    """
    p, r = _positions(predicted, "predicted"), _positions(reference, "reference")
    if p.shape != r.shape or p.size == 0:
        raise ValueError(f"MPJPE needs equal non-empty shapes, got {p.shape} and {r.shape}")
    return float(np.linalg.norm(p - r, axis=-1).mean() * 1000.0)


def nearest_mapped_ancestors(parents: Sequence[int], mapped: Sequence[bool]) -> list[int]:
    """For each joint the nearest ancestor whose ``mapped`` flag is set (``-1`` when none)."""
    out = []
    for j in range(len(parents)):
        p = parents[j]
        while p >= 0 and not mapped[p]:
            p = parents[p]
        out.append(p)
    return out


def bone_direction_error_deg(
    positions: np.ndarray,
    reference: np.ndarray,
    parents: Sequence[int],
    joints: Sequence[int] | None = None,
    min_length_m: float = 0.01,
) -> float:
    """Mean angle (degrees) between corresponding bones of two motions on the same skeleton.

    A bone runs from each compared joint to its nearest compared ancestor (so skipped joints do not break
    chains); bones shorter than ``min_length_m`` in the reference are ignored.

    Args:
        positions, reference: ``(T, J, 3)`` metres on the same skeleton.
        parents: ``J`` parent indices.
        joints: indices to compare (default all).

    Raises:
        ValueError: on shape mismatch or when no bone is long enough to compare.
    """
    p, r = _positions(positions, "positions"), _positions(reference, "reference")
    if p.shape != r.shape:
        raise ValueError(f"bone-direction error needs equal shapes, got {p.shape} and {r.shape}")
    compared = np.zeros(len(parents), bool)
    compared[list(range(len(parents))) if joints is None else list(joints)] = True
    ancestors = nearest_mapped_ancestors(parents, compared)
    angles = []
    for j in np.flatnonzero(compared):
        a = ancestors[j]
        if a < 0:
            continue
        bone_r, bone_p = r[:, j] - r[:, a], p[:, j] - p[:, a]
        len_r, len_p = np.linalg.norm(bone_r, axis=-1), np.linalg.norm(bone_p, axis=-1)
        valid = (len_r > min_length_m) & (len_p > 1e-9)
        if not valid.any():
            continue
        cos = np.einsum("ti,ti->t", bone_r[valid], bone_p[valid]) / (len_r[valid] * len_p[valid])
        angles.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    if not angles:
        raise ValueError("no bone long enough to compare directions")
    return float(np.concatenate(angles).mean())


def foot_skate_cm(positions: np.ndarray, contacts: np.ndarray) -> float:
    """Foot skate: mean horizontal slide (cm per frame) of foot joints while they are in contact.

    A frame step ``t -> t+1`` of foot ``f`` counts when the foot is in contact on both frames; the slide is the
    horizontal (x, z) distance it moved. Returns 0.0 when no step is in contact.

    Args:
        positions: ``(T, F, 3)`` foot-joint positions in metres.
        contacts: ``(T, F)`` booleans.

    Raises:
        ValueError: on shape mismatch.
    """
    pos = _positions(positions, "positions")
    contacts = np.asarray(contacts, dtype=bool)
    if contacts.shape != pos.shape[:2]:
        raise ValueError(f"contacts must be {pos.shape[:2]} to match positions, got {contacts.shape}")
    if pos.shape[0] < 2:
        return 0.0
    both = contacts[1:] & contacts[:-1]
    if not both.any():
        return 0.0
    step = pos[1:] - pos[:-1]
    step[..., UP_AXIS] = 0.0
    return float(np.linalg.norm(step, axis=-1)[both].mean() * 100.0)


def mpjpe_in_target_proportions_mm(target: Motion, source: Motion, mapping: Mapping[str, str]) -> float:
    """MPJPE (mm) between a retargeted motion and the source's pose rebuilt in the target's proportions.

    The reference is built down the target's tree over mapped joints, from the target's first mapped joint (its
    pelvis, taken from the retargeted motion). A mapped joint ``j`` whose nearest mapped ancestor ``a`` has only
    ``j`` as mapped descendant goes to ``ref[a] + |rest(j) - rest(a)| * unit(src[m(j)] - src[m(a)])``: the
    source's bone direction at the target's bone length. Where ``a`` branches (pelvis, chest) the rest layouts of
    two rigs differ (hip joints lower or higher, collars nearer the neck), so the branch is placed rigidly:
    ``ref[a] + R_a (rest(j) - rest(a))`` with ``R_a`` the least-squares rotation (Wahba) of the target's rest
    branch directions onto the source's. Positions of the retargeted motion come from FK on the target, so the
    error measures the solver's direction errors, foot-lock corrections and FK consistency; mean over mapped joints.

    Raises:
        ValueError: when the motions differ in frame count, the mapping names unknown joints or is empty.
    """
    from models.motion.retarget_math import fit_rotation, normalize

    skel = target.skeleton
    if target.num_frames != source.num_frames:
        raise ValueError(f"frame counts differ: target {target.num_frames}, source {source.num_frames}")
    src_index = {n: i for i, n in enumerate(source.skeleton.joint_names)}
    mapped = [name in mapping for name in skel.joint_names]
    if not any(mapped):
        raise ValueError("the mapping maps no target joint")
    unknown = [s for s in mapping.values() if s not in src_index]
    if unknown:
        raise ValueError(f"mapping names source joints the source lacks: {unknown}")
    rest = skel.rest_positions().astype(np.float64)
    src = source.positions.astype(np.float64)
    out = target.positions.astype(np.float64)
    ancestors = nearest_mapped_ancestors(skel.parents, mapped)

    def src_of(j: int) -> np.ndarray:
        return src[:, src_index[mapping[skel.joint_names[j]]]]

    branch_rotation: dict[int, np.ndarray] = {}
    for a in set(ancestors) - {-1}:
        kids = [j for j in range(skel.num_joints) if mapped[j] and ancestors[j] == a]
        if len(kids) > 1:
            rest_dirs = normalize(rest[kids] - rest[a])[0]
            cur_dirs = normalize(np.stack([src_of(j) - src_of(a) for j in kids], axis=1))[0]
            weights = np.ones(cur_dirs.shape[:2])
            branch_rotation[a] = fit_rotation(rest_dirs, cur_dirs, weights)
    reference = out.copy()
    for j in range(skel.num_joints):
        a = ancestors[j]
        if not mapped[j] or a < 0:
            continue
        if a in branch_rotation:
            reference[:, j] = reference[:, a] + branch_rotation[a] @ (rest[j] - rest[a])
        else:
            unit = normalize(src_of(j) - src_of(a))[0]
            reference[:, j] = reference[:, a] + np.linalg.norm(rest[j] - rest[a]) * unit
    idx = np.flatnonzero(mapped)
    return mpjpe_mm(out[:, idx], reference[:, idx])
