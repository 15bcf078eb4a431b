"""Generate from Text, end to end: real bpy, the installed add-on, a real backend generating with the real
text-to-motion model (the shipped default weights) and retargeting onto a Mixamo-named rig.

The operator only starts the job; the tests drive the add-on's timer like Blender's event loop would and check what
lands on the rig: new actions (one per variation) at 20 fps, bones that move, one undo step that restores the previous
action, switching variations, Accept / Reject / Push to NLA, Cancel, and bad input refused with the reason.
"""

from __future__ import annotations

import math
import re
import time

import bpy
import numpy as np
import pytest
from conftest import ADDON_MODULE, free_port, start_backend, stop
from panel_snapshot import record_panel
from test_addon_generate import build_mixamo_rig, give_idle_action, world_heads

PROMPT = "a person waves with the right hand"
HANDS = ["mixamorig:RightHand", "mixamorig:LeftHand", "mixamorig:Head"]


@pytest.fixture(scope="module")
def text_backend(tmp_path_factory):
    """A real backend (``baton serve`` from .venv) serving the shipped default text-to-motion weights."""
    home = tmp_path_factory.mktemp("text-backend")
    port = free_port()
    process = start_backend(home, port)
    yield process.url, process.token
    stop(process)


@pytest.fixture
def text_prefs(addon, text_backend):
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.backend_url, prefs.token = text_backend
    yield prefs
    prefs.property_unset("backend_url")
    prefs.property_unset("token")


def _settings(scene, **values):
    settings = scene.baton
    defaults = {"text_prompt": PROMPT, "text_seconds": 3.0, "text_seed": 1, "text_samples": 1, "target": "ACTIVE"}
    for name, value in {**defaults, **values}.items():
        setattr(settings, name, value)
    return settings


def _run(addon, wait_jobs):
    assert bpy.ops.baton.generate_text() == {"FINISHED"}
    job = addon.jobs.runner().latest("generate_text")
    assert job.active, "the operator only starts the job"
    wait_jobs(600)
    return job


def _travel(obj, frames) -> float:
    heads = world_heads(obj, HANDS, frames)
    assert np.isfinite(heads).all()
    return float(np.linalg.norm(heads - heads.mean(0), axis=2).max())


@pytest.mark.slow
def test_generate_from_text_onto_a_mixamo_rig_then_undo_restores(addon, clean_scene, text_prefs, wait_jobs):
    obj = build_mixamo_rig()
    give_idle_action(obj)
    settings = _settings(clean_scene)
    bpy.ops.ed.undo_push(message="mixamo rig with Idle")
    rest = world_heads(obj, HANDS, [1])[0]

    job = _run(addon, wait_jobs)
    assert job.state == "done", job.message
    obj = settings.pending_object
    action = settings.pending_action
    assert obj.name == "MixamoRig" and obj.animation_data.action == action and action.name != "Idle"
    frames = round(3.0 * 20)
    assert clean_scene.render.fps == 20 and tuple(action.frame_range) == (1.0, float(frames))
    assert (clean_scene.frame_start, clean_scene.frame_end) == (1, frames)
    assert _travel(obj, list(range(1, frames + 1, 3))) > 0.05, "Mixamo bones must move"
    assert not np.allclose(world_heads(obj, HANDS, [1])[0], rest, atol=1e-3), "the pose is not the rest pose"
    assert {"backend_s", "transfer_s", "keyframe_write_s"} <= set(job.timings)
    assert "Accept" in settings.last_message and len(settings.pending_variations) == 0

    action_name = action.name
    bpy.ops.ed.undo()  # one step: the whole result
    obj = bpy.data.objects["MixamoRig"]
    assert obj.animation_data.action.name == "Idle"
    assert action_name not in bpy.data.actions and [a.name for a in bpy.data.actions] == ["Idle"]
    scene = bpy.context.scene
    assert scene.render.fps == 24 and scene.baton.pending_action is None


