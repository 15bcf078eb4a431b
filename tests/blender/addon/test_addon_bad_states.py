"""Bad states give clear messages and never block: missing audio, no armature, Edit Mode, no backend, dead backend."""

from __future__ import annotations

import time

import bpy
import pytest
from conftest import ADDON_MODULE, free_port
from panel_snapshot import record_panel, texts


@pytest.fixture
def no_backend(addon):
    """Preferences pointing at a loopback port where nothing listens."""
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.backend_url, prefs.token, prefs.auto_start = f"http://127.0.0.1:{free_port()}", "x", False
    yield prefs.backend_url
    for name in ("backend_url", "token", "auto_start"):
        prefs.property_unset(name)


def _armature(name: str = "Rig") -> bpy.types.Object:
    bpy.ops.object.armature_add()
    obj = bpy.context.active_object
    obj.name = name
    return obj


def test_missing_audio_file_is_refused_before_anything_changes(clean_scene, tmp_path):
    settings = clean_scene.baton
    settings.audio_path = str(tmp_path / "nope.ogg")
    settings.target = "SMPL24"
    with pytest.raises(RuntimeError, match="audio file not found: .*nope.ogg"):
        bpy.ops.baton.generate()
    assert len(bpy.data.objects) == 0, "no rig may be built for a job that cannot start"
    assert settings.last_message_is_error and "nope.ogg" in settings.last_message


def test_no_audio_chosen_and_no_sound_strip(clean_scene):
    with pytest.raises(RuntimeError, match="choose an audio file first"):
        bpy.ops.baton.generate()
    clean_scene.baton.audio_source = "STRIP"
    with pytest.raises(RuntimeError, match="no sound strip"):
        bpy.ops.baton.generate()


def test_no_armature_selected(clean_scene, shared_audio):
    clean_scene.baton.audio_path = str(shared_audio)
    with pytest.raises(RuntimeError, match="no armature selected"):
        bpy.ops.baton.generate()
    bpy.ops.mesh.primitive_cube_add()
    with pytest.raises(RuntimeError, match="'Cube' is a mesh, not an armature"):
        bpy.ops.baton.generate()


def test_armature_in_edit_mode(clean_scene, shared_audio):
    clean_scene.baton.audio_path = str(shared_audio)
    _armature("EditedRig")
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        with pytest.raises(RuntimeError, match="'EditedRig' is in Edit Mode"):
            bpy.ops.baton.generate()
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")


def test_no_backend_running_fails_fast_with_a_start_button(clean_scene, no_backend, wait_jobs, addon):
    settings = clean_scene.baton
    settings.search_query = "a person waves"
    started = time.perf_counter()
    assert bpy.ops.baton.search() == {"FINISHED"}
    assert time.perf_counter() - started < 0.1, "the operator must return at once"
    wait_jobs(10)
    job = addon.jobs.runner().latest("search")
    assert job.state == "failed"
    assert f"No Baton backend is answering at {no_backend}" in job.message
    assert settings.last_message_is_error and "No Baton backend is answering" in settings.last_message
    drawn = record_panel(bpy.types.BATON_PT_search)
    starts = [n for n in drawn.walk() if n.kind == "operator" and n.extra.get("properties") == {"action": "START"}]
    assert starts and starts[0].text == "Start Backend"
    assert "No Baton backend is answering" in " ".join(texts(drawn))


def test_backend_check_reports_offline(clean_scene, no_backend, wait_jobs, addon):
    assert bpy.ops.baton.backend(action="CHECK") == {"FINISHED"}
    wait_jobs(10)
    status = addon.server.status()
    assert status.state == "offline" and no_backend in status.detail
    drawn = record_panel(bpy.types.BATON_PT_backend)
    assert "Offline" in texts(drawn) and "Start" in texts(drawn)


def test_empty_query_and_search_by_action_without_armature(clean_scene):
    with pytest.raises(RuntimeError, match="type what you are looking for"):
        bpy.ops.baton.search()
    clean_scene.baton.search_mode = "ACTION"
    with pytest.raises(RuntimeError, match="no armature selected"):
        bpy.ops.baton.search()
    clean_scene.baton.search_mode = "VIDEO"
    with pytest.raises(RuntimeError, match="choose a video file first"):
        bpy.ops.baton.search()
    clean_scene.baton.video_path = "/nonexistent/walk.mp4"
    with pytest.raises(RuntimeError, match="video file not found: /nonexistent/walk.mp4"):
        bpy.ops.baton.search()
    clean_scene.baton.video_source = "STRIP"
    with pytest.raises(RuntimeError, match="the scene has no movie strip"):
        bpy.ops.baton.search()
