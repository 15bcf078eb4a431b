"""Generate from Text > Voice, end to end: real bpy, the installed add-on, a real backend understanding an espeak-ng
recording with the shipped speech weights and generating with the shipped text-to-motion weights onto a Mixamo-named
rig.

The operator only starts the job; the tests drive the add-on's timer like Blender's event loop would and check what
lands: an action whose bones move, what was heard shown beside the result, one undo step that restores the previous
action, the scene's sound strip as the source, Accept / Push to NLA, Cancel, and a silent recording refused with the
reason and nothing landed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import wave
from pathlib import Path

import bpy
import numpy as np
import pytest
from conftest import ADDON_MODULE, free_port, start_backend, stop
from panel_snapshot import record_panel
from test_addon_generate import build_mixamo_rig, give_idle_action, world_heads

INSTRUCTION = "could you make him walk forward"
JOINTS = ["mixamorig:RightHand", "mixamorig:LeftHand", "mixamorig:Head", "mixamorig:LeftFoot"]


def speak(text: str, path: Path) -> Path:
    """``text`` spoken by espeak-ng (en-us, 150 wpm) into a WAV, as the corpus builder calls it."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (Debian package espeak-ng, scripts/apt/speech.txt): it synthesises the "
                    "spoken instruction of this test")  # fmt: skip
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> Path:
    return speak(INSTRUCTION, tmp_path_factory.mktemp("voice") / "instruction.wav")


