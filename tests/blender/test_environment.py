"""The Blender tier runs in its own environment: real bpy 5.0.1 with numpy<2 and no torch/onnxruntime."""

import importlib.util

import bpy
import numpy


def test_bpy_is_the_real_blender_module():
    assert bpy.app.version >= (4, 2, 0)
    # A real scene graph: create an armature datablock and read it back.
    armature = bpy.data.armatures.new("baton_env_check")
    try:
        assert bpy.data.armatures["baton_env_check"] == armature
    finally:
        bpy.data.armatures.remove(armature)


def test_blender_env_keeps_numpy_below_2_and_has_no_torch():
    assert int(numpy.__version__.split(".")[0]) < 2
    assert importlib.util.find_spec("torch") is None
    assert importlib.util.find_spec("onnxruntime") is None
