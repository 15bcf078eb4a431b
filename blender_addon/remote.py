"""The add-on's side of each backend job: requests, the worker-thread calls through :mod:`client`, and decoding.

Worker-thread code here never touches ``bpy`` data; the main-thread helpers (:func:`rig_of`,
:func:`evaluated_motion`) read the scene before a job starts. Generation from music runs as two backend jobs so each
phase is measurable and a custom bone mapping can be sent: ``conduct`` (music -> COCO-13 motion) then ``retarget``
(that motion -> the user's rig, with the mapping). Generation from text is one ``generate`` job: the backend generates
the variations and retargets them onto the rig itself (foot lock on). Phase times land in ``job.timings``:

- ``upload_s``: sending the audio file; ``backend_s``: the conduct job's compute time (server clock);
- ``retarget_solve_s``: the retarget job's compute time; ``transfer_s``: every other second spent on HTTP
  (submits, polling latency, result downloads) = wall time of the worker minus the two compute times and upload;
- ``keyframe_write_s`` (set on the main thread by :mod:`pipelines`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from . import rigs, server, space, wire
from .client import BackendUnavailable, BatonClientError

POLL_S = 0.15


@dataclass
class ConductRequest:
    audio_path: str
    model: str
    seed: int
    steps: int
    guidance: float | None
    rig: dict
    root: str
    foot_lock: bool
    smoothing: float
    mapping: dict[str, str] | None
    #: The procedural conductor's controls (``{"energy", "size", "legato"}``); empty for the learned models.
    controls: dict[str, float] = field(default_factory=dict)


@dataclass
class RetargetRequest:
    clip_id: str
    rig: dict
    root: str
    foot_lock: bool
    smoothing: float
    mapping: dict[str, str] | None


@dataclass
class GenerateTextRequest:
    """A Generate-from-Text job: the prompt, sampling settings and the target rig (``rig_of``)."""

    prompt: str
    seconds: float | None
    seed: int
    samples: int
    guidance: float
    rig: dict


@dataclass
class GenerateVoiceRequest:
    """A Voice job: the recording (a local file, uploaded; or ``None`` and ``record_seconds`` recorded by the
    backend from its default microphone), the speech path, sampling settings and the rig."""

    audio_path: str | None
    path: str
    seconds: float | None
    seed: int
    samples: int
    guidance: float
    rig: dict
    record_seconds: float | None = None


@dataclass
class SearchRequest:
    k: int
    text: str | None = None
    motion: dict | None = None
    video_path: str | None = None


@dataclass
class RigMotion:
    """A retarget solution for the user's rig (backend space; :mod:`apply` converts through :mod:`space`).

    Attributes:
        bone_names: ``J`` bone names of the rig, in the order of the arrays.
        rotations: ``(T, J, 4)`` float32 local rotations (w, x, y, z) relative to each bone's rest pose.
        root_translation: ``(T, 3)`` float32 metres.
        fps: frames per second.
    """

    bone_names: list[str]
    rotations: np.ndarray
    root_translation: np.ndarray
    fps: float
    foot_skate_after_cm: float = 0.0

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])


# --- main thread --------------------------------------------------------------------------------------------------


def rig_of(obj) -> dict:
    """The rest pose of armature ``obj`` as a ``TargetRig`` dict (backend space), via :mod:`rigs`."""
    return rigs.armature_rig_dict(obj)


def source_mapping(table: dict[str, str] | None, source_skeleton: str) -> dict[str, str] | None:
    """``{bone: canonical joint}`` -> ``{bone: source joint}`` for the job's source skeleton (``None`` passes)."""
    if table is None:
        return None
    from . import mapping

    return mapping.to_source_joints(table, source_skeleton)


