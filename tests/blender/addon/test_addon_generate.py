"""Generate from music, end to end: real backend, real bpy, the installed add-on, Brahms (45.8 s) from ../shared.

The operator only starts the job; the tests then drive the add-on's timer like Blender's event loop would and check
what lands on the rig: a new action spanning the music at 30 fps, bones that move, the music strip, one undo step,
Accept / Reject / Push to NLA.
"""

from __future__ import annotations

import importlib
import sys
import time

import bpy
import numpy as np
import pytest
from conftest import ADDON_MODULE, start_backend, stop
from panel_snapshot import record_panel

MIXAMO_FROM_SMPL = {
    "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": "Spine", "left_knee": "LeftLeg",
    "right_knee": "RightLeg", "spine2": "Spine1", "left_ankle": "LeftFoot", "right_ankle": "RightFoot",
    "spine3": "Spine2", "left_foot": "LeftToeBase", "right_foot": "RightToeBase", "neck": "Neck",
    "left_collar": "LeftShoulder", "right_collar": "RightShoulder", "head": "Head", "left_shoulder": "LeftArm",
    "right_shoulder": "RightArm", "left_elbow": "LeftForeArm", "right_elbow": "RightForeArm",
    "left_wrist": "LeftHand", "right_wrist": "RightHand", "left_hand": "LeftHandMiddle1",
    "right_hand": "RightHandMiddle1",
}  # fmt: skip
MUSIC_FRAMES = round(45.8 * 30)  # Brahms lasts 45.8 s; the conductor runs at 30 fps


def _rigs():
    return importlib.import_module(ADDON_MODULE + ".rigs")


def build_mixamo_rig(name: str = "MixamoRig") -> bpy.types.Object:
    """A Mixamo-named armature (``mixamorig:`` prefix, Mixamo bone names) with SMPL proportions."""
    rig = _rigs().builtin_rig("smpl24")
    rig = {**rig, "name": name, "joint_names": [f"mixamorig:{MIXAMO_FROM_SMPL[n]}" for n in rig["joint_names"]]}
    obj = _rigs().build_armature(rig, name=name)
    bpy.context.view_layer.objects.active = obj
    return obj


def give_idle_action(obj: bpy.types.Object) -> bpy.types.Action:
    bone = obj.pose.bones["mixamorig:Spine"]
    bone.rotation_mode = "QUATERNION"
    for frame, angle in ((1, 0.0), (20, 0.3)):
        bone.rotation_quaternion = (np.cos(angle / 2), np.sin(angle / 2), 0.0, 0.0)
        bone.keyframe_insert("rotation_quaternion", frame=frame)
    obj.animation_data.action.name = "Idle"
    return obj.animation_data.action


def world_heads(obj: bpy.types.Object, bone_names: list[str], frames: list[int]) -> np.ndarray:
    """``(F, B, 3)`` pose-bone world head positions at ``frames`` (evaluated through the depsgraph)."""
    scene = bpy.context.scene
    out = np.empty((len(frames), len(bone_names), 3))
    for i, frame in enumerate(frames):
        scene.frame_set(frame)
        for j, name in enumerate(bone_names):
            out[i, j] = obj.matrix_world @ obj.pose.bones[name].head
    return out


def run_generate(scene, wait_jobs, addon):
    assert bpy.ops.baton.generate() == {"FINISHED"}
    job = addon.jobs.runner().latest("generate")
    assert job.active, "the operator only starts the job"
    wait_jobs(600)
    assert job.state == "done", job.message
    return job


