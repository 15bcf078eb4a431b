"""Lift COCO-13 image keypoints (conductor motions) to 3D at human scale for retargeting.

A conductor motion is ``(T, 13, 2)`` normalised image coordinates (y down) of the upper body seen from the front
(ConductorMotion100, DESIGN §4). :func:`lift_coco13` places those points on a frontal plane in backend space
(+Y up, +Z towards the viewer, +X the subject's left) scaled so the median shoulder width is
(0.38 m, an adult's biacromial breadth; a back view, detected by the shoulders' order, is mirrored), then
an arm segment that looks shorter in the image than its 3D length must point out of the image plane, towards the
viewer (a conductor's arms are in front of the body): ``dz = sqrt(max(L^2 - l_2d^2, 0))``. The 3D segment length
``L`` is the larger of the anthropometric ratio to the shoulder width (upper arm 0.74, forearm 0.68) and the 98th
percentile of the segment's 2D length over the clip. Head points get fixed depths (nose 9 cm, eyes 7 cm in front
of the ears).

The result also carries three virtual joints that rigs need: ``pelvis`` (hip midpoint), ``spine3`` (shoulder
midpoint) and ``head`` (ear midpoint).
"""

from __future__ import annotations

import numpy as np

from models.motion.motion import Motion
from models.motion.skeleton import COCO13_NAMES, Skeleton

#: Joint names of the lifted skeleton (virtual joints first so parents precede children).
LIFTED_NAMES = ("pelvis", "spine3", "head") + COCO13_NAMES
_PARENT_NAMES = {
    "spine3": "pelvis", "head": "spine3", "nose": "head", "left_eye": "nose", "right_eye": "nose",
    "left_ear": "left_eye", "right_ear": "right_eye", "left_shoulder": "spine3", "right_shoulder": "spine3",
    "left_elbow": "left_shoulder", "right_elbow": "right_shoulder", "left_wrist": "left_elbow",
    "right_wrist": "right_elbow", "left_hip": "pelvis", "right_hip": "pelvis",
}  # fmt: skip
LIFTED_PARENTS = tuple(-1 if n == "pelvis" else LIFTED_NAMES.index(_PARENT_NAMES[n]) for n in LIFTED_NAMES)
#: 3D segment length as a fraction of the shoulder width (adult anthropometry: 0.28 m, 0.26 m vs 0.38 m).
UPPER_ARM_RATIO = 0.74
FOREARM_RATIO = 0.68
_FACE_DEPTH_M = {"nose": 0.09, "left_eye": 0.07, "right_eye": 0.07}


def lift_coco13(motion: Motion, *, shoulder_width_m: float = 0.38, hip_height_m: float = 0.95) -> Motion:
    """COCO-13 2D keypoints -> 3D positions on the lifted skeleton (see the module docstring).

    Args:
        motion: a ``coco13`` motion with positions ``(T, 13, 2)`` in normalised image coordinates (y down).
        shoulder_width_m: metres between the shoulders after lifting (median over the clip).
        hip_height_m: height of the clip's median hip midpoint above the floor (metres).

    Returns:
        A Motion on the 16-joint ``coco13_lifted`` skeleton, positions ``(T, 16, 3)`` float32 metres, same fps.

    Raises:
        ValueError: when the motion is not 2D COCO-13 or its shoulders coincide (no scale can be derived).
    """
    names = motion.skeleton.joint_names
    if not motion.is_2d or tuple(names) != COCO13_NAMES:
        raise ValueError(
            f"2D lifting needs a coco13 motion with (T, 13, 2) image keypoints, got skeleton "
            f"{motion.skeleton.name!r} with positions {motion.positions.shape}"
        )
    if not shoulder_width_m > 0:
        raise ValueError(f"shoulder_width_m must be positive, got {shoulder_width_m}")
    image = motion.positions.astype(np.float64)
    idx = {n: i for i, n in enumerate(COCO13_NAMES)}
    across = image[:, idx["left_shoulder"]] - image[:, idx["right_shoulder"]]
    width = float(np.median(np.linalg.norm(across, axis=-1)))
    if width < 1e-4:
        raise ValueError("cannot lift the 2D motion: the shoulders coincide in the image (no scale reference)")
    metres = shoulder_width_m / width
    # Facing the viewer, the subject's left shoulder is on the image's right; a back view mirrors x and depth.
    facing = 1.0 if np.median(across[:, 0]) >= 0 else -1.0
    hips_mid = 0.5 * (image[:, idx["left_hip"]] + image[:, idx["right_hip"]])
    origin = np.median(hips_mid, axis=0)
    frames = image.shape[0]
    out = np.zeros((frames, len(LIFTED_NAMES), 3))
    at = {n: LIFTED_NAMES.index(n) for n in LIFTED_NAMES}
    for name, i in idx.items():
        out[:, at[name], 0] = facing * (image[:, i, 0] - origin[0]) * metres
        out[:, at[name], 1] = (origin[1] - image[:, i, 1]) * metres + hip_height_m
        out[:, at[name], 2] = _FACE_DEPTH_M.get(name, 0.0)
    for side in ("left", "right"):
        shoulder, elbow, wrist = (at[f"{side}_{part}"] for part in ("shoulder", "elbow", "wrist"))
        for start, end, ratio in ((shoulder, elbow, UPPER_ARM_RATIO), (elbow, wrist, FOREARM_RATIO)):
            flat = np.linalg.norm(out[:, end, :2] - out[:, start, :2], axis=-1)
            length = max(ratio * shoulder_width_m, float(np.percentile(flat, 98)))
            depth = np.sqrt(np.maximum(length**2 - flat**2, 0.0))
            out[:, end, 2] = out[:, start, 2] + depth  # in front of the body (+Z) in either view
    out[:, at["pelvis"]] = 0.5 * (out[:, at["left_hip"]] + out[:, at["right_hip"]])
    out[:, at["spine3"]] = 0.5 * (out[:, at["left_shoulder"]] + out[:, at["right_shoulder"]])
    out[:, at["head"]] = 0.5 * (out[:, at["left_ear"]] + out[:, at["right_ear"]])
    rest = np.median(out, axis=0)
    offsets = rest.copy()
    for j, p in enumerate(LIFTED_PARENTS):
        if p >= 0:
            offsets[j] = rest[j] - rest[p]
    skeleton = Skeleton("coco13_lifted", LIFTED_NAMES, LIFTED_PARENTS, offsets.astype(np.float32))
    return Motion(
        skeleton=skeleton,
        fps=motion.fps,
        positions=out.astype(np.float32),
        metadata={**motion.metadata, "lifted_from": "coco13", "shoulder_width_m": shoulder_width_m},
    )
