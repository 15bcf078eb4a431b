"""Results on the rig (main thread only): land a motion as a new Action, then Accept / Reject / Push to NLA.

Landing a result is ONE undo step: the new Action (written by :func:`apply.apply_motion`), the music strip, the scene
fps and frame range and the pending-result bookkeeping on ``scene.baton`` are all changed first, then a single
``ed.undo_push`` records them. Ctrl+Z therefore returns the scene to exactly what it was before the result arrived.

Until the user decides, the result is *pending*: ``scene.baton.pending_object`` / ``pending_action`` /
``previous_action``. Reject puts the previous action back (or none) and deletes the new one; Accept keeps it;
Push to NLA moves it onto a new NLA track named "Baton" and puts the previous action back as the active one.
A result with several variations (Generate from Text) keeps them all as Actions until the decision: the chosen one is
``pending_action``, the others are deleted when the user accepts, rejects or pushes it to the NLA.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import bpy

UNDO_PREFIX = "Baton: "


def push_undo(message: str) -> None:
    """Record one undo step (works from a timer too: a window is supplied when there is one)."""
    window_manager = bpy.context.window_manager
    window = bpy.context.window or (window_manager.windows[0] if window_manager and window_manager.windows else None)
    if window is not None:
        with bpy.context.temp_override(window=window):
            bpy.ops.ed.undo_push(message=UNDO_PREFIX + message)
    else:
        bpy.ops.ed.undo_push(message=UNDO_PREFIX + message)


def assign_action(obj: bpy.types.Object, action: bpy.types.Action | None) -> None:
    """Make ``action`` the active action of ``obj`` (Blender 4.4+ also picks a matching action slot)."""
    anim = obj.animation_data or obj.animation_data_create()
    anim.action = action
    if action is not None and hasattr(anim, "action_slot") and anim.action_slot is None:
        slots = list(getattr(anim, "action_suitable_slots", [])) or list(getattr(action, "slots", []))
        if slots:
            anim.action_slot = slots[0]


def current_action(obj: bpy.types.Object) -> bpy.types.Action | None:
    return obj.animation_data.action if obj.animation_data else None


def add_sound_strip(scene: bpy.types.Scene, audio_path: str, frame_start: int) -> bpy.types.Sequence:
    """Add ``audio_path`` as a sound strip at ``frame_start`` on the first free channel.

    Raises:
        FileNotFoundError: when the file does not exist.
    """
    if not os.path.isfile(audio_path):
        raise FileNotFoundError(f"audio file not found: {audio_path}")
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # 4.4+ / older
    channel = 1 + max((s.channel for s in strips), default=0)
    name = "Baton " + os.path.splitext(os.path.basename(audio_path))[0][:40]
    return strips.new_sound(name, audio_path, channel, int(frame_start))


def scene_sound_path(scene: bpy.types.Scene) -> str:
    """The file of the scene's sound strip: the active strip if it is a sound, else the first sound strip.

    Raises:
        ValueError: when the scene has no sound strip.
    """
    editor = scene.sequence_editor
    if editor is not None:
        strips = list(editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all)
        active = editor.active_strip
        candidates = ([active] if active is not None else []) + strips
        for strip in candidates:
            if strip.type == "SOUND" and strip.sound is not None:
                return bpy.path.abspath(strip.sound.filepath, library=strip.sound.library)
    raise ValueError("the scene has no sound strip; choose an audio file instead (Audio: File)")


def scene_movie_path(scene: bpy.types.Scene) -> str:
    """The file of the scene's movie strip: the active strip if it is a movie, else the first movie strip.

    Raises:
        ValueError: when the scene has no movie strip.
    """
    editor = scene.sequence_editor
    if editor is not None:
        strips = list(editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all)
        active = editor.active_strip
        for strip in ([active] if active is not None else []) + strips:
            if strip.type == "MOVIE" and strip.filepath:
                return bpy.path.abspath(strip.filepath)
    raise ValueError("the scene has no movie strip; choose a video file instead (Video: File)")


def land_action(
    context: bpy.types.Context,
    obj: bpy.types.Object,
    new_action: bpy.types.Action,
    previous_action: bpy.types.Action | None,
    *,
    frame_start: int,
    num_frames: int,
    fps: float,
    audio_path: str | None,
    created_rig: bool,
    undo_message: str,
    variations: Sequence[bpy.types.Action] = (),
) -> str:
    """Finish landing a result written by :func:`apply.apply_motion` and record it as ONE undo step.

    Sets the music strip, the scene fps/range (per ``scene.baton`` options) and the pending result. ``variations``:
    every Action of a multi-variation result (``new_action`` among them); the user picks one with
    :func:`choose_variation` before deciding, and the decision removes the others. Returns the message for the panel.
    """
    scene = context.scene
    settings = scene.baton
    settings.pending_variations.clear()
    for action in variations if len(variations) > 1 else ():
        settings.pending_variations.add().action = action
    if audio_path and settings.add_sound_strip:
        add_sound_strip(scene, audio_path, frame_start)
    if settings.set_scene_range:
        scene.render.fps, scene.render.fps_base = max(1, round(fps)), 1.0
        scene.frame_start, scene.frame_end = frame_start, frame_start + num_frames - 1
    settings.pending_object = obj
    settings.pending_action = new_action
    settings.previous_action = previous_action
    settings.pending_created_rig = created_rig
    settings.pending_frame_start = frame_start
    first, last = (round(v) for v in new_action.frame_range)
    choose = f" {len(variations)} variations: pick one, then" if len(variations) > 1 else ""
    message = (
        f"{new_action.name} on {obj.name}: frames {first}-{last} ({num_frames / fps:.1f} s of motion at "
        f"{fps:g} fps).{choose} Accept, Reject or Push to NLA."
    )
    settings.last_message, settings.last_message_is_error = message, False
    push_undo(undo_message)
    return message


def has_pending(scene: bpy.types.Scene) -> bool:
    settings = scene.baton
    return settings.pending_object is not None and settings.pending_action is not None


def _remove_if_unused(action: bpy.types.Action | None) -> None:
    if action is not None and (action.users == 0 or (action.users == 1 and action.use_fake_user)):
        bpy.data.actions.remove(action)


def _clear_pending(settings) -> None:
    """Forget the pending result; variations other than the chosen one (which the caller handles) are deleted."""
    others = [item.action for item in settings.pending_variations if item.action != settings.pending_action]
    settings.pending_variations.clear()
    for action in others:
        _remove_if_unused(action)
    settings.pending_object = None
    settings.pending_action = None
    settings.previous_action = None
    settings.pending_created_rig = False


def choose_variation(scene: bpy.types.Scene, index: int) -> str:
    """Make variation ``index`` (0-based) of the pending result the one on the rig (its own undo step).

    Raises:
        ValueError: when no result with variations is pending or ``index`` is out of range.
    """
    settings = scene.baton
    if not has_pending(scene) or not len(settings.pending_variations):
        raise ValueError("there is no Baton result with variations to choose from")
    if not 0 <= index < len(settings.pending_variations):
        raise ValueError(f"variation {index + 1} does not exist; there are {len(settings.pending_variations)}")
    action = settings.pending_variations[index].action
    if action is None:
        raise ValueError(f"variation {index + 1} was deleted")
    assign_action(settings.pending_object, action)
    settings.pending_action = action
    push_undo(f"choose variation {index + 1}")
    count = len(settings.pending_variations)
    return f"variation {index + 1} of {count}: {action.name} on {settings.pending_object.name}"


def accept(scene: bpy.types.Scene) -> str:
    """Keep the pending result. Raises ``ValueError`` when there is none."""
    settings = scene.baton
    if not has_pending(scene):
        raise ValueError("there is no Baton result waiting to be accepted")
    message = f"kept {settings.pending_action.name} on {settings.pending_object.name}"
    _clear_pending(settings)
    push_undo("accept result")
    return message


def reject(scene: bpy.types.Scene) -> str:
    """Put the previous action back (or none) and delete the pending one. Raises ``ValueError`` when none."""
    settings = scene.baton
    if not has_pending(scene):
        raise ValueError("there is no Baton result to reject")
    obj, action, previous = settings.pending_object, settings.pending_action, settings.previous_action
    assign_action(obj, previous)
    name = action.name
    _clear_pending(settings)
    _remove_if_unused(action)
    push_undo("reject result")
    return f"rejected {name}; {obj.name} has " + (f"{previous.name} again" if previous else "no action again")


def push_to_nla(scene: bpy.types.Scene) -> str:
    """Move the pending action onto a new NLA track "Baton" at its start frame; restore the previous action."""
    settings = scene.baton
    if not has_pending(scene):
        raise ValueError("there is no Baton result to push to the NLA")
    obj, action, previous = settings.pending_object, settings.pending_action, settings.previous_action
    anim = obj.animation_data or obj.animation_data_create()
    slot = getattr(anim, "action_slot", None)
    track = anim.nla_tracks.new()
    track.name = "Baton"
    strip = track.strips.new(action.name, int(settings.pending_frame_start), action)
    if slot is not None and hasattr(strip, "action_slot"):
        strip.action_slot = slot
    assign_action(obj, previous)
    _clear_pending(settings)
    push_undo("push result to NLA")
    return f"pushed {action.name} to the NLA track '{track.name}' of {obj.name}"
