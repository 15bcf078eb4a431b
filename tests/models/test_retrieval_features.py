"""Skeleton-normalised retrieval features: body-part chains on every skeleton, canonicalisation, invariances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from models.motion import Motion, Skeleton, get_skeleton, load_bvh
from models.retrieval.body_parts import NUM_POINTS, body_parts, joints_to_points
from models.retrieval.features import canonical_points, facing_direction, mirror_points, patch_image, tmr_frames

BANDAI_WALK = "bandai_namco_motion_dataset1/data/dataset-1_walk_normal_001.bvh"
BANDAI_WAVE = "bandai_namco_motion_dataset1/data/dataset-1_bye_normal_001.bvh"
CMU_WALK = "cmu_mocap_subject131_bvh/131_01.bvh"


def _chain_names(skeleton: Skeleton) -> list[list[str]]:
    parts = body_parts(skeleton)
    return [[skeleton.joint_names[j] for j in chain] for chain in parts.chains]


@pytest.mark.parametrize(
    ("skeleton_name", "ends"),
    [
        ("smpl22", ["right_foot", "left_foot", "head", "right_wrist", "left_wrist"]),
        ("smpl24", ["right_foot", "left_foot", "head", "right_hand", "left_hand"]),
        ("kit21", ["RF", "LF", "BUN", "RW", "LW"]),
    ],
)
def test_builtin_skeletons_map_to_five_chains(skeleton_name, ends):
    skeleton = get_skeleton(skeleton_name)
    chains = _chain_names(skeleton)
    assert [c[-1] for c in chains] == ends
    assert chains[0][0] == chains[1][0] == chains[2][0]  # legs and spine start at the pelvis
    assert chains[3][0] == chains[4][0]  # arms start at the chest
    weights = body_parts(skeleton).weights
    assert weights.shape == (NUM_POINTS, skeleton.num_joints)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)


def test_bvh_skeletons_map_by_name(shared_data):
    bandai = _chain_names(load_bvh(shared_data / BANDAI_WALK).skeleton)
    assert bandai[0] == ["Hips", "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"]
    assert bandai[4] == ["Chest", "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L"]
    cmu = _chain_names(load_bvh(shared_data / CMU_WALK).skeleton)
    assert cmu[1] == ["Hips", "LHipJoint", "LeftHip", "LeftKnee", "LeftAnkle", "LeftToe"]
    assert cmu[2][-1] == "Head" and cmu[3][-1] == "rhand"


def test_topology_fallback_matches_names(shared_data):
    skeleton = load_bvh(shared_data / BANDAI_WALK).skeleton
    anonymous = Skeleton("anonymous", tuple(f"j{i}" for i in range(skeleton.num_joints)), skeleton.parents,
                         skeleton.rest_offsets)  # fmt: skip
    by_name, by_topology = body_parts(skeleton), body_parts(anonymous)
    assert by_topology.method == "topology" and by_name.method == "names"
    assert by_topology.chains == by_name.chains


def _other_skeleton(motion: Motion, scale: float, yaw_deg: float, shift: np.ndarray) -> Motion:
    """The same performance on a different skeleton: Mixamo-style names, an extra mid-spine joint, finger leaves and
    an extra root, in another size, heading and place."""
    skel = motion.skeleton
    rename = {"Hips": "mixamorig:Hips", "Spine": "mixamorig:Spine", "Chest": "mixamorig:Spine2",
              "Neck": "mixamorig:Neck", "Head": "mixamorig:Head"}  # fmt: skip
    for side, full in (("_L", "Left"), ("_R", "Right")):
        rename |= {f"Shoulder{side}": f"mixamorig:{full}Shoulder", f"UpperArm{side}": f"mixamorig:{full}Arm",
                   f"LowerArm{side}": f"mixamorig:{full}ForeArm", f"Hand{side}": f"mixamorig:{full}Hand",
                   f"UpperLeg{side}": f"mixamorig:{full}UpLeg", f"LowerLeg{side}": f"mixamorig:{full}Leg",
                   f"Foot{side}": f"mixamorig:{full}Foot", f"Toes{side}": f"mixamorig:{full}ToeBase"}  # fmt: skip
    names, parents, positions = [], [], []
    old_to_new: dict[int, int] = {}
    rotation = Rotation.from_euler("y", yaw_deg, degrees=True).as_matrix().astype(np.float32)
    world = (motion.positions @ rotation.T) * scale + shift
    rest = skel.rest_positions()
    rest_new = []
    for j, name in enumerate(skel.joint_names):
        parent = skel.parents[j]
        if name == "Chest":  # insert a mid-spine joint halfway between Spine and Chest
            names.append("mixamorig:Spine1")
            parents.append(old_to_new[parent])
            positions.append(0.5 * (world[:, parent] + world[:, j]))
            rest_new.append(0.5 * (rest[parent] + rest[j]) * scale)
            parent_new = len(names) - 1
        else:
            parent_new = -1 if parent < 0 else old_to_new[parent]
        old_to_new[j] = len(names)
        names.append(rename.get(name, name))
        parents.append(parent_new)
        positions.append(world[:, j])
        rest_new.append(rest[j] * scale)
        if name.startswith("Hand"):  # finger leaves must be ignored
            for finger in ("Index1", "Thumb1"):
                names.append(f"mixamorig:{'Left' if name.endswith('_L') else 'Right'}Hand{finger}")
                parents.append(old_to_new[j])
                positions.append(world[:, j] + np.float32(0.05 * scale))
                rest_new.append(rest[j] * scale + 0.05 * scale)
    rest_new = np.asarray(rest_new, np.float32)
    offsets = rest_new.copy()
    for j, p in enumerate(parents):
        if p >= 0:
            offsets[j] = rest_new[j] - rest_new[p]
    skeleton = Skeleton("mixamo-like", tuple(names), tuple(parents), offsets)
    return Motion(skeleton, motion.fps, np.stack(positions, axis=1))


def test_same_motion_on_two_skeletons_gives_the_same_features(shared_data):
    motion = load_bvh(shared_data / BANDAI_WALK)
    other = _other_skeleton(motion, scale=1.15, yaw_deg=70.0, shift=np.array([2.0, 0.3, -1.0], np.float32))
    assert other.skeleton.num_joints == motion.skeleton.num_joints + 5
    a, b = canonical_points(motion), canonical_points(other)
    assert a.shape == b.shape == (round(motion.num_frames / motion.fps * 20), NUM_POINTS, 3)
    assert np.abs(a - b).max() < 0.02  # body heights
    # ... while a different motion on the same skeleton differs clearly.
    wave = canonical_points(load_bvh(shared_data / BANDAI_WAVE))
    frames = min(len(a), len(wave))
    assert np.abs(a[:frames] - wave[:frames]).mean() > 10 * np.abs(a - b).mean()


def test_canonical_frame_faces_forward_from_the_origin(shared_data):
    motion = load_bvh(shared_data / CMU_WALK)
    turned = Motion(motion.skeleton, motion.fps, motion.positions @ Rotation.from_euler("y", 130, degrees=True)
                    .as_matrix().T.astype(np.float32) + np.float32(3.0))  # fmt: skip
    points = canonical_points(turned, fps=30)
    np.testing.assert_allclose(facing_direction(points[:1])[0], [0, 0, 1], atol=1e-5)
    np.testing.assert_allclose(points[0, 32, [0, 2]], 0.0, atol=1e-6)  # pelvis over the origin
    feet = np.concatenate([points[:, :16, 1], points[:, 16:32, 1]], axis=1)
    assert abs(feet.min()) < 1e-6  # floor at y = 0
    assert 0.5 < points[:, 32, 1].mean() < 0.75  # pelvis height in body heights
    np.testing.assert_allclose(points, canonical_points(motion, fps=30), atol=1e-4)


def test_mirror_and_derived_inputs(shared_data):
    points = canonical_points(load_bvh(shared_data / BANDAI_WAVE))
    mirrored = mirror_points(points)
    np.testing.assert_allclose(mirror_points(mirrored), points)
    np.testing.assert_allclose(mirrored[:, 48:64, 0], -points[:, 64:80, 0])  # right arm <- mirrored left arm
    frames = tmr_frames(points, 20.0)
    assert frames.shape == (len(points), 246) and frames.dtype == np.float32
    image = patch_image(points, 64)
    assert image.shape == (3, 64, NUM_POINTS)
    np.testing.assert_array_equal(image[:, 0], points[(len(points) - 64) // 2].T)


def test_bad_inputs_are_rejected():
    coco = get_skeleton("coco13")
    with pytest.raises(ValueError, match="3D motion"):
        canonical_points(Motion(coco, 30.0, np.zeros((4, 13, 2), np.float32)))
    with pytest.raises(TypeError):
        canonical_points(np.zeros((4, 22, 3)))
    with pytest.raises(ValueError, match="positions must be"):
        joints_to_points(np.zeros((4, 5, 3)), body_parts(get_skeleton("smpl22")))
    chain = Skeleton("stick", ("a", "b", "c"), (-1, 0, 1), np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="cannot find legs, spine and arms"):
        body_parts(chain)
