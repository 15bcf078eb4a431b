"""Fixtures of the add-on tests (real bpy 5.0.1): the built zip installed as an extension, a real backend, helpers.

Blender's user folders point at a temporary directory (``BLENDER_USER_RESOURCES`` when bpy is not imported yet, and
the ``user_default`` extension repository's custom directory in any case); preferences are never saved.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="baton-blender-tests-"))
if "bpy" not in sys.modules:
    os.environ.setdefault("BLENDER_USER_RESOURCES", str(_TMP / "blender-user"))

import bpy  # noqa: E402, I001 - bpy must come first: it puts addon_utils on sys.path
import addon_utils  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "scripts"))  # panel_snapshot: the layout recorder the panel tests use
sys.path.insert(0, str(REPO))
from backend import server_process  # noqa: E402 - the standard-library launcher of the backend tier

#: The backend environment's interpreter: backends run there (torch), never in Blender's.
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
ADDON_MODULE = "bl_ext.user_default.baton"
BRAHMS = "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"


def _user_repo():
    return next(r for r in bpy.context.preferences.extensions.repos if r.module == "user_default")


@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory) -> Path:
    sys.path.insert(0, str(REPO))
    import build_addon

    return build_addon.build(tmp_path_factory.mktemp("dist") / "baton.zip")


@pytest.fixture(scope="session")
def addon(addon_zip):
    """The extension installed from the zip with ``package_install_files`` and enabled; its package module."""
    prefs = bpy.context.preferences
    prefs.use_preferences_save = False
    repo = _user_repo()
    repo.use_custom_directory = True
    repo.custom_directory = str(_TMP / "extensions")
    bpy.ops.extensions.package_install_files(filepath=str(addon_zip), repo="user_default", enable_on_install=True)
    module = importlib.import_module(ADDON_MODULE)
    assert Path(module.__file__).parent == _TMP / "extensions" / "baton", "the installed copy must be the one loaded"
    yield module
    if addon_utils.check(ADDON_MODULE)[1]:
        addon_utils.disable(ADDON_MODULE)


@pytest.fixture
def clean_scene(addon):
    """An empty scene (objects, actions, armatures, strips removed) with default Baton settings and no jobs."""
    _wait_idle(addon, 30)
    for collection in (bpy.data.objects, bpy.data.armatures, bpy.data.actions):
        for item in list(collection):
            collection.remove(item)
    scene = bpy.context.scene
    if scene.sequence_editor is not None:
        scene.sequence_editor_clear()
    for name in list(scene.baton.keys()):
        scene.baton.property_unset(name)
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start, scene.frame_end = 1, 250
    yield scene


def _wait_idle(addon, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while addon.jobs.runner().busy():
        addon.jobs.poll()  # what Blender's timer does
        if time.monotonic() > deadline:
            addon.jobs.runner().cancel_all()
            raise TimeoutError("Baton jobs still running")
        time.sleep(0.05)


@pytest.fixture
def wait_jobs(addon):
    """``wait_jobs(timeout_s)``: drive the add-on's timer until no job is active (the bpy module has no event loop)."""
    return lambda timeout_s=300.0: _wait_idle(addon, timeout_s)


def free_port() -> int:
    return server_process.free_port()


def backend_env(config_home: Path) -> dict[str, str]:
    """The environment a backend child gets (:func:`backend.server_process.server_env`), for ``baton`` commands the
    tests run beside it: config under ``config_home/config``, data, cache and work under ``config_home/work``."""
    return server_process.server_env(config_home / "config", config_home / "work")


def start_backend(config_home: Path, port: int, *extra_args: str, timeout_s: float = 90.0,
                  env: dict[str, str] | None = None) -> server_process.LiveServer:
    """``baton serve`` from the backend environment (``.venv/bin/python -m backend.commands.serve``) on ``port``,
    started by the one launcher the backend tests and benchmarks use (:func:`backend.server_process.start_server`);
    its folders (token: ``.token``) live under ``config_home``; waits until ``/health`` answers."""
    return server_process.start_server(config_home, *extra_args, "--log-level", "warning", python=VENV_PYTHON,
                                       port=port, env=env, startup_timeout=timeout_s)  # fmt: skip


def stop(server: server_process.LiveServer) -> None:
    server.stop()


@pytest.fixture(scope="session")
def backend(tmp_path_factory):
    """A real backend (``baton serve`` from .venv) on a free port; yields ``(url, token)``."""
    server = start_backend(tmp_path_factory.mktemp("backend-config"), free_port())
    yield server.url, server.token
    server.stop()


@pytest.fixture
def connected(addon, backend):
    """Preferences pointing at the session backend."""
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.backend_url, prefs.token = backend
    yield prefs
    prefs.property_unset("backend_url")
    prefs.property_unset("token")


@pytest.fixture
def shared_audio(shared_data) -> Path:
    return shared_data / "librosa_example_audio" / BRAHMS
