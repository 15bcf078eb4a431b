"""Non-blocking jobs: work on a worker thread, results applied on Blender's main thread from a ``bpy.app.timers`` poll.

A :class:`Job` has two halves:

- ``work(job) -> result`` runs on a daemon worker thread. It must not touch ``bpy`` data. It reports progress with
  ``job.update(fraction, stage)``, which raises :class:`JobCancelled` once the user pressed Cancel, so work stops at
  the next step (HTTP jobs also cancel the backend's job then).
- ``apply(result) -> str`` runs on the main thread inside :func:`poll` (the timer), writes Blender data and returns the
  message shown in the panel and the info log.

Errors never propagate into Blender's event loop: an exception in either half marks the job ``failed`` with a message
meant for the user (``str(exc)``; unexpected exception types also get their type name, and the traceback goes to
stderr). The panel shows the latest job of each kind with its progress bar, Cancel button, or error.

Blender only calls timers from its event loop; the ``bpy`` module (tests, ``baton bench addon``) has none, so callers
there drive :func:`poll` themselves, exactly as the timer would.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bpy

POLL_INTERVAL_S = 0.1

#: Exceptions whose message is already written for the user (no type name added).
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, ConnectionError, TimeoutError, RuntimeError)


class JobCancelled(Exception):
    """Raised inside a job's work when the user asked it to stop."""


@dataclass
class Job:
    """One long operation. ``state``: ``running`` -> ``applying`` -> ``done`` | ``failed`` | ``cancelled``.

    Attributes:
        kind: what the panel groups jobs by (``generate``, ``search``, ``apply_hit``, ``probe``).
        label: shown beside the progress bar.
        work: worker-thread half (see module docstring).
        apply: main-thread half; ``None`` just stores the result.
        fraction, stage: progress in [0, 1] and the current stage name (written by the worker).
        message: the final message (success or error).
        timings: seconds per named phase, filled by ``work``/``apply`` (for ``baton bench addon``).
        silent: no info-log report (background probes).
    """

    kind: str
    label: str
    work: Callable[[Job], Any]
    apply: Callable[[Any], str] | None = None
    silent: bool = False
    state: str = "running"
    fraction: float = 0.0
    stage: str = "starting"
    message: str = ""
    result: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    started_at: float = field(default_factory=time.perf_counter)
    finished_at: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _outcome: tuple[str, Any] | None = field(default=None, repr=False)

    def update(self, fraction: float | None = None, stage: str | None = None) -> None:
        """Record progress from the worker; raises :class:`JobCancelled` if Cancel was pressed."""
        if self._cancel.is_set():
            raise JobCancelled(f"cancelled during {stage or self.stage}")
        if fraction is not None:
            self.fraction = min(1.0, max(0.0, float(fraction)))
        if stage is not None:
            self.stage = stage

    def cancel(self) -> None:
        """Ask the work to stop (it notices at its next :meth:`update`)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def active(self) -> bool:
        return self.state in ("running", "applying")

    def _run(self) -> None:
        try:
            self._outcome = ("ok", self.work(self))
        except JobCancelled as exc:
            self._outcome = ("cancelled", str(exc))
        except BaseException as exc:  # noqa: BLE001 - reported to the user on the main thread, never lost
            self._outcome = ("error", _describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, USER_ERRORS):
        return str(exc) or type(exc).__name__
    traceback.print_exception(exc, file=sys.stderr)
    return f"{type(exc).__name__}: {exc}"


class JobRunner:
    """Owns the jobs of one add-on registration; :func:`poll` drives it from the main thread."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.listeners: list[Callable[[Job], None]] = []

    def submit(self, job: Job) -> Job:
        """Start ``job`` on a worker thread and make sure the timer polls it.

        Raises:
            RuntimeError: if a job of the same kind is still running (one at a time per kind).
        """
        if any(j.active and j.kind == job.kind for j in self.jobs):
            raise RuntimeError(f"a {job.kind} job is already running; wait for it or cancel it")
        self.jobs = [j for j in self.jobs if j.active or j.kind != job.kind] + [job]
        job._thread = threading.Thread(target=job._run, name=f"baton-{job.kind}", daemon=True)
        job._thread.start()
        ensure_timer()
        return job

    def latest(self, kind: str) -> Job | None:
        """The newest job of ``kind`` (active or finished), for the panel."""
        for job in reversed(self.jobs):
            if job.kind == kind:
                return job
        return None

    def busy(self) -> bool:
        return any(j.active for j in self.jobs)

    def cancel_all(self) -> None:
        for job in self.jobs:
            job.cancel()

    def poll(self) -> bool:
        """Finish every job whose worker returned: run its ``apply`` here (main thread). Returns whether any job
        is still active."""
        for job in list(self.jobs):
            if job.state != "running" or job._outcome is None:
                continue
            status, value = job._outcome
            if status == "ok":
                job.state = "applying"
                job.stage = "applying"
                try:
                    started = time.perf_counter()
                    job.message = job.apply(value) if job.apply else "done"
                    job.timings.setdefault("apply_s", time.perf_counter() - started)
                    job.result, job.state, job.fraction = value, "done", 1.0
                except BaseException as exc:  # noqa: BLE001 - shown in the panel and the info log
                    job.state, job.message = "failed", _describe(exc)
            else:
                job.state = "cancelled" if status == "cancelled" else "failed"
                job.message = "Cancelled" if status == "cancelled" else value
            job.finished_at = time.perf_counter()
            for listener in list(self.listeners):
                listener(job)
        return self.busy()

    def shutdown(self, join_timeout_s: float = 2.0) -> None:
        """Cancel everything and wait briefly for worker threads (they are daemons, so none outlives Blender)."""
        self.cancel_all()
        deadline = time.monotonic() + join_timeout_s
        for job in self.jobs:
            if job._thread is not None:
                job._thread.join(max(0.0, deadline - time.monotonic()))
        self.jobs.clear()
        self.listeners.clear()


_runner: JobRunner | None = None


def runner() -> JobRunner:
    """The runner of the current registration (created on first use, dropped by :func:`shutdown`)."""
    global _runner
    if _runner is None:
        _runner = JobRunner()
    return _runner


def poll() -> float | None:
    """The ``bpy.app.timers`` callback: finish jobs, redraw the sidebar; unregisters itself when idle."""
    active = runner().poll()
    _tag_redraw()
    return POLL_INTERVAL_S if active else None


def ensure_timer() -> None:
    """Register :func:`poll` as a timer if it is not already."""
    if not bpy.app.timers.is_registered(poll):
        # persistent: loading another .blend while a job runs must not drop the job (its result then reports that
        # the armature is gone instead of landing somewhere else).
        bpy.app.timers.register(poll, first_interval=POLL_INTERVAL_S, persistent=True)


def shutdown() -> None:
    """Called by ``unregister``: cancel jobs, join workers, remove the timer. Leaves no state behind."""
    global _runner
    if _runner is not None:
        _runner.shutdown()
        _runner = None
    if bpy.app.timers.is_registered(poll):
        bpy.app.timers.unregister(poll)


def _tag_redraw() -> None:
    window_manager = getattr(bpy.context, "window_manager", None)
    if window_manager is None:
        return
    for window in window_manager.windows:
        screen = window.screen
        if screen is None:
            continue
        for area in screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
