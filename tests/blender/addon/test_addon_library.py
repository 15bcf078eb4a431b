"""Library search and Apply / Preview through a real backend whose library holds the CMU subject-131 clips."""

from __future__ import annotations

import subprocess

import bpy
import numpy as np
import pytest
from conftest import ADDON_MODULE, REPO, backend_env, free_port, start_backend, stop


@pytest.fixture(scope="module")
def library_backend(tmp_path_factory, shared_data):
    """A backend serving a fresh SQLite library with the three CMU 131 clips (permissive license)."""
    home = tmp_path_factory.mktemp("library-backend")
    url = f"sqlite:///{home / 'library.sqlite'}"
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-m", "backend.cli", "library", "import",
         str(shared_data / "cmu_mocap_subject131_bvh"), "--db", url, "--json"],
        env=backend_env(home), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    port = free_port()
    process = start_backend(home, port, "--library", url)
    yield f"http://127.0.0.1:{port}", (home / "baton" / "token").read_text().strip()
    stop(process)


@pytest.fixture
def library_prefs(addon, library_backend):
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.backend_url, prefs.token = library_backend
    yield prefs
    prefs.property_unset("backend_url")
    prefs.property_unset("token")


def _hit(settings, clip_id: str, name: str) -> None:
    item = settings.search_results.add()
    item.clip_id, item.name = clip_id, name
    settings.search_index = len(settings.search_results) - 1


def _moving(obj, bone: str, frames) -> float:
    scene = bpy.context.scene
    heads = []
    for frame in frames:
        scene.frame_set(frame)
        heads.append(np.array(obj.matrix_world @ obj.pose.bones[bone].head))
    heads = np.array(heads)
    return float(np.linalg.norm(heads - heads.mean(0), axis=1).max())


def test_apply_a_library_clip_onto_a_new_rig(addon, clean_scene, library_prefs, wait_jobs):
    settings = clean_scene.baton
    settings.target = "KIT21"
    _hit(settings, "1", "131_01")
    assert bpy.ops.baton.apply_hit(preview=False) == {"FINISHED"}
    wait_jobs(120)
    job = addon.jobs.runner().latest("apply_hit")
    assert job.state == "done", job.message
    rig = bpy.context.view_layer.objects.active
    assert rig.name.startswith("KIT21") and rig.animation_data.action is not None
    start, end = rig.animation_data.action.frame_range
    assert start == 1 and end > 100  # 131_01 lasts 8.3 s
    assert settings.pending_action is None, "Apply accepts at once"
    assert _moving(rig, "LF", range(1, int(end), 10)) > 0.1, "the walk moves the feet"


def test_preview_waits_for_reject(addon, clean_scene, library_prefs, wait_jobs):
    settings = clean_scene.baton
    settings.target = "SMPL24"
    _hit(settings, "2", "131_02")
    assert bpy.ops.baton.apply_hit(preview=True) == {"FINISHED"}
    wait_jobs(120)
    assert addon.jobs.runner().latest("apply_hit").state == "done"
    assert settings.pending_action is not None
    rig = settings.pending_object
    assert bpy.ops.baton.result(action="REJECT") == {"FINISHED"}
    assert rig.animation_data.action is None and len(bpy.data.actions) == 0


def test_unknown_clip_reports_the_backend_error(addon, clean_scene, library_prefs, wait_jobs):
    settings = clean_scene.baton
    settings.target = "SMPL24"
    _hit(settings, "999999", "ghost")
    bpy.ops.baton.apply_hit(preview=False)
    wait_jobs(60)
    job = addon.jobs.runner().latest("apply_hit")
    assert job.state == "failed" and "could not finish retargeting" in job.message
    assert settings.last_message_is_error
