"""Fixtures of the add-on tests (real bpy 5.0.1): the built zip installed as an extension, a real backend, helpers.

Blender's user folders point at a temporary directory (``BLENDER_USER_RESOURCES`` when bpy is not imported yet, and
the ``user_default`` extension repository's custom directory in any case); preferences are never saved.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def backend_env(config_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        XDG_CONFIG_HOME=str(config_home),
        XDG_DATA_HOME=str(config_home / "data"),
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        ORT_DISABLE_TELEMETRY="1",
        NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba")),
    )
    env.pop("BLENDER_USER_RESOURCES", None)
    return env


def start_backend(config_home: Path, port: int, *extra_args: str, timeout_s: float = 90.0,
                  env: dict[str, str] | None = None) -> subprocess.Popen:
    """``baton serve`` (the backend environment's ``python -m backend.commands.serve``) on ``port``, its config
    (token) under ``config_home``; waits until the port accepts connections."""
    python = REPO / ".venv" / "bin" / "python"
    log = open(config_home / "serve.log", "wb")  # noqa: SIM115 - closed with the process by the fixture
    process = subprocess.Popen(
        [str(python), "-m", "backend.commands.serve", "--host", "127.0.0.1", "--port", str(port), *extra_args,
         "--log-level", "warning"],
        env={**backend_env(config_home), **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"baton serve exited: {(config_home / 'serve.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise TimeoutError("baton serve did not answer")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def backend(tmp_path_factory):
    """A real backend (``baton serve`` from .venv) on a free port; yields ``(url, token)``."""
    home = tmp_path_factory.mktemp("backend-config")
    port = free_port()
    process = start_backend(home, port)
    token = (home / "baton" / "token").read_text().strip()
    yield f"http://127.0.0.1:{port}", token
    stop(process)


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
