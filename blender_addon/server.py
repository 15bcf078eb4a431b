"""The backend connection: settings, a status cache for the Backend panel, and a local ``baton serve`` subprocess.

Nothing here blocks Blender's main thread: health checks run as silent :mod:`jobs` (``kind="probe"``); starting the
local backend only spawns the process (``subprocess.Popen``) and the probe waits for it on a worker thread.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field

from . import jobs, preferences


@dataclass
class BackendStatus:
    """What the Backend panel shows. ``state``: ``unknown``, ``checking``, ``starting``, ``online``, ``offline``."""

    state: str = "unknown"
    detail: str = "not checked yet"
    url: str = ""
    version: str = ""
    capabilities: dict = field(default_factory=dict)
    checked_at: float = 0.0


_status = BackendStatus()
_process: subprocess.Popen | None = None
_process_log: str = ""


def status() -> BackendStatus:
    return _status


def connection(context=None) -> tuple[str, str]:
    """``(url, token)`` from the preferences; an empty token preference falls back to the token file."""
    prefs = preferences.get(context)
    url = prefs.backend_url.strip().rstrip("/") or preferences.DEFAULT_URL
    return url, prefs.token.strip() or read_token_file()


def read_token_file() -> str:
    """The token ``baton serve`` wrote to ``<user config dir>/baton/token`` (``""`` when there is none yet)."""
    from .client import read_token

    try:
        return read_token() or ""
    except OSError:
        return ""


def make_client(url: str, token: str, timeout_s: float = 60.0):
    """A :class:`client.BatonClient` for ``url``. Imported lazily so this module loads without the client."""
    from .client import BatonClient

    try:
        return BatonClient(url, token or None, timeout=timeout_s)
    except TypeError:  # a client without a timeout argument
        return BatonClient(url, token or None)


def offline_message(url: str, reason: str) -> str:
    """The one message every 'backend not answering' error uses (the panel adds a Start button beside it)."""
    return (
        f"No Baton backend is answering at {url} ({reason}). Start it with Baton > Backend > Start, "
        "or run 'baton serve' in a terminal."
    )


# --- health probe ---------------------------------------------------------------------------------------------


def check(context=None, wait_s: float = 0.0) -> jobs.Job | None:
    """Probe the backend on a worker thread (``wait_s`` > 0 keeps retrying that long, for a starting backend).

    Returns the probe job, or ``None`` when a probe is already running.
    """
    url, token = connection(context)
    if (probe := jobs.runner().latest("probe")) is not None and probe.active:
        return None
    if _status.state != "starting":
        _status.state = "checking"
    _status.url = url

    def work(job: jobs.Job) -> dict:
        client = make_client(url, token, timeout_s=5.0)
        deadline = time.monotonic() + wait_s
        while True:
            job.update(stage="connecting")
            try:
                health = client.health()
                client.token = client.token or read_token_file() or None  # a fresh server writes it on start
                client.timeout = 60.0  # a fresh server's first /capabilities imports its model packages
                try:
                    capabilities = client.capabilities()
                except Exception as exc:  # noqa: BLE001 - health answered; capabilities need a valid token
                    capabilities = {"error": str(exc)}
                return {"health": health, "capabilities": capabilities}
            except Exception as exc:  # noqa: BLE001 - any failure means "offline" with its reason
                if time.monotonic() >= deadline or (_process is not None and _process.poll() is not None):
                    raise ConnectionError(_reason(exc)) from None
                time.sleep(0.25)

    def apply(result: dict) -> str:
        health = result.get("health") or {}
        _status.state, _status.checked_at = "online", time.time()
        _status.version = str(health.get("version", "")) if isinstance(health, dict) else ""
        _status.capabilities = result.get("capabilities") or {}
        _status.detail = f"online at {url}" + (f" (baton {_status.version})" if _status.version else "")
        if "error" in _status.capabilities:  # it answers, but not to us: almost always the token
            _status.detail += f"; but it refused the capabilities request: {_status.capabilities['error']}"
        return _status.detail

    job = jobs.Job(kind="probe", label="Checking backend", work=work, apply=apply, silent=True)
    if _on_probe_finished not in jobs.runner().listeners:
        jobs.runner().listeners.append(_on_probe_finished)
    return jobs.runner().submit(job)


def _on_probe_finished(job: jobs.Job) -> None:
    if job.kind != "probe" or job.state == "done":
        return
    _status.state, _status.checked_at = "offline", time.time()
    _status.detail = job.message
    if _process is not None and _process.poll() is not None:
        _status.detail += f" The local backend exited with code {_process.returncode}; log: {_process_log}"


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__


# --- local backend process --------------------------------------------------------------------------------------


def start_command(context=None) -> tuple[list[str], dict[str, str]]:
    """``(argv, environment additions)`` that start a local backend on the preferences' URL port.

    The address travels as ``BATON_HOST`` / ``BATON_PORT`` (the server's settings variables), so a user's own
    Start Command needs no flags. With Backend Python the server module runs directly
    (``python -m backend.commands.serve``); otherwise ``baton serve`` from PATH.

    Raises:
        ValueError: when neither a start command, a backend Python, nor ``baton`` on PATH is available, or the URL is
            not a loopback http URL.
    """
    prefs = preferences.get(context)
    parsed = urllib.parse.urlparse(prefs.backend_url.strip() or preferences.DEFAULT_URL)
    if parsed.scheme != "http" or parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"a local backend serves http on this machine; the backend URL is {prefs.backend_url!r}")
    env = {"BATON_HOST": "127.0.0.1", "BATON_PORT": str(parsed.port or 8765)}
    if prefs.start_command.strip():
        return shlex.split(prefs.start_command), env
    if prefs.python_path.strip():
        return [os.path.abspath(bpy_abspath(prefs.python_path.strip())), "-m", "backend.commands.serve"], env
    baton = shutil.which("baton")
    if baton is None:
        raise ValueError(
            "cannot start a backend: set 'Start Command' or 'Backend Python' in the Baton add-on preferences "
            "(no 'baton' command on PATH)"
        )
    return [baton, "serve"], env


def bpy_abspath(path: str) -> str:
    """Resolve Blender's ``//`` relative paths (identity outside Blender)."""
    try:
        import bpy

        return bpy.path.abspath(path)
    except ImportError:
        return path


def spawn(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``command`` (with ``env`` added to the environment) as the local backend; returns at once, output goes
    to a log file in the temp folder.

    Safe from a worker thread. Raises ``RuntimeError`` if the process cannot be spawned.
    """
    global _process, _process_log
    if _process is not None and _process.poll() is None:
        return _process
    handle, log_path = tempfile.mkstemp(prefix="baton-backend-", suffix=".log")
    try:
        process = subprocess.Popen(  # noqa: S603 - the user's own configured command
            command, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    except OSError as exc:
        raise RuntimeError(f"could not start the backend with {command}: {exc}") from None
    finally:
        os.close(handle)
    _process, _process_log = process, log_path
    _status.state, _status.detail = "starting", f"starting (pid {process.pid}) ..."
    return process


def start_local(context=None) -> str:
    """Spawn the local backend (returns at once) and probe it until it answers. Returns a status message.

    Raises:
        ValueError: see :func:`start_command`; RuntimeError if the process cannot be spawned.
    """
    if (process := local_process()) is not None:
        return f"the local backend is already running (pid {process.pid})"
    process = spawn(*start_command(context))
    check(context, wait_s=float(preferences.get(context).startup_timeout_s))
    return f"started the local backend (pid {process.pid}); log: {_process_log}"


def local_process() -> subprocess.Popen | None:
    """The backend process this add-on started, if it is still running."""
    return _process if _process is not None and _process.poll() is None else None


def stop_local(timeout_s: float = 5.0) -> str:
    """Stop the backend this add-on started (terminate, then kill after ``timeout_s``). Never touches others."""
    global _process
    process, _process = _process, None
    if process is None or process.poll() is not None:
        return "no local backend started from Blender is running"
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout_s)
    _status.state, _status.detail = "offline", f"stopped the local backend (exit code {process.returncode})"
    return _status.detail


def shutdown() -> None:
    """``unregister``: stop our backend process and forget the status."""
    global _status
    stop_local()
    _status = BackendStatus()