def evaluated_motion(context, obj, max_frames: int = 300) -> dict:
    """The armature's evaluated joint positions over its action as a motion payload (backend space).

    Samples the action's frame range (at most ``max_frames`` frames, evenly), reading each pose bone's world head
    after ``scene.frame_set``; the scene's current frame is restored afterwards.

    Raises:
        ValueError: when the armature has no action.
    """
    anim = obj.animation_data
    if anim is None or anim.action is None:
        raise ValueError(f"'{obj.name}' has no action to search with: give it one, or search by text")
    scene = context.scene
    first, last = (int(round(v)) for v in anim.action.frame_range)
    step = max(1, int(np.ceil((last - first + 1) / max_frames)))
    frames = list(range(first, last + 1, step))
    bones = list(obj.pose.bones)
    positions = np.empty((len(frames), len(bones), 3), dtype=np.float32)
    current = scene.frame_current
    try:
        for t, frame in enumerate(frames):
            scene.frame_set(frame)
            world = obj.matrix_world
            for j, bone in enumerate(bones):
                positions[t, j] = world @ bone.head
    finally:
        scene.frame_set(current)
    rig = rigs.armature_rig_dict(obj)
    fps = scene.render.fps / scene.render.fps_base / step
    positions = space.points_to_backend(positions)
    rest = np.asarray(rig["rest_world"], dtype=np.float64)[:, :3, 3] if "rest_world" in rig else positions[0]
    parents = list(rig["parents"])
    offsets = np.array([rest[j] - (rest[p] if p >= 0 else 0.0) for j, p in enumerate(parents)], dtype=np.float32)
    return wire.encode_motion(
        wire.WireMotion(obj.name, list(rig["joint_names"]), parents, offsets, fps, positions.astype(np.float32))
    )


# --- worker thread ------------------------------------------------------------------------------------------------


def connect(job, *, start_command: tuple[list[str], dict[str, str]] | None, url: str, token: str,
            startup_timeout_s: float = 60.0):
    """A client whose backend answers ``/health``; spawns the local backend first when ``start_command`` is given.

    Raises:
        ConnectionError: with :func:`server.offline_message` when nothing answers.
    """
    job.update(0.0, "connecting")
    client = server.make_client(url, token)
    try:
        client.health()
        return client
    except BatonClientError as exc:
        if start_command is None:
            raise ConnectionError(server.offline_message(url, _reason(exc))) from None
    job.update(0.0, "starting the backend")
    server.spawn(*start_command)
    deadline = time.monotonic() + startup_timeout_s
    while True:
        job.update()
        try:
            client.health()
            client.token = client.token or server.read_token_file()
            return client
        except BatonClientError as exc:
            process = server.local_process()
            if time.monotonic() > deadline or process is None:
                raise ConnectionError(server.offline_message(url, _reason(exc))) from None
        time.sleep(0.25)


def follow(job, client, remote_id: str, span: tuple[float, float], what: str) -> dict:
    """Poll a backend job until it finishes, mirroring its progress into ``span`` of ours; Cancel cancels it.

    Returns the backend job's final status. Raises ``ConnectionError`` (backend died), ``RuntimeError`` (the job
    failed, with the server's detail and hint) or :class:`jobs.JobCancelled`.
    """
    from .jobs import JobCancelled

    low, high = span
    while True:
        with client_errors(client, what):
            status = client.status(remote_id)
        state = status["state"]
        stage = status.get("stage") if state == "running" else None  # "queued"/"done" say nothing to the user
        try:
            job.update(low + (high - low) * float(status.get("progress") or 0.0), stage or what)
        except JobCancelled:
            try:
                client.cancel(remote_id)
            except BatonClientError:
                pass
            raise
        if state == "succeeded":
            return status
        if state == "failed":
            error = status.get("error") or {}
            hint = f" {error['hint']}" if error.get("hint") else ""
            raise RuntimeError(f"the backend could not finish {what}: {error.get('detail', 'unknown error')}.{hint}")
        if state == "cancelled":
            raise JobCancelled(f"the backend cancelled {what}")
        time.sleep(POLL_S)


@contextlib.contextmanager
def client_errors(client, what: str) -> Iterator[None]:
    """Turn the client's exceptions into messages for the user: the backend vanished (``ConnectionError``) or
    refused the request (``RuntimeError`` with its detail and hint)."""
    try:
        yield
    except BackendUnavailable as exc:
        raise ConnectionError(
            f"Lost contact with the Baton backend at {client.url} while {what} ({_reason(exc)}). "
            "It may have stopped: start it again from Baton > Backend. Nothing was changed in the scene."
        ) from None
    except BatonClientError as exc:
        hint = f" {exc.hint}" if getattr(exc, "hint", None) else ""
        raise RuntimeError(f"the backend refused {what}: {exc.detail}.{hint}") from None


