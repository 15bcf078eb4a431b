"""Build a conductor .blend inside bpy (run by :mod:`backend.conductor.blend` with ``.venv-blender``'s Python).

Usage: ``python blend_script.py JOB.npz`` with the repository on ``PYTHONPATH``. The job holds ``meta`` (JSON:
output path, fps, frame count, audio path, rigs with their rig dicts and x offsets) and per-rig ``rotations_i``
``(T, J, 4)`` and ``root_i`` ``(T, 3)`` arrays in backend space. The scene is set to the motion's fps with the
frame range 1..T, the music is packed into the file as a sound strip at frame 1, each rig becomes an armature
(``blender_addon.rigs.build_armature``) keyed with one Action (``blender_addon.apply.apply_motion``). The file is
saved to a temporary name and renamed into place. Only bpy, numpy and the standard library are used here.
"""

from __future__ import annotations

import json
import os
import sys


def _sound_strips(scene):
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return editor.strips if hasattr(editor, "strips") else editor.sequences  # Blender 5.0 / 4.2


def build(job_path: str) -> str:
    import bpy
    import numpy as np

    from blender_addon.apply import apply_motion
    from blender_addon.rigs import build_armature

    job = np.load(job_path)
    meta = json.loads(str(job["meta"]))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = int(round(meta["fps"]))
    scene.render.fps_base = 1.0
    scene.frame_start = 1
    scene.frame_end = int(meta["frames"])
    scene.frame_current = 1
    if meta.get("audio"):
        strip = _sound_strips(scene).new_sound("music", meta["audio"], channel=1, frame_start=1)
        strip.sound.pack()
        scene["baton_music"] = os.path.basename(meta["audio"])
    for index, entry in enumerate(meta["rigs"]):
        obj = build_armature(entry["rig"], entry["name"])
        obj.location.x = float(entry["offset_x"])
        rotations = job[f"rotations_{index}"]
        root = job[f"root_{index}"]
        apply_motion(obj, entry["rig"]["joint_names"], rotations, root, float(meta["fps"]), frame_start=1,
                     action_name=f"{entry['name']} conducting")  # fmt: skip
    output = meta["output"]
    tmp = output + ".tmp.blend"
    bpy.ops.wm.save_as_mainfile(filepath=tmp, check_existing=False, compress=True)
    os.replace(tmp, output)
    return output


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: blend_script.py JOB.npz")
    print(build(sys.argv[1]))
