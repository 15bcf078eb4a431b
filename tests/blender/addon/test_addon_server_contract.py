"""The add-on's own launcher (``blender_addon/server.py``, standard library only) starts the backend with the same
command-line contract as the backend's launcher (``backend/server_process.py``) that the CLI tests, benchmarks and
these Blender tests use: ``<python> -m backend.commands.serve`` with the address in ``BATON_HOST`` / ``BATON_PORT``."""

from __future__ import annotations

import bpy
import pytest
from conftest import ADDON_MODULE, VENV_PYTHON, free_port, server_process


@pytest.fixture
def prefs(addon):
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    yield prefs
    for name in ("backend_url", "python_path", "start_command"):
        prefs.property_unset(name)


def test_backend_python_starts_what_the_backend_launcher_starts(addon, prefs):
    port = free_port()
    prefs.backend_url, prefs.python_path = f"http://127.0.0.1:{port}", str(VENV_PYTHON)
    argv, env = addon.server.start_command()
    assert argv == server_process.serve_command(VENV_PYTHON)
    assert env == server_process.address_env("127.0.0.1", port)
    assert argv[1:3] == ["-m", server_process.SERVE_MODULE]
    assert set(env) == {server_process.HOST_ENV, server_process.PORT_ENV}


def test_a_start_command_gets_the_address_by_the_same_variables(addon, prefs):
    prefs.backend_url, prefs.start_command = "http://localhost:9123", "/opt/baton/bin/baton serve --workers 4"
    argv, env = addon.server.start_command()
    assert argv == ["/opt/baton/bin/baton", "serve", "--workers", "4"]  # the user's command, no flags added
    assert env == server_process.address_env("127.0.0.1", 9123)