def _compute_s(status: dict) -> float:
    started, finished = status.get("started_at"), status.get("finished_at")
    return float(finished - started) if started is not None and finished is not None else 0.0


def _reason(exc: BaseException) -> str:
    return getattr(exc, "detail", None) or str(exc)


def _decode_solution(solution: dict) -> RigMotion:
    motion = wire.decode_motion(solution["motion"])
    if motion.rotations is None:
        raise ValueError("the backend's retarget solution has no rotations")
    root = motion.root_translation
    if root is None:
        root = np.zeros((motion.num_frames, 3), dtype=np.float32)
    return RigMotion(
        bone_names=list(solution.get("bone_names") or motion.joint_names),
        rotations=np.asarray(motion.rotations, dtype=np.float32),
        root_translation=np.asarray(root, dtype=np.float32),
        fps=motion.fps,
        foot_skate_after_cm=float(solution.get("foot_skate_after_cm") or 0.0),
    )


def _retarget(job, client, source: dict | None, clip_id: str | None, rig: dict, options: dict, span) -> RigMotion:
    job.update(span[0], "retargeting")
    remote_id = client.submit_retarget(source, source_clip_id=clip_id, target=rig, **options)
    status = follow(job, client, remote_id, span, "retargeting")
    job.timings["retarget_solve_s"] = _compute_s(status)
    job.update(span[1], "downloading")
    return _decode_solution(client.result(remote_id))


def run_conduct(job, client, request: ConductRequest) -> RigMotion:
    """Upload the music, generate, retarget onto the rig; returns the solution (worker thread)."""
    with client_errors(client, "generating the performance"):
        return _run_conduct(job, client, request)


def _run_conduct(job, client, request: ConductRequest) -> RigMotion:
    started = time.perf_counter()
    job.update(0.01, "uploading the music")
    upload_started = time.perf_counter()
    remote_id = client.submit_conduct(
        request.audio_path, model=request.model, seed=request.seed, steps=request.steps, guidance=request.guidance,
        **request.controls,
    )
    job.timings["upload_s"] = time.perf_counter() - upload_started
    job.update(0.05, "generating")
    status = follow(job, client, remote_id, (0.05, 0.8), "generating the performance")
    job.timings["backend_s"] = _compute_s(status)
    generated = client.result(remote_id)
    options = {"mapping": request.mapping, "root": request.root, "foot_lock": request.foot_lock,
               "smoothing": request.smoothing}  # fmt: skip
    solution = _retarget(job, client, generated["motion"], None, request.rig, options, (0.8, 0.97))
    elapsed = time.perf_counter() - started
    compute = job.timings["backend_s"] + job.timings["retarget_solve_s"] + job.timings["upload_s"]
    job.timings["transfer_s"] = max(0.0, elapsed - compute)
    job.timings["music_duration_s"] = float((generated.get("music") or {}).get("duration_s") or 0.0)
    return solution


def run_generate_text(job, client, request: GenerateTextRequest) -> list[RigMotion]:
    """Generate motion from the prompt on the backend, retargeted onto the rig there (one ``generate`` job); returns
    one solution per variation (worker thread)."""
    with client_errors(client, "generating motion from text"):
        started = time.perf_counter()
        job.update(0.02, "generating")
        remote_id = client.submit_generate(request.prompt, seconds=request.seconds, seed=request.seed,
                                           samples=request.samples, guidance=request.guidance,
                                           target=request.rig)  # fmt: skip
        status = follow(job, client, remote_id, (0.02, 0.95), "generating motion from text")
        job.timings["backend_s"] = _compute_s(status)
        job.update(0.95, "downloading")
        samples = client.result(remote_id).get("samples") or []
        if not samples:
            raise ValueError("the backend's generate job returned no motion")
        motions = [_decode_solution(sample) for sample in samples]
        job.timings["transfer_s"] = max(0.0, time.perf_counter() - started - job.timings["backend_s"])
        return motions


