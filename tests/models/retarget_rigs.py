"""Test rigs for retargeting: a Mixamo-named rig built from a name table (A pose, other proportions, bone rolls)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from models.motion import get_skeleton
from models.motion.retarget import TargetRig

#: SMPL-24 joint -> Mixamo bone (without the ``mixamorig:`` namespace).
MIXAMO_NAMES = {
    "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": "Spine", "left_knee": "LeftLeg",
    "right_knee": "RightLeg", "spine2": "Spine1", "left_ankle": "LeftFoot", "right_ankle": "RightFoot",
    "spine3": "Spine2", "left_foot": "LeftToeBase", "right_foot": "RightToeBase", "neck": "Neck",
    "left_collar": "LeftShoulder", "right_collar": "RightShoulder", "head": "Head", "left_shoulder": "LeftArm",
    "right_shoulder": "RightArm", "left_elbow": "LeftForeArm", "right_elbow": "RightForeArm",
    "left_wrist": "LeftHand", "right_wrist": "RightHand", "left_hand": "LeftHandMiddle1",
    "right_hand": "RightHandMiddle1",
}  # fmt: skip


def mixamo_rig(scale: float = 1.12, arm_drop_deg: float = 45.0, seed: int = 0) -> TargetRig:
    """A Mixamo-named rig: SMPL-24's hierarchy scaled by ``scale``, arms lowered into an A pose by
    ``arm_drop_deg`` about each shoulder, every joint given a random rest frame (bone roll)."""
    skeleton = get_skeleton("smpl24")
    rest = skeleton.rest_positions().astype(np.float64) * scale
    names = list(skeleton.joint_names)
    for side, sign in (("left", -1.0), ("right", 1.0)):
        pivot = rest[names.index(f"{side}_shoulder")]
        turn = Rotation.from_euler("z", sign * arm_drop_deg, degrees=True)
        for part in ("elbow", "wrist", "hand"):
            j = names.index(f"{side}_{part}")
            rest[j] = pivot + turn.apply(rest[j] - pivot)
    frames = np.tile(np.eye(4), (len(names), 1, 1))
    frames[:, :3, :3] = Rotation.random(len(names), random_state=seed).as_matrix()
    frames[:, :3, 3] = rest
    return TargetRig([f"mixamorig:{MIXAMO_NAMES[n]}" for n in names], skeleton.parents, frames, name="mixamo_test")
