"""The job queue on real work: forward kinematics of a CMU BVH clip, chunk by chunk, in the worker threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from backend.jobs import JobContext, JobManager, JobNotFound, JobState, TooManyJobs
from backend.model_registry import ModelRegistry, ModelSpec
from backend.settings import Settings
from models.motion import forward_kinematics, load_bvh


def fk_pipeline(params: dict, context: JobContext) -> dict:
    """Forward kinematics of a BVH clip in chunks of frames, reporting progress (and so honouring cancel)."""
    motion = load_bvh(params["path"])
    chunk = params.get("chunk", 60)
    out = []
    for start in range(0, motion.num_frames, chunk):
        context.progress.update(start / motion.num_frames, "forward kinematics")
        stop = start + chunk
        positions, _ = forward_kinematics(motion.skeleton, motion.rotations[start:stop],
                                          motion.root_translation[start:stop])  # fmt: skip
        out.append(positions)
        time.sleep(params.get("pause_s", 0.0))
    positions = np.concatenate(out)
    return {"frames": int(positions.shape[0]), "max_error_m": float(np.abs(positions - motion.positions).max())}


def failing_pipeline(params: dict, context: JobContext) -> dict:
    raise ValueError("this clip has no frames at 0 fps")


def exploding_pipeline(params: dict, context: JobContext) -> dict:
    raise RuntimeError("kaboom")


def locked_pipeline(params: dict, context: JobContext) -> dict:
    """Holds the device lock for a while and records how many holders overlap."""
    with context.model_lock():
        params["inside"].append(1)
        params["peak"].append(len(params["inside"]))
        time.sleep(0.15)
        params["inside"].pop()
    return {}


@pytest.fixture()
def clip(shared_data: Path) -> Path:
    return shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh"


@pytest.fixture()
def manager(tmp_path: Path):
    settings = Settings(token="t" * 32, work_dir=tmp_path, workers=2, result_ttl_s=60)
    pipelines = {"fk": fk_pipeline, "fail": failing_pipeline, "explode": exploding_pipeline, "locked": locked_pipeline}
    jobs = JobManager(settings, ModelRegistry(settings), pipelines)
    yield jobs
    jobs.shutdown()


def test_fk_job_runs_off_the_caller_and_reports_progress(manager: JobManager, clip: Path):
    seen: list[float] = []
    job = manager.submit("fk", {"path": clip, "chunk": 100, "pause_s": 0.01})
    assert job.state in (JobState.queued, JobState.running)
    while job.state not in (JobState.succeeded, JobState.failed):
        seen.append(job.status()["progress"])
        time.sleep(0.005)
    assert job.state is JobState.succeeded, job.error
    motion = load_bvh(clip)
    assert job.result["frames"] == motion.num_frames
    assert job.result["max_error_m"] < 1e-4  # FK of the clip's own rotations reproduces its positions
    assert any(0.0 < p < 1.0 for p in seen) and seen == sorted(seen)
    status = job.status()
    assert status["progress"] == 1.0 and status["stage"] == "done" and status["eta_s"] == 0.0
    assert status["started_at"] >= status["created_at"] and status["finished_at"] >= status["started_at"]


def test_running_job_is_cancelled_at_its_next_step(manager: JobManager, clip: Path):
    job = manager.submit("fk", {"path": clip, "chunk": 20, "pause_s": 0.05})
    while job.status()["progress"] == 0.0:
        time.sleep(0.01)
    eta = job.status()["eta_s"]
    assert eta is not None and eta > 0
    manager.cancel(job.id)
    manager.wait(job.id, timeout=10)
    assert job.state is JobState.cancelled and job.result is None


def test_queued_job_is_cancelled_at_once_and_cleans_up(manager: JobManager, clip: Path, tmp_path: Path):
    busy = [manager.submit("fk", {"path": clip, "chunk": 20, "pause_s": 0.05}) for _ in range(2)]  # both workers
    marker = tmp_path / "upload.bin"
    marker.write_bytes(b"x")
    queued = manager.submit("fk", {"path": clip}, cleanup=[lambda: marker.unlink()])
    assert queued.state is JobState.queued
    manager.cancel(queued.id)
    assert queued.state is JobState.cancelled and not marker.exists()
    for job in busy:
        manager.cancel(job.id)
        manager.wait(job.id, timeout=10)


def test_failures_become_structured_errors(manager: JobManager):
    bad = manager.wait(manager.submit("fail", {}).id, timeout=5)
    assert bad.state is JobState.failed
    assert bad.error == {"error": "bad_input", "detail": "this clip has no frames at 0 fps", "hint": None}
    boom = manager.wait(manager.submit("explode", {}).id, timeout=5)
    assert boom.error["error"] == "internal_error" and "kaboom" in boom.error["detail"]
    with pytest.raises(KeyError, match="unknown job kind"):
        manager.submit("nope", {})


def test_one_model_lock_per_device(manager: JobManager):
    inside: list[int] = []
    peak: list[int] = []
    ids = [manager.submit("locked", {"inside": inside, "peak": peak}).id for _ in range(3)]
    for job_id in ids:
        assert manager.wait(job_id, timeout=10).state is JobState.succeeded
    assert max(peak) == 1  # two workers, but inference on one device never overlaps


def test_results_expire_after_the_ttl(manager: JobManager, clip: Path):
    job = manager.wait(manager.submit("fk", {"path": clip}).id, timeout=30)
    assert manager.get(job.id) is job
    assert manager.sweep(now=job.finished_at + 59) == 0
    assert manager.sweep(now=job.finished_at + 61) == 1
    with pytest.raises(JobNotFound):
        manager.get(job.id)


def test_job_limit(tmp_path: Path, clip: Path):
    settings = Settings(token="t" * 32, work_dir=tmp_path, workers=1, max_jobs=2)
    jobs = JobManager(settings, ModelRegistry(settings), {"fk": fk_pipeline})
    try:
        first = jobs.submit("fk", {"path": clip, "chunk": 10, "pause_s": 0.05})
        jobs.submit("fk", {"path": clip})
        with pytest.raises(TooManyJobs):
            jobs.submit("fk", {"path": clip})
        jobs.cancel(first.id)
        jobs.wait(first.id, timeout=10)
        jobs.submit("fk", {"path": clip})  # a finished job makes room
    finally:
        jobs.shutdown()


def test_registry_loads_once_and_releases(tmp_path: Path):
    settings = Settings(token="t" * 32, work_dir=tmp_path)
    loads: list[str] = []

    class Model:
        closed = False

        def close(self):
            self.closed = True

    def loader(settings, device):
        loads.append(device)
        time.sleep(0.05)
        return Model()

    registry = ModelRegistry(settings, [ModelSpec("toy", "test", loader)])
    got: list[Model] = []
    threads = [threading.Thread(target=lambda: got.append(registry.get("toy"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["cpu"] and len({id(m) for m in got}) == 1
    assert registry.loaded() == ["toy"] and registry.describe()["toy"]["loaded"]
    assert registry.release() == ["toy"] and got[0].closed and registry.loaded() == []
    registry.get("toy")
    assert len(loads) == 2
    with pytest.raises(KeyError, match="unknown model"):
        registry.get("nope")
