"""The job queue: long work (conducting, retargeting, search) runs off the event loop in a thread pool.

A job is submitted with a kind and validated parameters and gets an id at once; clients poll its status (progress
0..1, stage name, ETA), may cancel it, and fetch its result. Jobs belong to the server, not to the HTTP request
that submitted them, so they survive the client disconnecting; finished jobs and their results are kept for
``settings.result_ttl_s`` seconds. Cancellation is cooperative: :class:`models.progress.Progress` raises
:class:`~models.progress.Cancelled` at the pipeline's next ``update``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from backend.errors import BatonError, NotAvailableError
from backend.model_registry import ModelRegistry
from backend.settings import Settings
from models.progress import Cancelled, Progress

log = logging.getLogger(__name__)


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled})


class JobNotFound(KeyError):
    """No job with that id (never existed, or its result expired)."""


class TooManyJobs(RuntimeError):
    """The server holds ``settings.max_jobs`` unfinished jobs already."""


@dataclass
class JobContext:
    """What a pipeline gets besides its parameters.

    Attributes:
        job_id: the job's id.
        progress: call ``progress.update(fraction, stage)`` between steps (raises ``Cancelled`` on cancel).
        settings: the server's settings.
        models: the model registry (lazy instances; :meth:`model_lock` around inference).
    """

    job_id: str
    progress: Progress
    settings: Settings
    models: ModelRegistry

    @contextlib.contextmanager
    def model_lock(self, device: str | None = None) -> Iterator[None]:
        """Hold the inference lock of ``device`` (default: the configured device) while the block runs."""
        stage = self.progress.stage
        lock = self.models.device_lock(device)
        if not lock.acquire(blocking=False):
            self.progress.update(self.progress.fraction, "waiting for the model")
            while not lock.acquire(timeout=0.1):
                self.progress.update(self.progress.fraction)  # raises Cancelled while waiting
            self.progress.update(self.progress.fraction, stage)
        try:
            yield
        finally:
            lock.release()


#: A pipeline: ``pipeline(params, context) -> JSON-serialisable result``.
Pipeline = Callable[[Any, JobContext], dict]


@dataclass(eq=False)
class Job:
    """One unit of work and its outcome. Times are Unix seconds."""

    id: str
    kind: str
    params: Any
    progress: Progress
    state: JobState = JobState.queued
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: dict | None = None
    error: dict | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    future: Future | None = None
    done_callbacks: list[Callable[[], None]] = field(default_factory=list)

    def status(self) -> dict:
        """A JSON-serialisable snapshot (the ``JobStatus`` schema)."""
        running = self.state is JobState.running
        eta = self.progress.eta_s() if running else (0.0 if self.state is JobState.succeeded else None)
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "progress": round(self.progress.fraction, 4),
            "stage": self.progress.stage,
            "eta_s": None if eta is None else round(eta, 3),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
        }


class JobManager:
    """Runs jobs in a thread pool of ``settings.workers`` threads and keeps them for ``settings.result_ttl_s``."""

    def __init__(self, settings: Settings, models: ModelRegistry, pipelines: dict[str, Pipeline]) -> None:
        self.settings = settings
        self.models = models
        self.pipelines = dict(pipelines)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="baton-job")
        self._closed = False

    # -- submitting and querying ---------------------------------------------------------------------------------
    def submit(self, kind: str, params: Any, cleanup: list[Callable[[], None]] | None = None) -> Job:
        """Queue a job of ``kind``; returns it (state ``queued``). ``cleanup`` callables run once it finishes
        (e.g. deleting an uploaded file), also when it is cancelled before starting.

        Raises:
            KeyError: for an unknown kind.
            TooManyJobs: when ``settings.max_jobs`` unfinished jobs exist.
            RuntimeError: after :meth:`shutdown`.
        """
        if kind not in self.pipelines:
            raise KeyError(f"unknown job kind {kind!r}; known: {', '.join(sorted(self.pipelines))}")
        self.sweep()
        job = Job(id=uuid.uuid4().hex, kind=kind, params=params, progress=Progress(), cleanup=list(cleanup or ()))
        with self._lock:
            if self._closed:
                raise RuntimeError("the job manager is shut down")
            if len(self._jobs) >= self.settings.max_jobs:
                self._evict_finished_locked(len(self._jobs) - self.settings.max_jobs + 1)
            if len(self._jobs) >= self.settings.max_jobs:
                limit = self.settings.max_jobs
                raise TooManyJobs(f"{len(self._jobs)} jobs are queued or running; the limit is {limit}")
            job.progress.stage = "queued"
            self._jobs[job.id] = job
        job.future = self._executor.submit(self._run, job)
        return job

    def get(self, job_id: str) -> Job:
        """The job with ``job_id``. Raises :class:`JobNotFound` (unknown or expired)."""
        self.sweep()
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def list(self) -> list[Job]:
        """All jobs kept now, oldest first."""
        self.sweep()
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_at)

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop. A queued job is cancelled at once; a running one at its next progress update; a
        finished job is left as it is. Returns the job."""
        job = self.get(job_id)
        job.progress.cancel()
        run_cleanup = False
        with self._lock:
            if job.state is JobState.queued and job.future is not None and job.future.cancel():
                self._finish_locked(job, JobState.cancelled)
                run_cleanup = True
        if run_cleanup:
            self._cleanup(job)
        return job

    def add_done_callback(self, job: Job, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once ``job`` has finished (at once if it has); it runs in the finishing thread."""
        with self._lock:
            if job.state not in FINISHED:
                job.done_callbacks.append(callback)
                return
        callback()

    def remove_done_callback(self, job: Job, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in job.done_callbacks:
                job.done_callbacks.remove(callback)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job finishes (tests, the embedded bench). Raises ``TimeoutError``."""
        job = self.get(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while job.state not in FINISHED:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state.value} after {timeout} s")
            time.sleep(0.01)
        return job

    # -- housekeeping --------------------------------------------------------------------------------------------
    def sweep(self, now: float | None = None) -> int:
        """Forget finished jobs older than ``settings.result_ttl_s``; returns how many were dropped."""
        now = time.time() if now is None else now
        ttl = self.settings.result_ttl_s
        with self._lock:
            expired = [j for j in self._jobs.values() if j.finished_at is not None and now - j.finished_at > ttl]
            for job in expired:
                del self._jobs[job.id]
        return len(expired)

    def _evict_finished_locked(self, count: int) -> None:
        finished = sorted((j for j in self._jobs.values() if j.state in FINISHED), key=lambda j: j.finished_at or 0)
        for job in finished[:count]:
            del self._jobs[job.id]

    def shutdown(self, wait: bool = True) -> None:
        """Cancel every unfinished job and stop the worker threads."""
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.state not in FINISHED:
                self.cancel(job.id)
        self._executor.shutdown(wait=wait, cancel_futures=True)

    # -- running -------------------------------------------------------------------------------------------------
    def _finish_locked(self, job: Job, state: JobState, result: dict | None = None, error: dict | None = None):
        job.state, job.result, job.error, job.finished_at = state, result, error, time.time()
        callbacks, job.done_callbacks = job.done_callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("done callback of job %s failed", job.id)

    def _cleanup(self, job: Job) -> None:
        for step in job.cleanup:
            try:
                step()
            except Exception:
                log.exception("cleanup of job %s failed", job.id)
        job.cleanup.clear()

    def _run(self, job: Job) -> None:
        with self._lock:
            if job.state is not JobState.queued:
                return
            job.state, job.started_at = JobState.running, time.time()
            job.progress.started_at = time.monotonic()
        context = JobContext(job.id, job.progress, self.settings, self.models)
        state, result, error = JobState.failed, None, None
        try:
            job.progress.update(0.0, "starting")
            result = self.pipelines[job.kind](job.params, context)
            state = JobState.succeeded
        except Cancelled:
            state = JobState.cancelled
        except NotAvailableError as exc:
            error = {"error": "not_available", "detail": str(exc), "hint": "see GET /capabilities"}
        except (BatonError, ValueError, TypeError, FileNotFoundError, KeyError) as exc:
            error = {"error": getattr(exc, "code", "bad_input"), "detail": str(exc).strip("'\""), "hint": None}
        except Exception as exc:  # the job fails; the server keeps serving
            log.exception("job %s (%s) failed", job.id, job.kind)
            error = {"error": "internal_error", "detail": f"{type(exc).__name__}: {exc}", "hint": "see the server log"}
        finally:
            if state is JobState.succeeded:
                job.progress.fraction, job.progress.stage = 1.0, "done"
            self._cleanup(job)  # before the state turns terminal: a client that sees "succeeded" sees no leftovers
            with self._lock:
                self._finish_locked(job, state, result, error)
            log.info("job %s (%s) %s after %.3f s%s", job.id, job.kind, state.value, job.finished_at - job.started_at,
                     f": {error['detail']}" if error else "")  # fmt: skip