def run_generate_voice(job, client, request: GenerateVoiceRequest) -> tuple[list[RigMotion], dict]:
    """Upload the recording, generate motion from it on the backend (one ``generate_speech`` job, retargeted onto the
    rig there); returns one solution per variation and what the backend heard (``speech``: path, transcript or
    nearest caption, confidence, engine). Bad audio is refused at submit, not understood audio fails the job: both
    raise ``RuntimeError`` with the backend's reason (worker thread)."""
    with client_errors(client, "generating motion from speech"):
        started = time.perf_counter()
        options = {"path": request.path, "seconds": request.seconds, "seed": request.seed, "samples": request.samples,
                   "guidance": request.guidance, "target": request.rig}  # fmt: skip
        if request.audio_path is None:  # the backend records from its microphone; its stage is the level meter
            job.update(0.01, "recording")
            record_id = client.submit_record_speech(float(request.record_seconds or 4.0))
            follow(job, client, record_id, (0.01, 0.3), "recording from the microphone")
            job.timings["record_s"] = time.perf_counter() - started
            remote_id = client.submit_generate_speech(upload_id=client.result(record_id)["upload_id"],
                                                      **options)  # fmt: skip
            job.timings["upload_s"] = 0.0
        else:
            job.update(0.01, "uploading the recording")
            remote_id = client.submit_generate_speech(request.audio_path, **options)
            job.timings["upload_s"] = time.perf_counter() - started
        status = follow(job, client, remote_id, (0.3 if request.audio_path is None else 0.03, 0.95),
                        "generating motion from speech")  # fmt: skip
        job.timings["backend_s"] = _compute_s(status)
        job.update(0.95, "downloading")
        result = client.result(remote_id)
        samples = result.get("samples") or []
        if not samples:
            raise ValueError("the backend's generate_speech job returned no motion")
        motions = [_decode_solution(sample) for sample in samples]
        job.timings["transfer_s"] = max(0.0, time.perf_counter() - started - job.timings["backend_s"]
                                        - job.timings["upload_s"] - job.timings.get("record_s", 0.0))  # fmt: skip
        return motions, dict(result.get("speech") or {})


def run_retarget(job, client, request: RetargetRequest) -> RigMotion:
    """Retarget a library clip onto the rig (worker thread)."""
    options = {"mapping": request.mapping, "root": request.root, "foot_lock": request.foot_lock,
               "smoothing": request.smoothing}  # fmt: skip
    with client_errors(client, "retargeting the clip"):
        return _retarget(job, client, None, request.clip_id, request.rig, options, (0.05, 0.97))


def run_thumbnails(job, client, clip_ids: list[int]) -> list[dict]:
    """Fetch the library clips' thumbnails (rendered by the backend on first request): ``[{"clip_id", "png": bytes,
    "rendered"}]`` (worker thread)."""
    import base64

    with client_errors(client, "drawing thumbnails"):
        job.update(0.05, "drawing thumbnails")
        remote_id = client.submit_thumbnails(clip_ids)
        follow(job, client, remote_id, (0.05, 0.95), "drawing thumbnails")
        found = client.result(remote_id).get("thumbnails") or []
    return [{"clip_id": int(t["clip_id"]), "png": base64.b64decode(t["png_base64"]), "rendered": bool(t["rendered"])}
            for t in found]  # fmt: skip


def run_search(job, client, request: SearchRequest) -> list[dict]:
    """Run a library search; returns the hits (``SearchHit`` fields) best first (worker thread)."""
    with client_errors(client, "searching the library"):
        return _run_search(job, client, request)


def _run_search(job, client, request: SearchRequest) -> list[dict]:
    job.update(0.05, "searching")
    if request.video_path is not None:
        remote_id = client.submit_search_video(request.video_path, k=request.k)
    else:
        remote_id = client.submit_search(request.text, motion=request.motion, k=request.k)
    follow(job, client, remote_id, (0.05, 0.95), "searching the library")
    return list(client.result(remote_id).get("hits") or [])
