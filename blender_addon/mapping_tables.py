"""Naming-convention tables mirrored from ``models.motion.joint_mapping.CONVENTIONS`` (no bpy, no backend import).

``{convention: {canonical joint: joint name in that convention}}``; the canonical vocabulary is the SMPL-24 joints
plus the COCO face points. ``tests/addon/test_mapping.py`` asserts these tables equal the backend's, so the add-on's
bone-mapping editor fills in exactly what the retargeting solver would choose by itself.
"""

CONVENTIONS: dict[str, dict[str, str]] = {
    "smpl": {
        "pelvis": "pelvis", "left_hip": "left_hip", "right_hip": "right_hip", "spine1": "spine1",
        "left_knee": "left_knee", "right_knee": "right_knee", "spine2": "spine2", "left_ankle": "left_ankle",
        "right_ankle": "right_ankle", "spine3": "spine3", "left_foot": "left_foot", "right_foot": "right_foot",
        "neck": "neck", "left_collar": "left_collar", "right_collar": "right_collar", "head": "head",
        "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder", "left_elbow": "left_elbow",
        "right_elbow": "right_elbow", "left_wrist": "left_wrist", "right_wrist": "right_wrist",
        "left_hand": "left_hand", "right_hand": "right_hand",
    },
    "smpl_blender": {
        "pelvis": "Pelvis", "spine1": "Spine1", "spine2": "Spine2", "spine3": "Spine3", "neck": "Neck",
        "head": "Head", "left_collar": "L_Collar", "right_collar": "R_Collar", "left_shoulder": "L_Shoulder",
        "right_shoulder": "R_Shoulder", "left_elbow": "L_Elbow", "right_elbow": "R_Elbow", "left_wrist": "L_Wrist",
        "right_wrist": "R_Wrist", "left_hand": "L_Hand", "right_hand": "R_Hand", "left_hip": "L_Hip",
        "right_hip": "R_Hip", "left_knee": "L_Knee", "right_knee": "R_Knee", "left_ankle": "L_Ankle",
        "right_ankle": "R_Ankle", "left_foot": "L_Foot", "right_foot": "R_Foot",
    },
    "kit": {
        "pelvis": "root", "spine1": "BP", "spine3": "BT", "neck": "BLN", "head": "BUN", "left_shoulder": "LS",
        "left_elbow": "LE", "left_wrist": "LW", "right_shoulder": "RS", "right_elbow": "RE", "right_wrist": "RW",
        "left_hip": "LH", "left_knee": "LK", "left_ankle": "LA", "left_foot": "LF", "right_hip": "RH",
        "right_knee": "RK", "right_ankle": "RA", "right_foot": "RF",
    },
    "coco": {
        "nose": "nose", "left_eye": "left_eye", "right_eye": "right_eye", "left_ear": "left_ear",
        "right_ear": "right_ear", "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder",
        "left_elbow": "left_elbow", "right_elbow": "right_elbow", "left_wrist": "left_wrist",
        "right_wrist": "right_wrist", "left_hip": "left_hip", "right_hip": "right_hip",
    },
    "coco_lifted": {
        "nose": "nose", "left_eye": "left_eye", "right_eye": "right_eye", "left_ear": "left_ear",
        "right_ear": "right_ear", "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder",
        "left_elbow": "left_elbow", "right_elbow": "right_elbow", "left_wrist": "left_wrist",
        "right_wrist": "right_wrist", "left_hip": "left_hip", "right_hip": "right_hip", "pelvis": "pelvis",
        "spine3": "spine3", "head": "head",
    },
    "mixamo": {
        "pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck", "head": "Head",
        "left_collar": "LeftShoulder", "right_collar": "RightShoulder", "left_shoulder": "LeftArm",
        "right_shoulder": "RightArm", "left_elbow": "LeftForeArm", "right_elbow": "RightForeArm",
        "left_wrist": "LeftHand", "right_wrist": "RightHand", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg",
        "left_knee": "LeftLeg", "right_knee": "RightLeg", "left_ankle": "LeftFoot", "right_ankle": "RightFoot",
        "left_foot": "LeftToeBase", "right_foot": "RightToeBase",
    },
    "unity": {
        "pelvis": "Hips", "spine1": "Spine", "spine2": "Chest", "spine3": "UpperChest", "neck": "Neck",
        "head": "Head", "left_collar": "LeftShoulder", "right_collar": "RightShoulder",
        "left_shoulder": "LeftUpperArm", "right_shoulder": "RightUpperArm", "left_elbow": "LeftLowerArm",
        "right_elbow": "RightLowerArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
        "left_hip": "LeftUpperLeg", "right_hip": "RightUpperLeg", "left_knee": "LeftLowerLeg",
        "right_knee": "RightLowerLeg", "left_ankle": "LeftFoot", "right_ankle": "RightFoot", "left_foot": "LeftToes",
        "right_foot": "RightToes",
    },
    "rigify": {
        "pelvis": "spine", "spine1": "spine.001", "spine2": "spine.002", "spine3": "spine.003", "neck": "spine.004",
        "head": "spine.006", "left_collar": "shoulder.L", "right_collar": "shoulder.R",
        "left_shoulder": "upper_arm.L", "right_shoulder": "upper_arm.R", "left_elbow": "forearm.L",
        "right_elbow": "forearm.R", "left_wrist": "hand.L", "right_wrist": "hand.R", "left_hip": "thigh.L",
        "right_hip": "thigh.R", "left_knee": "shin.L", "right_knee": "shin.R", "left_ankle": "foot.L",
        "right_ankle": "foot.R", "left_foot": "toe.L", "right_foot": "toe.R",
    },
    "bandai": {
        "pelvis": "Hips", "spine1": "Spine", "spine3": "Chest", "neck": "Neck", "head": "Head",
        "left_collar": "Shoulder_L", "right_collar": "Shoulder_R", "left_shoulder": "UpperArm_L",
        "right_shoulder": "UpperArm_R", "left_elbow": "LowerArm_L", "right_elbow": "LowerArm_R",
        "left_wrist": "Hand_L", "right_wrist": "Hand_R", "left_hip": "UpperLeg_L", "right_hip": "UpperLeg_R",
        "left_knee": "LowerLeg_L", "right_knee": "LowerLeg_R", "left_ankle": "Foot_L", "right_ankle": "Foot_R",
        "left_foot": "Toes_L", "right_foot": "Toes_R",
    },
    "cmu": {
        "pelvis": "Hips", "spine1": "Chest", "spine3": "Chest2", "neck": "Neck", "head": "Head",
        "left_shoulder": "LeftShoulder", "right_shoulder": "RightShoulder", "left_elbow": "LeftElbow",
        "right_elbow": "RightElbow", "left_wrist": "LeftWrist", "right_wrist": "RightWrist", "left_hand": "LFingers",
        "right_hand": "RFingers", "left_hip": "LeftHip", "right_hip": "RightHip", "left_knee": "LeftKnee",
        "right_knee": "RightKnee", "left_ankle": "LeftAnkle", "right_ankle": "RightAnkle", "left_foot": "LeftToe",
        "right_foot": "RightToe",
    },
    "biped": {
        "pelvis": "Bip01 Pelvis", "spine1": "Bip01 Spine", "spine2": "Bip01 Spine1", "spine3": "Bip01 Spine2",
        "neck": "Bip01 Neck", "head": "Bip01 Head", "left_collar": "Bip01 L Clavicle",
        "right_collar": "Bip01 R Clavicle", "left_shoulder": "Bip01 L UpperArm",
        "right_shoulder": "Bip01 R UpperArm", "left_elbow": "Bip01 L Forearm", "right_elbow": "Bip01 R Forearm",
        "left_wrist": "Bip01 L Hand", "right_wrist": "Bip01 R Hand", "left_hip": "Bip01 L Thigh",
        "right_hip": "Bip01 R Thigh", "left_knee": "Bip01 L Calf", "right_knee": "Bip01 R Calf",
        "left_ankle": "Bip01 L Foot", "right_ankle": "Bip01 R Foot", "left_foot": "Bip01 L Toe0",
        "right_foot": "Bip01 R Toe0",
    },
}  # fmt: skip
