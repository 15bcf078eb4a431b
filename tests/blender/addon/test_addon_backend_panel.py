"""Start / Stop a local backend from Blender, and Start Automatically when a job finds none."""

from __future__ import annotations

import bpy
import pytest
from conftest import ADDON_MODULE, REPO, free_port
from panel_snapshot import record_panel, texts


@pytest.fixture
def local_backend_prefs(addon, tmp_path, monkeypatch):
    """Preferences that start ``python -m backend.commands.serve`` from .venv on a free port; the child process
    inherits a temporary config/data home (token, library) through the environment."""
    for name, value in (("XDG_CONFIG_HOME", tmp_path / "config"), ("XDG_DATA_HOME", tmp_path / "data"),
                        ("PYTHONPATH", REPO), ("HF_HUB_OFFLINE", "1")):  # fmt: skip
        monkeypatch.setenv(name, str(value))
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.backend_url, prefs.token = f"http://127.0.0.1:{free_port()}", ""
    prefs.python_path = str(REPO / ".venv" / "bin" / "python")
    yield prefs
    addon.server.stop_local()
    for name in ("backend_url", "token", "python_path", "auto_start"):
        prefs.property_unset(name)


def test_start_check_and_stop_the_local_backend(addon, clean_scene, local_backend_prefs, wait_jobs):
    assert bpy.ops.baton.backend(action="START") == {"FINISHED"}
    process = addon.server.local_process()
    assert process is not None
    assert addon.server.status().state == "starting"
    wait_jobs(180)  # the probe retries until the new server answers
    status = addon.server.status()
    assert status.state == "online", status.detail
    assert "procedural" in str(status.capabilities.get("models", {}))
    drawn = texts(record_panel(bpy.types.BATON_PT_backend))
    assert "Online" in drawn and "Stop" in drawn and "Start" not in drawn
    assert "procedural" in drawn and any(t.startswith("Device: cpu") for t in drawn)
    for name, info in status.capabilities["models"].items():
        if not name.startswith("conductor:"):
            continue
        clean_scene.baton.model = name.split(":")[1]
        warning = [t for t in texts(record_panel(bpy.types.BATON_PT_generate)) if "Not available" in t]
        assert bool(warning) == (not info["available"]), (name, info, warning)

    assert bpy.ops.baton.backend(action="STOP") == {"FINISHED"}
    assert process.poll() is not None and addon.server.local_process() is None
    assert addon.server.status().state == "offline"


def test_start_automatically_when_a_job_needs_the_backend(addon, clean_scene, local_backend_prefs, wait_jobs):
    local_backend_prefs.auto_start = True
    settings = clean_scene.baton
    settings.target = "SMPL24"
    item = settings.search_results.add()
    item.clip_id, item.name = "1", "clip"
    assert addon.server.local_process() is None
    assert bpy.ops.baton.apply_hit(preview=False) == {"FINISHED"}
    wait_jobs(180)
    job = addon.jobs.runner().latest("apply_hit")
    assert addon.server.local_process() is not None, "the job started the backend"
    # The new backend's library is empty, so it answers that the clip is unknown: proof it was reached.
    assert job.state == "failed" and "could not finish retargeting" in job.message, job.message
