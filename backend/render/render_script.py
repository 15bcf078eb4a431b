"""Render planned mannequin clips inside bpy (run by :mod:`backend.render.blender` with ``.venv-blender``'s Python).

Usage: ``python render_script.py JOB.npz``. The job holds ``meta`` (JSON: image size, engine, and per clip its output
folder, lens, colours, light and floor) and per clip ``matrices_i`` ``(F, S, 4, 4)`` (unit sphere -> ellipsoid world
matrices, Blender space), ``colors_i`` ``(S, 4)`` and ``camera_i`` ``(F, 4, 4)`` from
:func:`backend.render.mannequin.plan_clip`. One Blender process renders every clip of the job (start-up and shader
compilation are paid once): for each clip the scene is rebuilt, each frame's matrices are copied onto the segment
objects and the frame is rendered to ``<output>/NNNN.png``; a line ``clip <index> done`` on stdout follows each clip.
Workbench is the default engine (it renders on the CPU through Mesa's EGL). Only bpy, numpy and the standard
library are used here.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _clear(bpy) -> None:
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj, do_unlink=True)


def _scene(bpy, meta: dict):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = meta.get("engine", "BLENDER_WORKBENCH")
    scene.render.resolution_x = scene.render.resolution_y = int(meta["size"])
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.film_transparent = False
    if scene.world is None:
        scene.world = bpy.data.worlds.new("World")
    return scene


def _sphere_mesh(bpy):
    import bmesh

    mesh = bpy.data.meshes.new("unit_sphere")
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=16, v_segments=10, radius=1.0)
    bm.to_mesh(mesh)
    bm.free()
    for polygon in mesh.polygons:
        polygon.use_smooth = True
    return mesh


def render_job(job_path: str) -> int:
    import bpy
    import numpy as np
    from mathutils import Matrix  # a nested list assigned to matrix_world is read column-major: use Matrix(rows)

    job = np.load(job_path)
    meta = json.loads(str(job["meta"]))
    scene = _scene(bpy, meta)
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "OBJECT"
    available = {light.name for light in bpy.context.preferences.studio_lights if light.type == "STUDIO"}
    sphere = _sphere_mesh(bpy)
    plane = bpy.data.meshes.new("floor")
    plane.from_pydata([(-50, -50, 0), (50, -50, 0), (50, 50, 0), (-50, 50, 0)], [], [(0, 1, 2, 3)])
    camera_data = bpy.data.cameras.new("camera")
    camera_data.sensor_fit = "HORIZONTAL"
    camera_data.sensor_width = 36.0
    camera_data.clip_end = 500.0
    for index, clip in enumerate(meta["clips"]):
        started = time.perf_counter()
        _clear(bpy)
        matrices, colors = job[f"matrices_{index}"], job[f"colors_{index}"]
        objects = []
        for s in range(matrices.shape[1]):
            obj = bpy.data.objects.new(f"segment_{s}", sphere)
            obj.color = tuple(float(c) for c in colors[s])
            scene.collection.objects.link(obj)
            objects.append(obj)
        floor = bpy.data.objects.new("floor", plane)
        floor.location.z = float(clip["floor_z"])
        floor.color = (*clip["floor"], 1.0)
        scene.collection.objects.link(floor)
        camera = bpy.data.objects.new("camera", camera_data)
        camera_data.lens = float(clip["lens_mm"])
        cameras = job[f"camera_{index}"].astype(float).reshape(-1, 4, 4)  # per frame (or one for all)
        scene.collection.objects.link(camera)
        scene.camera = camera
        scene.world.color = tuple(clip["background"])
        if clip["light"] in available:
            shading.studio_light = clip["light"]
        shading.studiolight_rotate_z = float(clip["light_rotation"])
        shading.show_shadows = bool(clip["shadows"])
        if clip.get("view_transform"):  # e.g. "Standard" for thumbnails: colours as planned, no filmic roll-off
            scene.view_settings.view_transform = clip["view_transform"]
        os.makedirs(clip["output"], exist_ok=True)
        for frame in range(matrices.shape[0]):
            for s, obj in enumerate(objects):
                obj.matrix_world = Matrix(matrices[frame, s].astype(float).tolist())
            camera.matrix_world = Matrix(cameras[min(frame, len(cameras) - 1)].tolist())
            scene.render.filepath = os.path.join(clip["output"], f"{frame:04d}.png")
            bpy.ops.render.render(write_still=True)
        seconds = time.perf_counter() - started
        print(f"clip {index} done {matrices.shape[0]} frames {seconds:.3f} s", flush=True)
    return len(meta["clips"])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: render_script.py JOB.npz")
    render_job(sys.argv[1])
