"""Rig operators: build SMPL-24 / KIT-21 / COCO-13 armatures, and the bone-mapping editor (fill, save, load)."""

from __future__ import annotations

import os

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import mapping, pipelines
from .operators import _fail, _ok
from .properties import TARGET_ITEMS


class BATON_OT_build_rig(bpy.types.Operator):
    """Build a new armature with the rest pose of a built-in skeleton at the 3D cursor"""

    bl_idname = "baton.build_rig"
    bl_label = "Build Rig"
    bl_options = {"REGISTER", "UNDO"}

    skeleton: EnumProperty(name="Skeleton", items=[item for item in TARGET_ITEMS if item[0] != "ACTIVE"])

    def execute(self, context):
        try:
            obj = pipelines.build_builtin_rig(context, self.skeleton)
        except (ValueError, RuntimeError) as exc:
            return _fail(self, context, exc)
        return _ok(self, context, f"built {obj.name} ({len(obj.data.bones)} bones)")


def _armature_or_error(context) -> bpy.types.Object:
    obj = context.active_object
    if obj is None or obj.type != "ARMATURE":
        raise ValueError("select an armature first (the bone mapping belongs to the active armature)")
    return obj


def _bones_root_first(obj: bpy.types.Object) -> list[str]:
    bones = list(obj.data.bones)
    return [b.name for b in sorted(bones, key=lambda b: len(b.parent_recursive))]


def _store(settings, obj: bpy.types.Object, table: dict[str, str]) -> None:
    settings.mapping.clear()
    for bone in _bones_root_first(obj):
        item = settings.mapping.add()
        item.bone = bone
        item.joint = table.get(bone) or "NONE"
    settings.mapping_armature = obj.name
    settings.mapping_index = 0


def current_mapping(settings) -> dict[str, str]:
    """``{bone: canonical joint}`` of the editor (unmapped rows left out)."""
    return {item.bone: item.joint for item in settings.mapping if item.joint != "NONE"}


class BATON_OT_mapping_fill(bpy.types.Operator):
    """Fill the bone mapping of the active armature automatically from its bone names"""

    bl_idname = "baton.mapping_fill"
    bl_label = "Auto-Fill Mapping"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        try:
            obj = _armature_or_error(context)
        except ValueError as exc:
            return _fail(self, context, exc)
        names = _bones_root_first(obj)
        family = mapping.detect_family(names)
        table = mapping.auto_map(names, family)
        _store(context.scene.baton, obj, table)
        mapped = sum(1 for joint in table.values() if joint)
        return _ok(self, context, f"mapped {mapped} of {len(names)} bones of {obj.name} ({family} names)")


def preset_folder() -> str:
    """Where presets are saved by default: the extension's user folder (survives add-on updates)."""
    try:
        return bpy.utils.extension_path_user(__package__, path="mapping_presets", create=True)
    except (AttributeError, ValueError):  # legacy add-on install: no extension user folder
        return os.path.join(bpy.utils.user_resource("CONFIG"), "baton", "mapping_presets")


class BATON_OT_mapping_save(bpy.types.Operator, ExportHelper):
    """Save the bone mapping as a JSON preset"""

    bl_idname = "baton.mapping_save"
    bl_label = "Save Mapping Preset"
    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    def invoke(self, context, event):
        self.filepath = os.path.join(preset_folder(), (context.scene.baton.mapping_armature or "mapping") + ".json")
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        settings = context.scene.baton
        if not len(settings.mapping):
            return _fail(self, context, ValueError("the mapping is empty; Auto-Fill it from an armature first"))
        try:
            mapping.save_preset(self.filepath, current_mapping(settings), settings.mapping_armature)
        except (OSError, ValueError) as exc:
            return _fail(self, context, exc)
        return _ok(self, context, f"saved the bone mapping to {self.filepath}")


class BATON_OT_mapping_load(bpy.types.Operator, ImportHelper):
    """Load a JSON bone-mapping preset onto the active armature"""

    bl_idname = "baton.mapping_load"
    bl_label = "Load Mapping Preset"
    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    def invoke(self, context, event):
        self.filepath = preset_folder() + os.sep
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            obj = _armature_or_error(context)
            table = mapping.load_preset(self.filepath)
            mapping.validate_mapping(table, obj.data.bones.keys())
        except (OSError, ValueError) as exc:
            return _fail(self, context, exc)
        _store(context.scene.baton, obj, table)
        context.scene.baton.use_mapping = True
        return _ok(self, context, f"loaded {len(table)} bone assignments onto {obj.name}")


CLASSES = (BATON_OT_build_rig, BATON_OT_mapping_fill, BATON_OT_mapping_save, BATON_OT_mapping_load)
