"""The bone-mapping editor: auto-fill on a Mixamo rig, edit, presets, and what a job would send."""

from __future__ import annotations

import importlib
import json

import bpy
import pytest
from conftest import ADDON_MODULE
from test_addon_generate import build_mixamo_rig


def test_fill_edit_save_load_and_translate(addon, clean_scene, tmp_path):
    obj = build_mixamo_rig()
    settings = clean_scene.baton
    assert bpy.ops.baton.mapping_fill() == {"FINISHED"}
    rows = {item.bone: item.joint for item in settings.mapping}
    assert len(rows) == 24 and settings.mapping_armature == obj.name
    assert rows["mixamorig:Hips"] == "pelvis" and rows["mixamorig:LeftArm"] == "left_shoulder"
    assert rows["mixamorig:LeftShoulder"] == "left_collar"
    assert [item.bone for item in settings.mapping][0] == "mixamorig:Hips", "rows are listed root first"

    # The animator edits a row: the left forearm is driven by nothing.
    next(item for item in settings.mapping if item.bone == "mixamorig:LeftForeArm").joint = "NONE"
    preset = tmp_path / "mixamo.json"
    assert bpy.ops.baton.mapping_save(filepath=str(preset)) == {"FINISHED"}
    saved = json.loads(preset.read_text())
    assert saved["format"] == "baton.bone_mapping.v1" and "mixamorig:LeftForeArm" not in saved["mapping"]

    settings.mapping.clear()
    assert bpy.ops.baton.mapping_load(filepath=str(preset)) == {"FINISHED"}
    assert settings.use_mapping and len(settings.mapping) == 24
    loaded = {item.bone: item.joint for item in settings.mapping}
    assert loaded["mixamorig:LeftForeArm"] == "NONE" and loaded["mixamorig:RightForeArm"] == "right_elbow"

    pipelines = importlib.import_module(ADDON_MODULE + ".pipelines")
    remote = importlib.import_module(ADDON_MODULE + ".remote")
    sent = remote.source_mapping(pipelines.custom_mapping(bpy.context, obj), "coco13")
    assert sent["mixamorig:LeftArm"] == "left_shoulder" and sent["mixamorig:RightHand"] == "right_wrist"
    assert "mixamorig:LeftForeArm" not in sent and "mixamorig:Spine" not in sent  # COCO-13 has no spine


def test_preset_for_another_rig_is_refused(addon, clean_scene, tmp_path):
    preset = tmp_path / "other.json"
    preset.write_text(json.dumps({"format": "baton.bone_mapping.v1", "rig": "x", "mapping": {"Tail": "head"}}))
    build_mixamo_rig()
    with pytest.raises(RuntimeError, match="bones the armature does not have: \\['Tail'\\]"):
        bpy.ops.baton.mapping_load(filepath=str(preset))
    assert len(clean_scene.baton.mapping) == 0


def test_fill_needs_an_armature(addon, clean_scene):
    with pytest.raises(RuntimeError, match="select an armature first"):
        bpy.ops.baton.mapping_fill()


def test_rig_builders(addon, clean_scene):
    counts = {}
    for skeleton in ("SMPL24", "KIT21", "COCO13"):
        assert bpy.ops.baton.build_rig(skeleton=skeleton) == {"FINISHED"}
        obj = bpy.context.view_layer.objects.active
        counts[skeleton] = len(obj.data.bones)
    assert counts == {"SMPL24": 24, "KIT21": 21, "COCO13": 13}
