"""The add-on's bpy-free bone-mapping tables on real rig naming conventions (runs in the backend environment)."""

from __future__ import annotations

import pytest

from blender_addon import mapping
from models.motion import get_skeleton, load_bvh
from models.motion.joint_mapping import CONVENTIONS, canonical_names

MIXAMO = [f"mixamorig:{n}" for n in (
    "Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand",
    "RightShoulder", "RightArm", "RightForeArm", "RightHand", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase",
    "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase")]  # fmt: skip
RIGIFY = ["DEF-spine", "DEF-spine.001", "DEF-spine.002", "DEF-spine.003", "DEF-spine.004", "DEF-spine.006",
          "DEF-shoulder.L", "DEF-upper_arm.L", "DEF-upper_arm.L.001", "DEF-forearm.L", "DEF-hand.L", "DEF-thigh.L",
          "DEF-shin.L", "DEF-foot.L", "DEF-toe.L", "DEF-thigh.R"]  # fmt: skip


def test_mixamo_names_map_to_the_joints_their_bones_start_at():
    table = mapping.auto_map(MIXAMO)
    assert mapping.detect_family(MIXAMO) == "mixamo"
    assert table["mixamorig:Hips"] == "pelvis"
    assert table["mixamorig:LeftShoulder"] == "left_collar"  # Mixamo's shoulder bone is the clavicle
    assert table["mixamorig:LeftArm"] == "left_shoulder"
    assert table["mixamorig:RightForeArm"] == "right_elbow"
    assert table["mixamorig:LeftUpLeg"] == "left_hip" and table["mixamorig:RightToeBase"] == "right_foot"
    assert all(table.values()), "every Mixamo body bone has a joint"
    mapping.validate_mapping(table, MIXAMO)


def test_rigify_deform_bones_and_twist_bones():
    table = mapping.auto_map(RIGIFY)
    assert mapping.detect_family(RIGIFY) == "rigify"
    assert table["DEF-spine"] == "pelvis" and table["DEF-spine.006"] == "head"
    assert table["DEF-upper_arm.L"] == "left_shoulder" and table["DEF-upper_arm.L.001"] == ""
    assert table["DEF-shin.L"] == "left_knee" and table["DEF-thigh.R"] == "right_hip"


def test_shared_bvh_rigs(shared_data):
    bandai = next((shared_data / "bandai_namco_motion_dataset1").rglob("*.bvh"))
    names = list(load_bvh(bandai).skeleton.joint_names)
    table = mapping.auto_map(names)
    assert mapping.detect_family(names) == "bandai"
    assert table["Shoulder_L"] == "left_collar" and table["UpperArm_L"] == "left_shoulder"
    assert table["LowerLeg_R"] == "right_knee" and table["Hips"] == "pelvis"

    cmu = list(load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh").skeleton.joint_names)
    table = mapping.auto_map(cmu)
    assert mapping.detect_family(cmu) == "cmu"
    assert table["LeftShoulder"] == "left_shoulder"  # CMU's shoulder is the upper arm (LeftCollar is the clavicle)
    assert table["LeftCollar"] == "left_collar" and table["RightAnkle"] == "right_ankle"


@pytest.mark.parametrize("name", ["smpl24", "kit21", "coco13"])
def test_builtin_skeletons_map_onto_themselves(name):
    skeleton = get_skeleton(name)
    table = mapping.auto_map(skeleton.joint_names)
    translated = mapping.to_source_joints({b: j for b, j in table.items() if j}, name)
    assert translated, name
    assert all(bone == joint for bone, joint in translated.items()), translated


def test_translation_to_source_skeletons_and_bad_input():
    table = mapping.auto_map(MIXAMO)
    to_coco = mapping.to_source_joints(table, "coco13")
    assert to_coco["mixamorig:LeftArm"] == "left_shoulder" and "mixamorig:Head" not in to_coco
    assert "mixamorig:Spine1" not in to_coco  # COCO-13 has no spine: that bone stays at rest
    assert mapping.to_source_joints(table, "kit21")["mixamorig:LeftForeArm"] == "LE"
    with pytest.raises(ValueError, match="unknown source skeleton 'bvh'"):
        mapping.to_source_joints(table, "bvh")
    with pytest.raises(ValueError, match="bones the armature does not have"):
        mapping.validate_mapping({"Tail": "head"}, MIXAMO)
    with pytest.raises(ValueError, match="more than one bone"):
        mapping.validate_mapping({"mixamorig:Hips": "pelvis", "mixamorig:Spine": "pelvis"}, MIXAMO)
    with pytest.raises(ValueError, match="unknown joints"):
        mapping.validate_mapping({"mixamorig:Hips": "hips"}, MIXAMO)


def test_presets_round_trip_atomically_and_reject_foreign_files(tmp_path):
    table = mapping.auto_map(MIXAMO)
    path = tmp_path / "presets" / "mixamo.json"
    mapping.save_preset(str(path), table, "Mixamo rig")
    assert mapping.load_preset(str(path)) == table
    assert [p.name for p in path.parent.iterdir()] == ["mixamo.json"], "no temporary file left behind"
    (tmp_path / "other.json").write_text('{"format": "something", "mapping": {}}')
    with pytest.raises(ValueError, match="not a Baton bone-mapping preset"):
        mapping.load_preset(str(tmp_path / "other.json"))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        mapping.load_preset(str(tmp_path / "broken.json"))


def test_tables_mirror_the_retargeting_solver():
    assert mapping.CONVENTIONS == CONVENTIONS
    assert set(mapping.CANONICAL_JOINTS) >= {c for table in CONVENTIONS.values() for c in table}


@pytest.mark.parametrize("names", [MIXAMO, RIGIFY, list(get_skeleton("kit21").joint_names),
                                   list(get_skeleton("coco13").joint_names)])  # fmt: skip
def test_auto_fill_agrees_with_the_solvers_automatic_mapping(names):
    _, theirs = canonical_names(names)
    mine = mapping.auto_map(names)
    assert {bone: joint for joint, bone in theirs.items()} == {b: j for b, j in mine.items() if j}