@pytest.mark.slow
def test_variations_land_together_and_the_decision_keeps_the_chosen_one(addon, clean_scene, text_prefs, wait_jobs):
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    settings = _settings(clean_scene, text_samples=3, text_seed=5)
    bpy.ops.ed.undo_push(message="mixamo rig with Idle")

    job = _run(addon, wait_jobs)
    assert job.state == "done", job.message
    variations = [item.action for item in settings.pending_variations]
    names = [a.name for a in variations]
    assert len(variations) == 3 and settings.pending_action == variations[0]
    assert len(set(names)) == 3 and "3 variations" in settings.last_message
    drawn = record_panel(bpy.types.BATON_PT_result)
    buttons = [n for n in drawn.walk() if n.kind == "operator" and n.extra["idname"] == "baton.variation"]
    assert [b.text for b in buttons] == ["1", "2", "3"]

    frames = list(range(1, 61, 3))
    first = world_heads(obj, HANDS, frames)
    assert bpy.ops.baton.variation(index=2) == {"FINISHED"}
    assert obj.animation_data.action == variations[2] and settings.pending_action == variations[2]
    third = world_heads(obj, HANDS, frames)
    assert np.abs(third - first).max() > 0.01, "variations are different motions"

    bpy.ops.ed.undo()  # the choice is its own step (undo replaces Blender data: look everything up again)
    settings = bpy.context.scene.baton
    assert settings.pending_action.name == names[0]
    assert bpy.data.objects["MixamoRig"].animation_data.action.name == names[0]
    bpy.ops.ed.undo()  # and the whole result one more
    obj = bpy.data.objects["MixamoRig"]
    assert obj.animation_data.action.name == "Idle" and [a.name for a in bpy.data.actions] == ["Idle"]

    # Again, then push variation 2 to the NLA: it stays on a track, the other two are deleted, Idle is back.
    job = _run(addon, wait_jobs)
    assert job.state == "done", job.message
    settings = bpy.context.scene.baton
    names = [item.action.name for item in settings.pending_variations]
    assert bpy.ops.baton.variation(index=1) == {"FINISHED"}
    assert bpy.ops.baton.result(action="NLA") == {"FINISHED"}
    obj = bpy.data.objects["MixamoRig"]
    assert obj.animation_data.action.name == "Idle"
    assert [s.action.name for s in obj.animation_data.nla_tracks["Baton"].strips] == [names[1]]
    assert sorted(a.name for a in bpy.data.actions) == sorted(["Idle", names[1]])
    assert settings.pending_action is None and len(settings.pending_variations) == 0
    del idle


@pytest.mark.slow
def test_new_smpl24_rig_and_accept(addon, clean_scene, text_prefs, wait_jobs):
    settings = _settings(clean_scene, target="SMPL24", text_auto_duration=True, text_prompt="a person walks forward")
    job = _run(addon, wait_jobs)
    assert job.state == "done", job.message
    obj, action = settings.pending_object, settings.pending_action
    assert obj.type == "ARMATURE" and len(obj.data.bones) == 24
    start, end = action.frame_range
    assert start == 1 and end > 20, "the length estimator chose a duration"
    assert bpy.ops.baton.result(action="ACCEPT") == {"FINISHED"}
    assert obj.animation_data.action == action and settings.pending_action is None


def test_variations_switch_and_every_decision_removes_the_unchosen_ones(addon, clean_scene):
    """The bookkeeping of a multi-variation result (results.py) on plain actions, decision by decision."""
    import sys

    results = sys.modules[ADDON_MODULE + ".results"]
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    for decision in ("ACCEPT", "REJECT", "NLA"):
        actions = [bpy.data.actions.new(f"{decision} v{i + 1}") for i in range(3)]
        results.assign_action(obj, actions[0])
        results.land_action(bpy.context, obj, actions[0], idle, frame_start=1, num_frames=10, fps=20.0,
                            audio_path=None, created_rig=False, undo_message="test", variations=actions)  # fmt: skip
        assert [item.action for item in clean_scene.baton.pending_variations] == actions
        with pytest.raises(RuntimeError, match="variation 4 does not exist; there are 3"):
            bpy.ops.baton.variation(index=3)
        assert bpy.ops.baton.variation(index=1) == {"FINISHED"}
        assert obj.animation_data.action == actions[1] == clean_scene.baton.pending_action
        assert bpy.ops.baton.result(action=decision) == {"FINISHED"}
        left = {a.name for a in bpy.data.actions if a.name.startswith(decision)}
        assert left == (set() if decision == "REJECT" else {f"{decision} v2"}), left
        assert len(clean_scene.baton.pending_variations) == 0 and clean_scene.baton.pending_action is None
        results.assign_action(obj, idle)
    assert [s.action.name for s in obj.animation_data.nla_tracks["Baton"].strips] == ["NLA v2"]
    with pytest.raises(RuntimeError, match="no Baton result with variations"):
        bpy.ops.baton.variation(index=0)


