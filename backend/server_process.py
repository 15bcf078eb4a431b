"""Start the real backend (``python -m backend.cli serve``) in a child process on a free loopback port.

Used by the server tests and ``baton bench serve``: the server gets its own config folder (``XDG_CONFIG_HOME``), so
its token is created there on first start.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A running server: its URL, token and folders; :meth:`stop` ends it."""

    url: str
    port: int
    token: str
    config_dir: Path
    work_dir: Path
    process: subprocess.Popen

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 20 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def server_env(config_home: Path, work_dir: Path) -> dict[str, str]:
    """The child's environment: its own config, data and work folders (nothing written to the user's), offline
    model hubs, no inherited BATON_*."""
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(config_home), XDG_DATA_HOME=str(work_dir / "data"), PYTHONPATH=str(REPO),
               HF_HUB_OFFLINE="1", ORT_DISABLE_TELEMETRY="1", BATON_WORK_DIR=str(work_dir),
               NUMBA_CACHE_DIR=env.get("NUMBA_CACHE_DIR", str(REPO / ".cache/numba")))  # fmt: skip
    for key in [k for k in env if k.startswith("BATON_") and k != "BATON_WORK_DIR"]:
        del env[key]
    return env


def start_server(tmp: Path, *args: str, startup_timeout: float = 90.0) -> LiveServer:
    """Run ``baton serve ARGS`` with ``XDG_CONFIG_HOME`` under ``tmp`` and wait until ``/health`` answers.

    Raises:
        RuntimeError: when the process exits or does not answer within ``startup_timeout`` s (log tail included).
    """
    config_home, work_dir = tmp / "config", tmp / "work"
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    with open(tmp / "server.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.commands.serve", "--port", str(port), *args],
            cwd=REPO, env=server_env(config_home, work_dir), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {(tmp / 'server.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if json.loads(response.read()).get("status") == "ok":
                    break
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=10)
            raise RuntimeError(f"server did not answer within {startup_timeout} s")
        time.sleep(0.2)
    token = (config_home / "baton" / "token").read_text().strip()
    return LiveServer(url, port, token, config_home / "baton", work_dir, process)
