"""Retargeting solver on real mocap (Bandai Namco dataset-1, CMU subject 131): accuracy, round trips, foot skate,
root modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from retarget_rigs import mixamo_rig  # tests/models is on sys.path (pytest rootdir import mode)

from models.metrics.motion import bone_direction_error_deg, mpjpe_in_target_proportions_mm, mpjpe_mm
from models.motion import forward_kinematics, get_skeleton, load_bvh
from models.motion.retarget import TargetRig, retarget

BANDAI = "bandai_namco_motion_dataset1/data"
CMU = "cmu_mocap_subject131_bvh"


@pytest.fixture(scope="module")
def bandai_walk(shared_data: Path):
    return load_bvh(shared_data / BANDAI / "dataset-1_walk_normal_001.bvh")


@pytest.fixture(scope="module")
def cmu_walk(shared_data: Path):
    return load_bvh(shared_data / CMU / "131_01.bvh")


def _compared(result, skeleton) -> list[int]:
    return [skeleton.index(name) for name in result.mapping]


def test_self_retarget_cmu_reproduces_positions(cmu_walk):
    result = retarget(cmu_walk, cmu_walk.skeleton, foot_lock=False)
    assert len(result.mapping) == cmu_walk.skeleton.num_joints
    assert mpjpe_mm(result.motion.positions, cmu_walk.positions) < 1.0


def test_self_retarget_bandai_reproduces_positions(bandai_walk):
    # Bandai's static joint_Root carries the hips through a per-frame translation channel; a rig has fixed bone
    # offsets, so the root joint itself is placed behind the hips and left out of the comparison.
    result = retarget(bandai_walk, bandai_walk.skeleton, foot_lock=False)
    body = slice(1, None)
    assert mpjpe_mm(result.motion.positions[:, body], bandai_walk.positions[:, body]) < 1.0


def test_self_retarget_smpl24_with_rotations_consistent(bandai_walk):
    on_smpl = retarget(bandai_walk, "smpl24").motion
    again = retarget(on_smpl, "smpl24", foot_lock=False)
    assert mpjpe_mm(again.motion.positions, on_smpl.positions) < 1.0
    # The local rotations and root translation reproduce the positions through the core's FK.
    fk, _ = forward_kinematics(on_smpl.skeleton, on_smpl.rotations, on_smpl.root_translation)
    assert mpjpe_mm(fk, on_smpl.positions) < 0.01


def test_bandai_to_smpl24_and_back_keeps_bone_directions(bandai_walk):
    there = retarget(bandai_walk, "smpl24")
    assert there.mapping["pelvis"] == "Hips" and there.mapping["left_shoulder"] == "UpperArm_L"
    back = retarget(there.motion, bandai_walk.skeleton, foot_lock=False)
    skeleton = bandai_walk.skeleton
    error = bone_direction_error_deg(
        back.motion.positions, bandai_walk.positions, skeleton.parents, _compared(back, skeleton)
    )
    assert error < 2.0
    # In the target's own proportions the pose is met closely (foot lock moves the legs a little).
    assert mpjpe_in_target_proportions_mm(there.motion, bandai_walk, there.mapping) < 10.0


def test_cmu_to_mixamo_rig_and_back_keeps_bone_directions(shared_data: Path):
    rig = mixamo_rig()
    for clip in ("131_01.bvh", "131_03.bvh"):
        source = load_bvh(shared_data / CMU / clip)
        there = retarget(source, rig)
        assert there.details["target_convention"] == "mixamo"
        assert there.mapping["mixamorig:LeftArm"] == "LeftShoulder"  # Mixamo's arm = CMU's shoulder joint
        assert "mixamorig:LeftShoulder" not in there.mapping  # CMU's collar is a zero-length bone
        back = retarget(there.motion, source.skeleton, foot_lock=False)
        error = bone_direction_error_deg(
            back.motion.positions, source.positions, source.skeleton.parents, _compared(back, source.skeleton)
        )
        assert error < 2.0, clip


def test_a_pose_rig_gets_the_same_pose_as_a_t_pose_rig(cmu_walk):
    """Rest-pose differences: an A-pose rig and a T-pose rig end with the same world bone directions."""
    a_pose = retarget(cmu_walk, mixamo_rig(scale=1.0, arm_drop_deg=45.0), foot_lock=False).motion
    t_pose = retarget(cmu_walk, mixamo_rig(scale=1.0, arm_drop_deg=0.0, seed=3), foot_lock=False).motion
    arm = [a_pose.skeleton.index(f"mixamorig:{n}") for n in ("LeftArm", "LeftForeArm", "LeftHand")]
    assert np.abs(a_pose.positions[:, arm] - t_pose.positions[:, arm]).max() < 1e-4
    # ... while their local rotations differ by the rest-pose difference.
    assert np.abs(a_pose.rotations[:, arm[0]] - t_pose.rotations[:, arm[0]]).max() > 0.1


def test_bone_rotations_follow_the_rigs_bone_frames(cmu_walk):
    rig = mixamo_rig()
    result = retarget(cmu_walk, rig, foot_lock=False)
    from models.motion.rotations import quat_to_matrix

    bone = quat_to_matrix(result.bone_rotations())  # relative to each bone's rest frame B_j
    rest = rig.rest_rotations
    world = np.empty_like(bone)
    positions = np.empty(result.motion.positions.shape)
    for j, p in enumerate(rig.parents):  # Blender's rule: G_j = G_p B_p^T B_j Q_j
        if p < 0:
            world[:, j] = rest[j] @ bone[:, j]
            positions[:, j] = result.motion.root_translation
        else:
            world[:, j] = world[:, p] @ rest[p].T @ rest[j] @ bone[:, j]
            offset = rest[p].T @ (rig.rest_positions[j] - rig.rest_positions[p])
            positions[:, j] = positions[:, p] + world[:, p] @ offset
    assert mpjpe_mm(positions, result.motion.positions) < 0.01


def test_scale_by_leg_length_and_hip_height(bandai_walk):
    big = TargetRig.from_skeleton(get_skeleton("smpl24").scaled(1.5, name="giant"))
    normal = retarget(bandai_walk, "smpl24", foot_lock=False)
    giant = retarget(bandai_walk, big, foot_lock=False)
    assert giant.scale == pytest.approx(1.5 * normal.scale, rel=1e-4)
    # Standing hip height follows the rig's own legs, and travel scales with them (feet stay on the floor).
    hips_giant, hips_normal = giant.motion.positions[:, 0, 1], normal.motion.positions[:, 0, 1]
    assert np.median(hips_giant) == pytest.approx(1.5 * np.median(hips_normal))
    travel = np.ptp(giant.motion.positions[:, 0, 2]) / np.ptp(normal.motion.positions[:, 0, 2])
    assert travel == pytest.approx(1.5, rel=1e-3)
    rest_hips = get_skeleton("smpl24").rest_positions()[0, 1]
    assert abs(np.median(normal.motion.positions[:, 0, 1]) - rest_hips) < 0.08


def test_root_modes(bandai_walk):
    full = retarget(bandai_walk, "smpl24", root="full").motion.root_translation
    inplace = retarget(bandai_walk, "smpl24", root="inplace").motion.root_translation
    height = retarget(bandai_walk, "smpl24", root="height").motion.root_translation
    assert np.ptp(full[:, 2]) > 5.0  # the walk travels ~7 m along +Z
    assert np.ptp(inplace[:, 2]) < 0.3  # travel removed, sway kept
    assert np.ptp(inplace[:, 1]) > 0.01  # bobbing kept
    assert np.ptp(height[:, [0, 2]], axis=0).max() == 0.0
    np.testing.assert_allclose(height[:, 1], full[:, 1], atol=1e-6)


def test_foot_skate_on_bandai_walks_stays_within_source_plus_0_2(shared_data: Path):
    clips = sorted((shared_data / BANDAI).glob("dataset-1_walk_*.bvh"))
    assert len(clips) >= 30
    for path in clips:
        result = retarget(load_bvh(path), "smpl24")
        assert result.details["foot_lock"] and len(result.details["contact_joints"]) == 4
        assert result.foot_skate_after_cm <= result.foot_skate_before_cm + 0.2, path.name


@pytest.mark.slow
def test_foot_skate_on_bandai_dataset2_walks(bandai_dataset2_dir: Path):
    clips = sorted(bandai_dataset2_dir.rglob("dataset-2_walk*.bvh"))
    assert len(clips) > 500
    for path in clips[:: len(clips) // 24][:24]:  # an even spread over contents and styles
        result = retarget(load_bvh(path), "smpl24")
        assert result.foot_skate_after_cm <= result.foot_skate_before_cm + 0.2, path.name


def test_foot_lock_reduces_skate_against_no_lock(bandai_walk):
    locked = retarget(bandai_walk, "kit21")
    free = retarget(bandai_walk, "kit21", foot_lock=False)
    assert locked.foot_skate_after_cm < free.foot_skate_after_cm
    assert locked.foot_skate_before_cm == free.foot_skate_before_cm > 0


def test_smoothing_reduces_jitter(cmu_walk):
    raw = retarget(cmu_walk, "smpl24", foot_lock=False).motion.positions
    smooth = retarget(cmu_walk, "smpl24", foot_lock=False, smoothing=3.0).motion.positions

    def jerk(p):
        return np.abs(np.diff(p, n=3, axis=0)).mean()

    assert jerk(smooth) < 0.5 * jerk(raw)


def test_progress_stages(bandai_walk):
    from models.progress import Cancelled, Progress

    seen = []
    retarget(bandai_walk, "smpl24", progress=Progress(lambda f, s: seen.append((f, s))))
    assert [s for _, s in seen] == ["mapping", "solving", "feet", "done"] and seen[-1][0] == 1.0
    cancelled = Progress()
    cancelled.cancel()
    with pytest.raises(Cancelled):
        retarget(bandai_walk, "smpl24", progress=cancelled)


def _off_hinge_deg(q: np.ndarray, hinge: np.ndarray) -> np.ndarray:
    """Angle (degrees) of the part of local rotations ``q (T, 4)`` that is not a rotation about ``hinge``."""
    about = np.concatenate([q[:, :1], (q[:, 1:] @ hinge)[:, None] * hinge], axis=1)
    about /= np.linalg.norm(about, axis=1, keepdims=True)
    cos_half = np.abs((q * about).sum(axis=1))  # |<q, twist>| = cos(swing / 2)
    return np.degrees(2 * np.arccos(np.clip(cos_half, 0.0, 1.0)))


@pytest.mark.parametrize("clip", [f"{CMU}/131_03.bvh", f"{BANDAI}/dataset-1_dance-short_normal_001.bvh"])
def test_knees_and_elbows_bend_as_hinges(shared_data: Path, clip):
    """Twist comes from the limb's bend plane, so knees and elbows rotate (almost) only about their hinge axis
    (knees bend backwards, elbows forwards in the T-pose rest; +Z is forward)."""
    result = retarget(load_bvh(shared_data / clip), "smpl24", foot_lock=False)
    skeleton = get_skeleton("smpl24")
    rest = skeleton.rest_positions().astype(np.float64)
    errors = {}
    for joint, child, forward in (("left_knee", "left_ankle", -1), ("right_knee", "right_ankle", -1),
                                  ("left_elbow", "left_wrist", 1), ("right_elbow", "right_wrist", 1)):  # fmt: skip
        bone = rest[skeleton.index(child)] - rest[skeleton.index(joint)]
        hinge = np.cross(bone / np.linalg.norm(bone), [0.0, 0.0, forward])
        q = result.motion.rotations[:, skeleton.index(joint)].astype(np.float64)
        errors[joint] = _off_hinge_deg(q, hinge / np.linalg.norm(hinge)).mean()
    assert max(errors["left_knee"], errors["right_knee"]) < 2.0, errors
    assert max(errors["left_elbow"], errors["right_elbow"]) < 5.0, errors


def test_source_rotations_reproduce_a_self_retarget(bandai_walk, cmu_walk):
    """Where both rest poses agree around a joint, the source's rotation channels give twist and leaf orientation:
    retargeting a skeleton onto itself then reproduces its local rotations, not only its positions."""
    from models.motion.rotations import quat_to_matrix

    def mean_angle_deg(a, b):
        relative = np.swapaxes(quat_to_matrix(a), -1, -2) @ quat_to_matrix(b)
        return np.degrees(np.arccos(np.clip((np.trace(relative, axis1=-2, axis2=-1) - 1) / 2, -1, 1))).mean()

    bandai = retarget(bandai_walk, bandai_walk.skeleton, foot_lock=False).motion
    assert mean_angle_deg(bandai.rotations[:, 1:], bandai_walk.rotations[:, 1:]) < 0.1
    cmu = retarget(cmu_walk, cmu_walk.skeleton, foot_lock=False).motion
    assert mean_angle_deg(cmu.rotations, cmu_walk.rotations) < 3.0
    positions_only = retarget(cmu_walk, cmu_walk.skeleton, foot_lock=False, use_source_rotations=False).motion
    assert mean_angle_deg(positions_only.rotations, cmu_walk.rotations) > 5.0
    assert mpjpe_mm(positions_only.positions, cmu.positions) < 0.01  # rotations never move joints


def test_head_orientation_follows_the_source_where_rests_agree(cmu_walk):
    """CMU and SMPL-24 both stand upright with the head above the neck, so the head's turn comes from the source."""
    skeleton = get_skeleton("smpl24")
    source_world = forward_kinematics(cmu_walk.skeleton, cmu_walk.rotations, cmu_walk.root_translation)[1]
    names = cmu_walk.skeleton.joint_names
    wanted = source_world[:, names.index("Head")] @ np.swapaxes(source_world[:, names.index("Neck")], 1, 2)

    def head_error_deg(use: bool) -> float:
        motion = retarget(cmu_walk, "smpl24", foot_lock=False, use_source_rotations=use).motion
        world = forward_kinematics(skeleton, motion.rotations, motion.root_translation)[1]
        got = world[:, skeleton.index("head")] @ np.swapaxes(world[:, skeleton.index("neck")], 1, 2)
        cos = (np.trace(np.swapaxes(wanted, 1, 2) @ got, axis1=1, axis2=2) - 1) / 2
        return float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean())

    assert head_error_deg(True) < 0.5
    assert head_error_deg(False) > 2.0