def test_a_bad_variation_lands_nothing(addon, clean_scene):
    """Variations land all or nothing: a later one the writer refuses (NaN) removes the ones written before it."""
    import sys

    pipelines, remote = (sys.modules[f"{ADDON_MODULE}.{name}"] for name in ("pipelines", "remote"))
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    bones = [bone.name for bone in obj.data.bones]
    rest = np.zeros((5, len(bones), 4), dtype=np.float32)
    rest[..., 0] = 1.0
    broken = rest.copy()
    broken[2, 3] = np.nan
    motions = [remote.RigMotion(bones, r, np.zeros((5, 3), np.float32), 20.0) for r in (rest, rest, broken)]
    job = addon.jobs.Job(kind="generate_text", label="test", work=lambda job: None)
    with pytest.raises(ValueError, match="NaN"):
        pipelines._land(job, motions, pipelines.TargetRef.of(obj), 1, ["v1", "v2", "v3"], None, False, "test")
    assert obj.animation_data.action == idle and [a.name for a in bpy.data.actions] == ["Idle"]
    assert clean_scene.baton.pending_action is None


def test_bad_prompt_or_guidance_is_refused_before_any_job(addon, clean_scene):
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    cases = [
        ({"text_prompt": ""}, "type a prompt first"),
        ({"text_prompt": "   "}, "type a prompt first"),
        ({"text_prompt": "a" * 10_000}, "10000 characters; at most 1000"),
        ({"text_guidance": math.nan}, "guidance must be a finite number"),
    ]
    before = addon.jobs.runner().latest("generate_text")
    for values, message in cases:
        settings = _settings(clean_scene, **values)
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.baton.generate_text()
        assert settings.last_message_is_error and message.split(";")[0] in settings.last_message
        assert addon.jobs.runner().latest("generate_text") is before, "no job started"
        settings.property_unset("text_guidance")
    assert obj.animation_data.action == idle and [a.name for a in bpy.data.actions] == ["Idle"]


@pytest.mark.slow
def test_durations_outside_the_limit_fail_with_the_limit_and_change_nothing(addon, clean_scene, text_prefs,
                                                                          wait_jobs):  # fmt: skip
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    for seconds in (0.0, 3600.0):
        settings = _settings(clean_scene, text_seconds=seconds)
        job = _run(addon, wait_jobs)
        assert job.state == "failed", job.message
        limit = r"seconds must be between [\d.]+ and [\d.]+ s, got " + f"{seconds:g}"
        assert re.search(limit, job.message), job.message
        assert settings.last_message_is_error and settings.pending_action is None
    assert obj.animation_data.action == idle and [a.name for a in bpy.data.actions] == ["Idle"]


@pytest.mark.slow
def test_cancel_shows_progress_then_stops_the_job(addon, clean_scene, text_prefs, wait_jobs):
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    _settings(clean_scene, text_seconds=9.0, text_samples=4)
    assert bpy.ops.baton.generate_text() == {"FINISHED"}
    job = addon.jobs.runner().latest("generate_text")
    while job.active and job.fraction < 0.02:  # until the backend's generate job is submitted
        addon.jobs.poll()
    drawn = record_panel(bpy.types.BATON_PT_generate_text)
    bars = [n for n in drawn.walk() if n.kind == "progress"]
    assert len(bars) == 1 and bars[0].text.startswith("Generating 'a person waves with the…' x4:")
    generate = [n for n in drawn.walk() if n.kind == "operator" and n.extra["idname"] == "baton.generate_text"]
    assert generate and generate[0].extra["enabled"] is False, "one job at a time: Generate is greyed"
    assert bpy.ops.baton.cancel(kind="generate_text") == {"FINISHED"}
    wait_jobs(120)
    assert job.state == "cancelled" and clean_scene.baton.pending_action is None
    assert obj.animation_data.action == idle and [a.name for a in bpy.data.actions] == ["Idle"]
    client = addon.server.make_client(text_prefs.backend_url, text_prefs.token)
    remote = [j for j in client.jobs() if j["kind"] == "generate"][-1]
    deadline = time.monotonic() + 120  # cancellation is cooperative: the server stops at its next progress step
    while remote["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        remote = client.status(remote["id"])
    assert remote["state"] == "cancelled", "the backend's generate job stops too"