@pytest.fixture(scope="module")
def silent(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("voice") / "silent.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(bytes(2 * 32000))
    return path


@pytest.fixture(scope="module")
def voice_backend(tmp_path_factory):
    """A real backend (``baton serve`` from .venv) with the shipped text-to-motion and speech weights."""
    process = start_backend(tmp_path_factory.mktemp("voice-backend"), free_port())
    yield process.url, process.token
    stop(process)


@pytest.fixture
def voice_prefs(addon, voice_backend):
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.backend_url, prefs.token = voice_backend
    yield prefs
    prefs.property_unset("backend_url")
    prefs.property_unset("token")


def _settings(scene, recording: Path, **values):
    settings = scene.baton
    defaults = {"voice_source": "FILE", "voice_path": str(recording), "voice_mode": "end2end", "text_seconds": 3.0,
                "text_seed": 1, "text_samples": 1, "target": "ACTIVE"}  # fmt: skip
    for name, value in {**defaults, **values}.items():
        setattr(settings, name, value)
    return settings


def _run(addon, wait_jobs):
    assert bpy.ops.baton.generate_voice() == {"FINISHED"}
    job = addon.jobs.runner().latest("generate_voice")
    assert job.active, "the operator only starts the job"
    wait_jobs(600)
    return job


def _travel(obj, frames) -> float:
    heads = world_heads(obj, JOINTS, frames)
    assert np.isfinite(heads).all()
    return float(np.linalg.norm(heads - heads.mean(0), axis=2).max())


@pytest.mark.slow
def test_a_recording_through_the_voice_control_onto_a_mixamo_rig_then_undo_restores(addon, clean_scene, voice_prefs,
                                                                                   wait_jobs, spoken):  # fmt: skip
    obj = build_mixamo_rig()
    give_idle_action(obj)
    settings = _settings(clean_scene, spoken)
    bpy.ops.ed.undo_push(message="mixamo rig with Idle")
    rest = world_heads(obj, JOINTS, [1])[0]

    job = _run(addon, wait_jobs)
    assert job.state == "done", job.message
    obj, action = settings.pending_object, settings.pending_action
    assert obj.name == "MixamoRig" and obj.animation_data.action == action and action.name != "Idle"
    frames = round(3.0 * 20)
    assert clean_scene.render.fps == 20 and tuple(action.frame_range) == (1.0, float(frames))
    assert _travel(obj, list(range(1, frames + 1, 3))) > 0.05, "Mixamo bones must move"
    assert not np.allclose(world_heads(obj, JOINTS, [1])[0], rest, atol=1e-3), "the pose is not the rest pose"
    assert settings.voice_heard.startswith("Understood as: ") and settings.voice_heard[16:-1] in action.name
    assert {"upload_s", "backend_s", "transfer_s", "keyframe_write_s"} <= set(job.timings)
    drawn = record_panel(bpy.types.BATON_PT_generate_voice)
    assert any(n.kind == "label" and n.text.startswith("Understood as:") for n in drawn.walk()), "heard is shown"

    action_name = action.name
    bpy.ops.ed.undo()  # one step: the whole result, what was heard included
    obj = bpy.data.objects["MixamoRig"]
    scene = bpy.context.scene
    assert obj.animation_data.action.name == "Idle"
    assert action_name not in bpy.data.actions and [a.name for a in bpy.data.actions] == ["Idle"]
    assert scene.render.fps == 24 and scene.baton.pending_action is None and scene.baton.voice_heard == ""


@pytest.mark.slow
def test_the_sound_strip_by_the_cascaded_path_shows_the_transcript_then_push_to_nla(addon, clean_scene, voice_prefs,
                                                                                   wait_jobs, spoken):  # fmt: skip
    obj = build_mixamo_rig()
    give_idle_action(obj)
    clean_scene.sequence_editor_create()
    strips = clean_scene.sequence_editor.strips if hasattr(clean_scene.sequence_editor, "strips") else \
        clean_scene.sequence_editor.sequences  # fmt: skip
    strips.new_sound("instruction", str(spoken), 1, 1)
    settings = _settings(clean_scene, spoken, voice_source="STRIP", voice_path="", voice_mode="cascaded",
                         text_samples=2)  # fmt: skip
    job = _run(addon, wait_jobs)
    assert job.state == "done", job.message
    assert settings.voice_heard.startswith("Heard: ") and "walk" in settings.voice_heard.lower()
    assert len(settings.pending_variations) == 2 and "walk" in settings.pending_action.name.lower()
    assert _travel(obj, list(range(1, 61, 3))) > 0.05
    assert bpy.ops.baton.result(action="NLA") == {"FINISHED"}
    assert obj.animation_data.action.name == "Idle" and len(obj.animation_data.nla_tracks["Baton"].strips) == 1
    assert settings.pending_action is None


@pytest.mark.slow
def test_a_silent_recording_fails_with_the_reason_and_nothing_lands(addon, clean_scene, voice_prefs, wait_jobs,
                                                                   silent):  # fmt: skip
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    settings = _settings(clean_scene, silent)
    job = _run(addon, wait_jobs)
    assert job.state == "failed" and "the recording is silent" in job.message, job.message
    assert settings.last_message_is_error and settings.pending_action is None and settings.voice_heard == ""
    assert obj.animation_data.action == idle and [a.name for a in bpy.data.actions] == ["Idle"]
    drawn = record_panel(bpy.types.BATON_PT_generate_voice)
    assert any(n.kind == "label" and "silent" in n.text for n in drawn.walk()), "the reason is shown in the panel"


@pytest.mark.slow
def test_the_microphone_without_an_input_device_fails_with_a_clear_message_and_nothing_lands(
        addon, clean_scene, voice_prefs, wait_jobs, tmp_path):  # fmt: skip
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    settings = _settings(clean_scene, tmp_path / "unused.wav", voice_source="MIC", voice_path="",
                         voice_record_seconds=2.0)  # fmt: skip
    drawn = record_panel(bpy.types.BATON_PT_generate_voice)
    assert any(n.kind == "label" and "Recorded by the backend" in n.text for n in drawn.walk())
    job = _run(addon, wait_jobs)  # this machine has no microphone
    assert job.state == "failed", job.message
    assert "no input device" in job.message or "PortAudio is not installed" in job.message, job.message
    assert settings.last_message_is_error and settings.pending_action is None
    assert obj.animation_data.action == idle and [a.name for a in bpy.data.actions] == ["Idle"]


def test_no_recording_is_refused_before_any_job(addon, clean_scene, tmp_path):
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    before = addon.jobs.runner().latest("generate_voice")
    cases = [({"voice_path": ""}, "choose a recording first"),
             ({"voice_path": str(tmp_path / "missing.wav")}, "recording not found"),
             ({"voice_source": "STRIP", "voice_path": ""}, "the scene has no sound strip")]  # fmt: skip
    for values, message in cases:
        settings = _settings(clean_scene, tmp_path / "unused.wav", **values)
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.baton.generate_voice()
        assert settings.last_message_is_error and message in settings.last_message
    assert addon.jobs.runner().latest("generate_voice") is before, "no job started"
    assert obj.animation_data.action == idle and [a.name for a in bpy.data.actions] == ["Idle"]


@pytest.mark.slow
def test_cancel_stops_the_voice_job(addon, clean_scene, voice_prefs, wait_jobs, spoken):
    obj = build_mixamo_rig()
    idle = give_idle_action(obj)
    _settings(clean_scene, spoken, text_seconds=9.0, text_samples=4)
    assert bpy.ops.baton.generate_voice() == {"FINISHED"}
    job = addon.jobs.runner().latest("generate_voice")
    while job.active and job.fraction < 0.03:  # until the backend's job is submitted
        addon.jobs.poll()
    drawn = record_panel(bpy.types.BATON_PT_generate_voice)
    assert len([n for n in drawn.walk() if n.kind == "progress"]) == 1
    assert bpy.ops.baton.cancel(kind="generate_voice") == {"FINISHED"}
    wait_jobs(120)
    assert job.state == "cancelled" and clean_scene.baton.pending_action is None
    assert obj.animation_data.action == idle and [a.name for a in bpy.data.actions] == ["Idle"]
    client = addon.server.make_client(voice_prefs.backend_url, voice_prefs.token)
    remote = [j for j in client.jobs() if j["kind"] == "generate_speech"][-1]
    deadline = time.monotonic() + 120
    while remote["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        remote = client.status(remote["id"])
    assert remote["state"] == "cancelled", "the backend's job stops too"
