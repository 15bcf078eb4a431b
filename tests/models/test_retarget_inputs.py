"""Retargeting inputs: joint mapping tables, explicit mappings, target rigs, COCO-13 2D lifting, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.motion import Motion, get_skeleton, load_bvh
from models.motion.joint_mapping import (
    auto_mapping,
    canonical_names,
    load_mapping_file,
    normalize_name,
    resolve_mapping,
)
from models.motion.lift2d import lift_coco13
from models.motion.retarget import TargetRig, retarget
from models.motion.skeleton import COCO13_NAMES

BANDAI_WALK = "bandai_namco_motion_dataset1/data/dataset-1_walk_normal_001.bvh"
RIGIFY = ["DEF-spine", "DEF-spine.001", "DEF-spine.002", "DEF-spine.003", "DEF-spine.004", "DEF-spine.006",
          "DEF-shoulder.L", "DEF-upper_arm.L", "DEF-upper_arm.L.001", "DEF-forearm.L", "DEF-hand.L", "DEF-thigh.L",
          "DEF-shin.L", "DEF-foot.L", "DEF-toe.L"]  # fmt: skip


@pytest.fixture(scope="module")
def bandai_walk(shared_data: Path):
    return load_bvh(shared_data / BANDAI_WALK)


def test_name_normalisation_and_conventions(shared_data: Path):
    assert normalize_name("mixamorig:LeftArm") == normalize_name("mixamorig1:LeftArm") == "leftarm"
    assert normalize_name("DEF-upper_arm.L") == "upperarml"
    convention, table = canonical_names(RIGIFY)
    assert convention == "rigify"
    assert table["pelvis"] == "DEF-spine" and table["left_shoulder"] == "DEF-upper_arm.L"
    assert "DEF-upper_arm.L.001" not in table.values()  # twist segments stay unmapped (kept at rest)
    with_controls = ["shoulder.L", "upper_arm.L", "hand_ik.L", *RIGIFY]  # Rigify's control bones share the names
    assert canonical_names(with_controls)[1]["left_collar"] == "DEF-shoulder.L"
    cmu = load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh").skeleton.joint_names
    assert canonical_names(cmu)[0] == "cmu"
    assert canonical_names(get_skeleton("kit21").joint_names)[0] == "kit"
    assert canonical_names(COCO13_NAMES)[0] == "coco"
    assert canonical_names(["Bip01 Pelvis", "Bip01 L Thigh", "Bip01 L Calf", "Bip01 L UpperArm"])[0] == "biped"


def test_same_spelling_with_different_roles_does_not_map(shared_data: Path):
    """Mixamo's LeftShoulder is a clavicle; CMU's is the shoulder joint: only roles map, not spellings."""
    cmu = load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh").skeleton.joint_names
    mixamo = ["mixamorig:Hips", "mixamorig:LeftShoulder", "mixamorig:LeftArm", "mixamorig:LeftForeArm",
              "mixamorig:LeftUpLeg", "mixamorig:LeftLeg"]  # fmt: skip
    mapping = auto_mapping(cmu, mixamo)
    assert mapping["mixamorig:LeftArm"] == "LeftShoulder"
    assert "mixamorig:LeftShoulder" not in mapping


def test_explicit_mapping_overrides_and_unmaps(bandai_walk, tmp_path: Path):
    smpl = get_skeleton("smpl24").joint_names
    names = bandai_walk.skeleton.joint_names
    mapping = resolve_mapping(names, smpl, {"spine2": "Chest", "spine3": None})
    assert mapping["spine2"] == "Chest" and "spine3" not in mapping and mapping["pelvis"] == "Hips"
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"mapping": {"spine2": "Chest", "head": None}}))
    assert load_mapping_file(path) == {"spine2": "Chest", "head": None}
    result = retarget(bandai_walk, "smpl24", mapping=load_mapping_file(path))
    assert "head" not in result.mapping and result.mapping["spine2"] == "Chest"
    # Unmapped joints keep their rest pose relative to the parent: the head stays aligned with the neck.
    rotations = result.motion.rotations[:, get_skeleton("smpl24").index("head")]
    np.testing.assert_allclose(np.abs(rotations[:, 0]), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not a JSON mapping"), ('["a", "b"]', "expected a JSON object"), ('{"a": 3}', "expected a JSON")],
)
def test_bad_mapping_files(tmp_path: Path, content: str, message: str):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_mapping_file(path)
    with pytest.raises(FileNotFoundError):
        load_mapping_file(tmp_path / "missing.json")


def test_bad_input_gives_clear_errors(bandai_walk):
    with pytest.raises(ValueError, match="unknown target 'smpl99'"):
        retarget(bandai_walk, "smpl99")
    with pytest.raises(ValueError, match=r"missing bones.*\['no_such_bone'\].*\['Tail'\]"):
        retarget(bandai_walk, "smpl24", mapping={"no_such_bone": "Hips", "head": "Tail"})
    nan = Motion(bandai_walk.skeleton, bandai_walk.fps, bandai_walk.positions.copy())
    nan.positions[5, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        retarget(nan, "smpl24")
    with pytest.raises(ValueError, match="zero frames"):
        Motion(bandai_walk.skeleton, 30.0, np.zeros((0, bandai_walk.skeleton.num_joints, 3)))
    empty = Motion(bandai_walk.skeleton, bandai_walk.fps, bandai_walk.positions[:1])
    empty.positions = empty.positions[:0]
    with pytest.raises(ValueError, match="zero frames"):
        retarget(empty, "smpl24")
    with pytest.raises(ValueError, match="root must be one of"):
        retarget(bandai_walk, "smpl24", root="orbit")
    with pytest.raises(ValueError, match="smoothing"):
        retarget(bandai_walk, "smpl24", smoothing=-1.0)
    with pytest.raises(TypeError, match="target must be"):
        retarget(bandai_walk, 42)
    other = get_skeleton("smpl24")
    unrelated = TargetRig.from_skeleton(
        type(other)("robot", tuple(f"part{i}" for i in range(3)), (-1, 0, 1), np.eye(3, dtype=np.float32))
    )
    with pytest.raises(ValueError, match="no joint of the target maps"):
        retarget(bandai_walk, unrelated)


def test_target_rig_dict_round_trip_and_validation():
    rig = TargetRig.from_skeleton(get_skeleton("kit21"))
    again = TargetRig.from_dict(json.loads(json.dumps(rig.to_dict())))
    assert again.joint_names == rig.joint_names and np.allclose(again.rest_world, rig.rest_world)
    from_skeleton_dict = TargetRig.from_dict(get_skeleton("kit21").to_dict())
    assert np.allclose(from_skeleton_dict.rest_world, rig.rest_world, atol=1e-6)
    bad = rig.to_dict()
    bad["rest_world"][3][0][0] = 2.0
    with pytest.raises(ValueError, match="rigid"):
        TargetRig.from_dict(bad)
    with pytest.raises(ValueError, match="rest_world"):
        TargetRig.from_dict({"joint_names": ["a"], "parents": [-1]})
    wire = rig.to_dict()
    array = np.asarray(wire["rest_world"], dtype="<f4")
    import base64

    wire["rest_world"] = {"dtype": "float32", "shape": list(array.shape), "data": base64.b64encode(array).decode()}
    assert np.allclose(TargetRig.from_dict(wire).rest_world, rig.rest_world, atol=1e-6)


def _conductor_2d(motion: Motion) -> Motion:
    """A COCO-13 image-keypoint motion seen from the front, made from a 3D Bandai clip (orthographic camera)."""
    skel = motion.skeleton
    pos = motion.positions.astype(np.float64)
    head = pos[:, skel.index("Head")]
    source = {
        "left_shoulder": "UpperArm_L", "right_shoulder": "UpperArm_R", "left_elbow": "LowerArm_L",
        "right_elbow": "LowerArm_R", "left_wrist": "Hand_L", "right_wrist": "Hand_R", "left_hip": "UpperLeg_L",
        "right_hip": "UpperLeg_R",
    }  # fmt: skip
    face = {"nose": (0.0, 0.0), "left_eye": (0.03, 0.03), "right_eye": (-0.03, 0.03), "left_ear": (0.07, 0.0),
            "right_ear": (-0.07, 0.0)}  # fmt: skip
    points = np.zeros((motion.num_frames, 13, 3))
    for i, name in enumerate(COCO13_NAMES):
        points[:, i] = pos[:, skel.index(source[name])] if name in source else head + [*face[name], 0.0]
    hips = 0.5 * (points[:, 11] + points[:, 12])
    image = np.stack([0.5 + 0.5 * (points[..., 0] - hips[:, None, 0]),
                      0.75 - 0.5 * (points[..., 1] - hips[:, None, 1])], axis=-1)  # fmt: skip
    return Motion(get_skeleton("coco13"), motion.fps, image.astype(np.float32))


def test_lift_coco13_scale_and_depth(bandai_walk):
    conductor = _conductor_2d(bandai_walk)
    lifted = lift_coco13(conductor)
    names = lifted.skeleton.joint_names
    width = np.linalg.norm(lifted.positions[:, names.index("left_shoulder")] - lifted.positions[:, names.index("right_shoulder")], axis=-1)  # noqa: E501
    assert np.median(width) == pytest.approx(0.38, rel=1e-3)
    elbow, shoulder = names.index("left_elbow"), names.index("left_shoulder")
    assert (lifted.positions[:, elbow, 2] >= lifted.positions[:, shoulder, 2] - 1e-6).all()  # arms in front
    assert lifted.positions[:, names.index("left_shoulder"), 0].mean() > 0  # subject's left is +X
    with pytest.raises(ValueError, match="coco13"):
        lift_coco13(bandai_walk)


@pytest.mark.parametrize("target", ["smpl24", "mixamo"])
def test_2d_conductor_drives_upper_body_only(bandai_walk, target):
    conductor = _conductor_2d(bandai_walk)
    if target == "mixamo":
        from retarget_rigs import mixamo_rig  # tests/models is on sys.path (pytest rootdir import mode)

        rig = mixamo_rig()
        names = {n.split(":")[1]: i for i, n in enumerate(rig.joint_names)}
        arm = (names["LeftArm"], names["LeftForeArm"], names["LeftHand"])
        legs = [names[n] for n in ("Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightLeg")]
        rest = rig.rest_positions
    else:
        rig = "smpl24"
        skel = get_skeleton("smpl24")
        arm = tuple(skel.index(n) for n in ("left_shoulder", "left_elbow", "left_wrist"))
        legs = [skel.index(n) for n in ("pelvis", "left_hip", "left_knee", "left_ankle", "right_knee")]
        rest = skel.rest_positions()
    result = retarget(conductor, rig)
    assert result.details["lifted_2d"] and not result.details["foot_lock"]
    positions = result.motion.positions
    np.testing.assert_allclose(positions[:, legs], np.broadcast_to(rest[legs], positions[:, legs].shape), atol=1e-5)
    # The arm's image-plane directions follow the 2D keypoints (y flipped to up).
    image = conductor.positions.astype(np.float64)
    for (a, b), (ia, ib) in zip(((arm[0], arm[1]), (arm[1], arm[2])), ((5, 7), (7, 9)), strict=True):
        got = positions[:, b, :2] - positions[:, a, :2]
        want = (image[:, ib] - image[:, ia]) * [1.0, -1.0]
        cos = (got * want).sum(-1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1))
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).mean() < 1.0