@pytest.mark.slow
def test_generate_onto_a_new_smpl24_rig_then_undo(addon, clean_scene, connected, wait_jobs, shared_audio):
    settings = clean_scene.baton
    settings.audio_path, settings.target, settings.model, settings.seed = str(shared_audio), "SMPL24", "procedural", 3
    bpy.ops.ed.undo_push(message="test start")
    job = run_generate(clean_scene, wait_jobs, addon)

    obj, action = settings.pending_object, settings.pending_action
    assert obj is not None and obj.type == "ARMATURE" and len(obj.data.bones) == 24
    assert obj.animation_data.action == action
    start, end = action.frame_range
    assert start == 1 and abs(end - MUSIC_FRAMES) <= 1, action.frame_range
    assert clean_scene.render.fps == 30 and (clean_scene.frame_start, clean_scene.frame_end) == (1, int(end))
    strips = list(clean_scene.sequence_editor.strips)
    assert len(strips) == 1 and strips[0].type == "SOUND" and strips[0].frame_start == 1
    assert bpy.path.abspath(strips[0].sound.filepath) == str(shared_audio)

    frames = list(range(1, MUSIC_FRAMES, 45))
    heads = world_heads(obj, ["right_wrist", "left_wrist", "head"], frames)
    wrist_travel = np.linalg.norm(heads[:, 0] - heads[:, 0].mean(0), axis=1).max()
    assert wrist_travel > 0.05, f"the baton hand should move (max {wrist_travel:.3f} m from its mean)"
    assert np.isfinite(heads).all()
    assert {"upload_s", "backend_s", "retarget_solve_s", "transfer_s", "keyframe_write_s"} <= set(job.timings)
    assert "Accept" in settings.last_message

    rig_name, action_name = obj.name, action.name
    bpy.ops.ed.undo()  # one step: the whole result
    obj = bpy.data.objects.get(rig_name)
    assert obj is not None, "the new rig is its own undo step and stays"
    assert obj.animation_data is None or obj.animation_data.action is None
    assert action_name not in bpy.data.actions
    scene = bpy.context.scene
    assert scene.sequence_editor is None or len(scene.sequence_editor.strips) == 0
    assert scene.render.fps == 24 and scene.baton.pending_action is None


@pytest.mark.slow
def test_generate_onto_a_mixamo_rig_reject_and_undo_restore_the_previous_action(
    addon, clean_scene, connected, wait_jobs, shared_audio
):
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    # The music is already in the scene as a sound strip: generate from it and do not add another.
    clean_scene.sequence_editor_create().strips.new_sound("music", str(shared_audio), 1, 1)
    settings = clean_scene.baton
    settings.audio_source, settings.target, settings.add_sound_strip = "STRIP", "ACTIVE", False
    bpy.ops.ed.undo_push(message="mixamo rig with Idle")

    run_generate(clean_scene, wait_jobs, addon)
    obj = settings.pending_object
    assert obj.name == "MixamoRig" and obj.animation_data.action.name != "Idle"
    assert len(clean_scene.sequence_editor.strips) == 1
    assert abs(settings.pending_action.frame_range[1] - MUSIC_FRAMES) <= 1
    heads = world_heads(obj, ["mixamorig:RightHand", "mixamorig:LeftHand"], list(range(1, MUSIC_FRAMES, 45)))
    assert np.linalg.norm(heads - heads.mean(0), axis=2).max() > 0.05, "Mixamo hands must move"

    bpy.ops.ed.undo()
    obj = bpy.data.objects["MixamoRig"]
    assert obj.animation_data.action.name == "Idle"
    assert [a.name for a in bpy.data.actions] == ["Idle"]

    run_generate(bpy.context.scene, wait_jobs, addon)
    settings = bpy.context.scene.baton
    new_name = settings.pending_action.name
    assert bpy.ops.baton.result(action="REJECT") == {"FINISHED"}
    obj = bpy.data.objects["MixamoRig"]
    assert obj.animation_data.action.name == "Idle" and new_name not in bpy.data.actions
    assert settings.pending_action is None
    del idle


