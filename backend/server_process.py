"""The one launcher of the real backend in a child process: what the server tests, ``baton bench serve``,
``baton bench addon`` and the Blender-tier tests start. Standard library only (the Blender tier imports it).

The command-line contract is the one the add-on's own launcher (``blender_addon/server.py``, ``start_command``)
uses, and a Blender-tier test checks that the two agree:

- argv: ``<backend python> -m backend.commands.serve [FLAGS]`` (:func:`serve_command`; ``baton serve [FLAGS]`` is the
  same server behind the console script);
- address: ``BATON_HOST`` / ``BATON_PORT`` in the environment (:func:`address_env`; the server's settings variables,
  so a user's own start command needs no flags); flags, when given, win over them;
- readiness: ``GET /health`` answers ``{"status": "ok"}``; the bearer token is then in
  ``<XDG_CONFIG_HOME>/baton/token``.

Each child gets folders of its own (``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``, ``XDG_CACHE_HOME``, ``BATON_WORK_DIR``
under the folder the caller names), so nothing is written to the user's folders and its token is created on first
start.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The module ``python -m`` runs: the server's entry point (``backend.commands.serve.main``).
SERVE_MODULE = "backend.commands.serve"
#: Environment variables that carry the address (:class:`backend.settings.Settings` fields ``host`` / ``port``).
HOST_ENV, PORT_ENV = "BATON_HOST", "BATON_PORT"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(python: str | os.PathLike | None = None, *args: str) -> list[str]:
    """``[python, "-m", "backend.commands.serve", *args]``: the argv that starts a backend (``python`` defaults to
    this interpreter; the Blender tier passes the backend environment's ``.venv/bin/python``)."""
    return [str(python or sys.executable), "-m", SERVE_MODULE, *args]


def address_env(host: str, port: int) -> dict[str, str]:
    """``{"BATON_HOST": host, "BATON_PORT": "<port>"}``: the address as the server's settings variables."""
    return {HOST_ENV: str(host), PORT_ENV: str(int(port))}


@dataclass
class LiveServer:
    """A running server: its URL, token, folders and log; :meth:`stop` ends it."""

    url: str
    port: int
    token: str
    config_dir: Path
    work_dir: Path
    process: subprocess.Popen
    log_path: Path | None = None

    def log(self, tail: int = 3000) -> str:
        """The last ``tail`` characters of the server's output (``""`` when there is no log)."""
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return self.log_path.read_text(errors="replace")[-tail:]

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 20 s). Safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def server_env(config_home: Path, work_dir: Path, cache_home: Path | None = None,
               extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: its own config, data, cache and work folders (nothing written to the user's),
    offline model hubs, no inherited ``BATON_*``; then ``extra`` (which may set ``BATON_*`` or another
    ``XDG_CACHE_HOME``, e.g. to share an ONNX export between tests)."""
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(config_home), XDG_DATA_HOME=str(work_dir / "data"),
               XDG_CACHE_HOME=str(cache_home or work_dir / "cache"), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1",
               ORT_DISABLE_TELEMETRY="1", BATON_WORK_DIR=str(work_dir),
               NUMBA_CACHE_DIR=env.get("NUMBA_CACHE_DIR", str(REPO / ".cache/numba")))  # fmt: skip
    for key in [k for k in env if k.startswith("BATON_") and k != "BATON_WORK_DIR"]:
        del env[key]
    env.pop("BLENDER_USER_RESOURCES", None)  # a Blender-tier test's own folder is not the server's business
    env.update(extra or {})
    return env


def start_server(tmp: Path, *args: str, python: str | os.PathLike | None = None, port: int | None = None,
                 env: Mapping[str, str] | None = None, startup_timeout: float = 90.0) -> LiveServer:
    """Run ``python -m backend.commands.serve ARGS`` on 127.0.0.1 with its folders under ``tmp`` and wait until
    ``/health`` answers.

    Args:
        tmp: the server's folder: ``config/`` (token), ``work/`` (uploads, data, cache), ``server.log``.
        args: ``baton serve`` flags (``--root DIR``, ``--device cpu``, ...).
        python: the backend environment's interpreter (default: this one).
        port: the port (default: a free one); passed as ``BATON_PORT`` like the add-on does.
        env: extra environment variables for the child (see :func:`server_env`).
        startup_timeout: seconds to wait for ``/health``.

    Raises:
        ValueError: ``--host`` / ``--port`` among ``args`` (the address is this launcher's).
        RuntimeError: when the process exits or does not answer within ``startup_timeout`` s (log tail included).
    """
    if any(arg.split("=")[0] in ("--host", "--port") for arg in args):
        raise ValueError("start_server binds 127.0.0.1 on the port it is given (port=...); do not pass --host/--port")
    config_home, work_dir = tmp / "config", tmp / "work"
    port = free_port() if port is None else int(port)
    tmp.mkdir(parents=True, exist_ok=True)
    log_path = tmp / "server.log"
    child_env = {**server_env(config_home, work_dir, extra=env), **address_env("127.0.0.1", port)}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(serve_command(python, *args), cwd=REPO, env=child_env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if json.loads(response.read()).get("status") == "ok":
                    break
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=10)
            raise RuntimeError(f"server did not answer within {startup_timeout} s: {log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    token = (config_home / "baton" / "token").read_text().strip()
    return LiveServer(url, port, token, config_home / "baton", work_dir, process, log_path)
