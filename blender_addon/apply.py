"""Write a retargeted motion onto an armature as ONE Action with bulk F-curves (bpy + numpy only).

Keys are written per F-curve with ``keyframe_points.add(count)`` and ``keyframe_points.foreach_set("co", ...)``
(one key per frame, Blender's default auto-clamped Bezier between them), which is orders of magnitude faster than
``keyframe_insert`` per key (``baton bench retarget`` measures the ratio). Blender 4.4+ / 5.x store F-curves in
layered, slotted actions (``action.layers[0].strips[0].channelbag(slot).fcurves``; Blender 5 removed
``Action.fcurves``); Blender 4.2 LTS uses the legacy ``action.fcurves``. Each bone is keyed in its own rotation mode:
quaternion, axis-angle or any Euler order. Nothing is changed when the input is invalid, and the whole write is a
single undo step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import rigs, space


def _check(obj, bone_names: Sequence[str], rotations, root_translation, fps: float) -> tuple[np.ndarray, ...]:
    if getattr(obj, "type", None) != "ARMATURE":
        raise ValueError(f"{getattr(obj, 'name', obj)!r} is not an armature; select an armature to apply motion to")
    rotations = np.asarray(rotations, dtype=np.float64)
    frames = rotations.shape[0] if rotations.ndim == 3 else 0
    if rotations.ndim != 3 or rotations.shape[1:] != (len(bone_names), 4):
        raise ValueError(f"rotations must be (T, {len(bone_names)}, 4) (w, x, y, z), got {rotations.shape}")
    if frames == 0:
        raise ValueError("the motion has zero frames; nothing to apply")
    if not np.isfinite(rotations).all():
        raise ValueError("rotations contain NaN or infinity")
    norms = np.linalg.norm(rotations, axis=-1)
    if (norms < 1e-6).any():
        raise ValueError("rotations contain zero quaternions")
    if root_translation is not None:
        root_translation = np.asarray(root_translation, dtype=np.float64)
        if root_translation.shape != (frames, 3):
            raise ValueError(f"root_translation must be ({frames}, 3), got {root_translation.shape}")
        if not np.isfinite(root_translation).all():
            raise ValueError("root_translation contains NaN or infinity")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    missing = [n for n in bone_names if n not in obj.pose.bones]
    if missing:
        raise ValueError(f"armature {obj.name!r} has no bones named {missing}")
    if len(set(bone_names)) != len(bone_names):
        raise ValueError("bone_names contains duplicates")
    return rotations, root_translation


def _channels(action, obj):
    """A function ``new(data_path, index, group) -> FCurve`` for the action (layered or legacy API)."""
    if hasattr(action, "layers") and hasattr(action, "slots") and not hasattr(action, "fcurves"):
        slot = action.slots.new(id_type="OBJECT", name=obj.name)
        obj.animation_data.action = action
        obj.animation_data.action_slot = slot
        layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
        strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
        channelbag = strip.channelbag(slot, ensure=True)
        return lambda path, index, group: channelbag.fcurves.new(path, index=index, group_name=group)
    obj.animation_data.action = action  # Blender 4.2 LTS: legacy flat F-curves
    return lambda path, index, group: action.fcurves.new(path, index=index, action_group=group)


def _write(fcurve, frames: np.ndarray, values: np.ndarray) -> None:
    count = len(frames)
    points = fcurve.keyframe_points
    points.add(count)
    co = np.empty(2 * count, dtype=np.float32)
    co[0::2], co[1::2] = frames, values
    points.foreach_set("co", co)
    fcurve.update()  # sorts and computes Blender's default (auto-clamped Bezier) handles


def key_frames(num_frames: int, fps: float, scene_fps: float, frame_start: float) -> np.ndarray:
    """Scene frame numbers for motion frames ``0..T-1`` so playback keeps the motion's timing.

    Frame ``i`` lands on ``frame_start + i * scene_fps / fps``; rates within 0.1 % count as equal (keys stay on
    whole frames, e.g. a 30.00003 fps BVH on a 30 fps scene).
    """
    ratio = scene_fps / fps
    if abs(ratio - 1.0) < 1e-3:
        ratio = 1.0
    return frame_start + np.arange(num_frames, dtype=np.float64) * ratio


def apply_motion(
    obj,
    bone_names: Sequence[str],
    rotations,
    root_translation,
    fps: float,
    frame_start: int = 1,
    action_name: str = "Baton Motion",
    *,
    match_scene_fps: bool = False,
    push_undo: bool = False,
):
    """Write a retargeted motion onto armature ``obj`` as a new Action (assigned to it) and return the Action.

    Args:
        obj: the armature object (its rest pose must be the rig the motion was retargeted onto, e.g. built by
            :func:`.rigs.build_armature` or read by :func:`.rigs.armature_rig_dict`; the object's rotation and scale
            are part of that rig, its location places the motion).
        bone_names: ``J`` bone names in the order of ``rotations``.
        rotations: ``(T, J, 4)`` (w, x, y, z) local rotations of the retargeted Motion: backend space, Skeleton
            convention (``RetargetResult.motion.rotations``). They are converted to each bone's rest frame and
            rotation mode here (through :mod:`.space`).
        root_translation: ``(T, 3)`` backend world position of ``bone_names[0]`` (keyed as its location), or
            ``None`` to leave the location unkeyed.
        fps: the motion's frame rate.
        frame_start: scene frame of motion frame 0.
        action_name: the new Action's name (Blender adds a suffix if it exists).
        match_scene_fps: space keys so playback at the scene's current rate keeps the motion's timing
            (:func:`key_frames`); by default one key per scene frame (the caller sets the scene to ``fps``, as
            ``results.land_action`` does).
        push_undo: push the undo step ("Baton: apply motion") here. The write itself makes no intermediate undo
            pushes, so it is one step either way; callers that change more (scene range, sound strip) leave this off
            and push once when everything has landed.

    Returns:
        the new ``bpy.types.Action``.

    Raises:
        ValueError: not an armature, unknown bones, wrong shapes, NaN / infinity, zero frames, bad fps
            (nothing is created or changed).
    """
    import bpy

    rotations, root_translation = _check(obj, bone_names, rotations, root_translation, fps)
    rest, object_scale = rigs.rest_frames_of(obj, bone_names)  # the frames armature_rig_dict reports
    pose, location = space.to_pose_space(rotations, root_translation, rest)
    if location is not None:
        location = location / object_scale  # pose locations are in armature units
    scene = bpy.context.scene
    scene_fps = scene.render.fps / scene.render.fps_base if match_scene_fps else fps
    frames = key_frames(rotations.shape[0], fps, scene_fps, frame_start)

    action = bpy.data.actions.new(action_name)
    if obj.animation_data is None:
        obj.animation_data_create()
    new_curve = _channels(action, obj)
    for j, name in enumerate(bone_names):
        bone = obj.pose.bones[name]
        base = f'pose.bones["{bpy.utils.escape_identifier(name)}"]'
        mode = bone.rotation_mode
        if mode == "QUATERNION":
            path, values = "rotation_quaternion", space.quat_continuous(pose[:, j])
        elif mode == "AXIS_ANGLE":
            path, values = "rotation_axis_angle", space.quat_to_axis_angle(space.quat_continuous(pose[:, j]))
        else:
            path, values = "rotation_euler", np.unwrap(space.quat_to_euler(pose[:, j], mode), axis=0)
        for index in range(values.shape[1]):
            _write(new_curve(f"{base}.{path}", index, name), frames, values[:, index])
        if j == 0 and location is not None:
            for index in range(3):
                _write(new_curve(f"{base}.location", index, name), frames, location[:, index])
    if push_undo and bpy.ops.ed.undo_push.poll():
        bpy.ops.ed.undo_push(message="Baton: apply motion")
    return action


def fcurves_of(action, obj=None) -> list:
    """All F-curves of an action (layered channelbags on Blender 4.4+/5.x, ``action.fcurves`` on 4.2)."""
    if hasattr(action, "fcurves"):
        return list(action.fcurves)
    slots = [obj.animation_data.action_slot] if obj is not None and obj.animation_data else list(action.slots)
    curves = []
    for layer in action.layers:
        for strip in layer.strips:
            for slot in slots:
                bag = strip.channelbag(slot)
                if bag is not None:
                    curves.extend(bag.fcurves)
    return curves