def test_accept_and_push_to_nla(addon, clean_scene):
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    results = sys.modules[ADDON_MODULE + ".results"]
    for decision in ("ACCEPT", "NLA"):
        new = bpy.data.actions.new(f"Baton {decision}")
        results.assign_action(obj, new)
        results.land_action(bpy.context, obj, new, idle, frame_start=5, num_frames=10, fps=30.0, audio_path=None,
                            created_rig=False, undo_message="test")  # fmt: skip
        assert bpy.ops.baton.result(action=decision) == {"FINISHED"}
        assert clean_scene.baton.pending_action is None
    assert obj.animation_data.action == idle, "Push to NLA restores the previous action"
    track = obj.animation_data.nla_tracks["Baton"]
    assert [(s.action.name, s.frame_start) for s in track.strips] == [("Baton NLA", 5.0)]
    with pytest.raises(RuntimeError, match="no Baton result"):
        bpy.ops.baton.result(action="REJECT")


@pytest.mark.slow
def test_backend_dying_mid_job_fails_cleanly(addon, clean_scene, wait_jobs, shared_audio, tmp_path):
    from conftest import free_port

    port = free_port()
    process = start_backend(tmp_path, port)
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.backend_url, prefs.token = process.url, process.token
    try:
        settings = clean_scene.baton
        settings.audio_path, settings.target = str(shared_audio), "SMPL24"
        assert bpy.ops.baton.generate() == {"FINISHED"}
        job = addon.jobs.runner().latest("generate")
        while job.active and job.fraction < 0.05:
            addon.jobs.poll()
        assert job.active, job.message
        stop(process)  # the backend dies while it generates
        wait_jobs(60)
        assert job.state == "failed"
        assert "Lost contact with the Baton backend" in job.message, job.message
        rig = bpy.context.view_layer.objects.active
        assert rig.animation_data is None or rig.animation_data.action is None, "nothing lands from a failed job"
        assert settings.last_message_is_error and settings.pending_action is None
    finally:
        stop(process)
        prefs.property_unset("backend_url")
        prefs.property_unset("token")


@pytest.mark.slow
def test_cancel_stops_the_job_and_the_backend_job(addon, clean_scene, connected, wait_jobs, shared_audio):
    settings = clean_scene.baton
    settings.audio_path, settings.target, settings.model = str(shared_audio), "SMPL24", "procedural"
    assert bpy.ops.baton.generate() == {"FINISHED"}
    job = addon.jobs.runner().latest("generate")
    while job.active and job.fraction < 0.05:  # until the backend's conduct job runs
        addon.jobs.poll()
    drawn = record_panel(bpy.types.BATON_PT_generate)
    bars = [n for n in drawn.walk() if n.kind == "progress"]
    assert len(bars) == 1 and bars[0].text.startswith("Conducting (procedural):") and float(bars[0].value) >= 0.05
    cancel = [n for n in drawn.walk() if n.kind == "operator" and n.extra["idname"] == "baton.cancel"]
    generate = [n for n in drawn.walk() if n.kind == "operator" and n.extra["idname"] == "baton.generate"]
    assert cancel and generate and generate[0].extra["enabled"] is False, "one job at a time: Generate is greyed"
    assert bpy.ops.baton.cancel(kind="generate") == {"FINISHED"}
    wait_jobs(60)
    assert job.state == "cancelled" and settings.pending_action is None
    rig = bpy.context.view_layer.objects.active
    assert rig.animation_data is None or rig.animation_data.action is None
    client = addon.server.make_client(connected.backend_url, connected.token)
    conduct = [j for j in client.jobs() if j["kind"] == "conduct"][-1]
    deadline = time.monotonic() + 300  # cancellation is cooperative: the server stops at its next progress step
    while conduct["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        conduct = client.status(conduct["id"])
    jobs = client.jobs()
    later_retargets = [j for j in jobs if j["kind"] == "retarget" and j["created_at"] > conduct["created_at"]]
    # The backend's work stops too: the conduct job was cancelled, or it had already finished and the retarget job
    # that would follow was never submitted or was cancelled.
    assert conduct["state"] == "cancelled" or (
        conduct["state"] == "succeeded" and all(j["state"] == "cancelled" for j in later_retargets)
    ), (conduct, later_retargets)
