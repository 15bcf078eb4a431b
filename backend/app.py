"""The FastAPI application: ``create_app(settings)``.

Routes (all but ``/health`` need ``Authorization: Bearer <token>``; schema at ``GET /openapi.json``):

- ``GET /health`` — liveness and version.
- ``GET /capabilities`` — models (whether their weights are present; for loaded ones the device, runtime and ONNX
  Runtime providers they really run on), rigs, the server's device and runtime, ONNX providers in use, limits.
- ``POST /uploads/audio`` — raw audio bytes -> ``upload_id`` (streamed to disk, size/type/duration limits).
- ``POST /jobs/conduct|retarget|search|search_video|thumbnails|generate|generate_speech|record_speech|echo`` — submit a
  job -> its status (202).
- ``GET /jobs``, ``GET /jobs/{id}``, ``POST /jobs/{id}/cancel``, ``GET /jobs/{id}/result``.
- ``GET /models``, ``POST /models/release`` — loaded models; free their memory.

Errors everywhere: ``{"error", "detail", "hint"}`` (:mod:`backend.api_errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend import __version__
from backend.api_errors import ERROR_RESPONSES, ApiError, ErrorBody, error_response, install_error_handlers
from backend.auth import BearerAuthMiddleware, load_or_create_token
from backend.generate_jobs import GENERATE_PIPELINES, prepare_generate, t2m_model_spec
from backend.jobs import FINISHED, JobManager, JobNotFound, JobState, TooManyJobs
from backend.model_registry import ModelRegistry, devices
from backend.paths import resolve_allowed_path
from backend.pipelines import (
    PIPELINES,
    default_model_specs,
    prepare_conduct,
    prepare_retarget,
    prepare_search,
    prepare_search_video,
    prepare_thumbnails,
)
from backend.schemas import (
    Capabilities,
    ConductRequest,
    EchoRequest,
    GenerateRequest,
    GenerateSpeechRequest,
    Health,
    JobResult,
    JobStatus,
    RecordSpeechRequest,
    ReleaseRequest,
    ReleaseResult,
    RetargetRequest,
    SearchRequest,
    ThumbnailsRequest,
    UploadInfo,
    VideoSearchRequest,
)
from backend.settings import AUDIO_CONTENT_TYPES, Settings
from backend.speech_jobs import (
    SPEECH_PIPELINES,
    NoInputDevice,
    prepare_generate_speech,
    prepare_record,
    speech_model_spec,
)
from backend.uploads import UploadStore, audio_content_type, probe_duration

log = logging.getLogger(__name__)

UPLOAD_PREFIX = "/uploads/"


class BodyLimitMiddleware:
    """Refuse request bodies over the limit: at once from ``Content-Length`` (nothing read), else while streaming.

    Uploads (``/uploads/...``) may carry ``settings.max_upload_bytes``; every other route ``settings.max_json_bytes``.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope.get("path", "").startswith(UPLOAD_PREFIX)
        limit = self.settings.max_upload_bytes if upload else self.settings.max_json_bytes
        hint = "raise --max-upload-mb or use a server path" if upload else "raise --max-json-mb or send less"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    response = error_response(400, "bad_request", "invalid Content-Length header")
                    await response(scope, receive, send)
                    return
                if declared > limit:
                    response = error_response(413, "payload_too_large", f"body of {declared} bytes exceeds the "
                                              f"limit of {limit} bytes", hint)  # fmt: skip
                    response.headers["Connection"] = "close"
                    await response(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, "payload_too_large", f"body exceeds the limit of {limit} bytes", hint)
            return message

        await self.app(scope, limited_receive, send)


def _job_or_404(jobs: JobManager, job_id: str):
    try:
        return jobs.get(job_id)
    except JobNotFound:
        raise ApiError(404, "job_not_found", f"no job {job_id!r}",
                       f"jobs are kept for {jobs.settings.result_ttl_s:.0f} s after they finish") from None  # fmt: skip


def _submit(jobs: JobManager, kind: str, params, cleanup=None) -> dict:
    try:
        return jobs.submit(kind, params, cleanup).status()
    except TooManyJobs as exc:
        for step in cleanup or ():
            step()
        raise ApiError(429, "too_many_jobs", str(exc), "wait for jobs to finish or cancel some") from None


def create_app(settings: Settings | None = None) -> FastAPI:
    """The backend as an ASGI app. Reads or creates the token file (see :mod:`backend.auth`).

    Raises:
        ValueError: from :class:`Settings` validation (e.g. a non-loopback host without ``allow_remote``).
        BatonError: a device or runtime this machine cannot run (:class:`ModelRegistry`); nothing is written then.
    """
    settings = settings or Settings()
    specs = [*default_model_specs(), t2m_model_spec(), speech_model_spec()]
    models = ModelRegistry(settings, specs)  # checks device and runtime
    token = load_or_create_token(settings)
    jobs = JobManager(settings, models, {**PIPELINES, **GENERATE_PIPELINES, **SPEECH_PIPELINES})
    uploads = UploadStore(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        async def sweeper():
            while True:
                await asyncio.sleep(min(30.0, settings.result_ttl_s / 4))
                jobs.sweep()
                uploads.sweep()

        task = asyncio.create_task(sweeper())
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(jobs.shutdown)
            uploads.clear()
            models.release()

    app = FastAPI(
        title="Baton backend", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Learned human motion for Blender: music-driven conducting, retargeting, motion search. "
        "Every route but /health needs `Authorization: Bearer <token>` (token file: <user config dir>/baton/token).",
        responses=ERROR_RESPONSES,
    )  # fmt: skip
    app.state.settings, app.state.models, app.state.jobs, app.state.uploads = settings, models, jobs, uploads
    install_error_handlers(app)

    @app.get("/health", response_model=Health, tags=["server"])
    def health() -> dict:
        """Liveness (no token needed)."""
        return {"status": "ok", "version": __version__}

    @app.get("/capabilities", response_model=Capabilities, tags=["server"])
    def capabilities() -> dict:
        """What this server can do: models and whether their weights are present, rigs, job kinds, limits; and what
        it runs on: ``device`` (the resolved ``--device``, what loaders receive), ``runtime``, per loaded model its
        ``device`` / ``runtime`` / ``providers`` as the instance reports them, and ``onnx_providers.in_use``: the
        providers of the live onnxruntime sessions (empty while none is loaded; ``available`` = installed)."""
        from models.motion import skeleton_names

        return {
            "version": __version__,
            "models": models.describe(),
            "rigs": list(skeleton_names()),
            "job_kinds": sorted(jobs.pipelines),
            "device": models.device,
            "devices": devices(),
            "runtime": settings.runtime,
            "onnx_providers": models.onnx_providers(),
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_json_bytes": settings.max_json_bytes,
                "max_audio_duration_s": settings.max_audio_duration_s,
                "audio_content_types": list(AUDIO_CONTENT_TYPES),
                "result_ttl_s": settings.result_ttl_s,
                "workers": settings.workers,
            },
            "allowed_roots": len(settings.allowed_roots),
        }

    @app.post(
        "/uploads/audio", response_model=UploadInfo, status_code=201, tags=["jobs"],
        openapi_extra={"requestBody": {"required": True, "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in AUDIO_CONTENT_TYPES}}},
    )  # fmt: skip
    async def upload_audio(request: Request) -> dict:
        """Upload audio as the raw request body (``Content-Type: audio/...``); use the ``upload_id`` in a conduct
        job. The body is streamed to a temporary file; over-long or over-large audio is refused."""
        content_type = audio_content_type(request.headers.get("content-type"))
        upload = await uploads.save(request.stream(), content_type)
        duration = await run_in_threadpool(probe_duration, upload.path)
        upload.duration_s = duration
        if duration is not None and duration > settings.max_audio_duration_s:
            uploads.discard(upload)
            raise ApiError(400, "audio_too_long", f"audio lasts {duration:.1f} s; the limit is "
                           f"{settings.max_audio_duration_s:.0f} s", "trim the audio")  # fmt: skip
        return {"upload_id": upload.id, "bytes": upload.bytes, "content_type": content_type,
                "duration_s": duration, "expires_in_s": settings.result_ttl_s}  # fmt: skip

    @app.post("/jobs/conduct", response_model=JobStatus, status_code=202, tags=["jobs"])
    async def submit_conduct(request: ConductRequest) -> dict:
        """Music -> a conductor's performance (coco13, 30 fps), optionally retargeted onto ``target``."""
        return await submit_with_audio("conduct", request, prepare_conduct)

    async def submit_with_audio(kind: str, request, prepare) -> dict:
        """Submit a job whose audio is an upload (``request.upload_id``, deleted when the job ends or when
        ``prepare(request, settings, audio_path)`` refuses it) or a server file under an allowed root."""
        cleanup = []
        if request.upload_id is not None:
            upload = uploads.take(request.upload_id)
            audio_path = upload.path
            cleanup.append(lambda: upload.path.unlink(missing_ok=True))
        else:
            audio_path = await run_in_threadpool(resolve_allowed_path, request.audio_path, settings, "audio_path")
        try:
            params = await run_in_threadpool(prepare, request, settings, audio_path)
        except BaseException:
            for step in cleanup:
                step()
            raise
        return _submit(jobs, kind, params, cleanup)

    @app.post("/jobs/retarget", response_model=JobStatus, status_code=202, tags=["jobs"])
    async def submit_retarget(request: RetargetRequest) -> dict:
        """Retarget a motion onto a built-in skeleton or a rig the client describes (names, parents, rest matrices)."""
        params = await run_in_threadpool(prepare_retarget, request, settings)
        return _submit(jobs, "retarget", params)

    @app.post("/jobs/search", response_model=JobStatus, status_code=202, tags=["jobs"])
    async def submit_search(request: SearchRequest) -> dict:
        """Search the motion library by text or by motion."""
        params = await run_in_threadpool(prepare_search, request, settings)
        return _submit(jobs, "search", params)

    @app.post("/jobs/search_video", response_model=JobStatus, status_code=202, tags=["jobs"])
    async def submit_search_video(request: VideoSearchRequest) -> dict:
        """Search the motion library with a video of a person (a server file under an allowed root)."""
        params = await run_in_threadpool(prepare_search_video, request, settings)
        return _submit(jobs, "search_video", params)

    @app.post("/jobs/thumbnails", response_model=JobStatus, status_code=202, tags=["jobs"])
    async def submit_thumbnails(request: ThumbnailsRequest) -> dict:
        """Thumbnails of library clips (2 x 2 mannequin contact sheets, PNG base64), rendered once per clip and kept
        in the library; ids that are not clips are refused (404)."""
        try:
            library = await run_in_threadpool(models.get, "library")
        except FileNotFoundError as exc:  # the configured library does not exist (searching it says the same)
            raise ApiError(404, "library_not_found", str(exc), "import clips with `baton library import`") from None
        params = await run_in_threadpool(prepare_thumbnails, request, library)
        return _submit(jobs, "thumbnails", params)

    @app.post("/jobs/generate", response_model=JobStatus, status_code=202, tags=["jobs"])
    async def submit_generate(request: GenerateRequest) -> dict:
        """Text prompt -> motion (text-to-motion, smpl22 at 20 fps), variations, retargeted onto ``target``."""
        params = await run_in_threadpool(prepare_generate, request, settings)
        return _submit(jobs, "generate", params)

    @app.post("/jobs/generate_speech", response_model=JobStatus, status_code=202, tags=["jobs"])
    async def submit_generate_speech(request: GenerateSpeechRequest) -> dict:
        """Spoken instruction (an upload or a server file) -> motion by the ``end2end`` or ``cascaded`` path
        (docs/voice.md), variations, retargeted onto ``target``; bad audio answers 400 here."""
        return await submit_with_audio("generate_speech", request, prepare_generate_speech)

    @app.post("/jobs/record_speech", response_model=JobStatus, status_code=202, tags=["jobs"],
              responses={409: {"model": ErrorBody, "description": "no input device (or no PortAudio) on this machine"}})
    async def submit_record_speech(request: RecordSpeechRequest) -> dict:
        """Record ``seconds`` from this machine's default microphone (progress: time recorded, stage: the level
        meter); the result's ``upload_id`` feeds ``generate_speech``. 409 when there is no input device."""
        try:
            params = await run_in_threadpool(prepare_record, request.seconds, uploads)
        except NoInputDevice as exc:
            raise ApiError(409, "no_input_device", str(exc),
                           "choose an audio file or the scene's sound strip") from None  # fmt: skip
        return _submit(jobs, "record_speech", params)

    @app.post("/jobs/echo", response_model=JobStatus, status_code=202, tags=["jobs"])
    def submit_echo(request: EchoRequest) -> dict:
        """The empty job (answers its message): checks the queue's round trip."""
        return _submit(jobs, "echo", request)

    @app.get("/jobs", response_model=list[JobStatus], tags=["jobs"])
    def list_jobs() -> list[dict]:
        """Every job kept now, oldest first."""
        return [job.status() for job in jobs.list()]

    @app.get("/jobs/{job_id}", response_model=JobStatus, tags=["jobs"])
    async def job_status(
        job_id: str, wait_s: float = Query(0.0, ge=0.0, le=30.0, description="long poll: answer as soon as the job "
                                           "finishes, or after this many seconds with its current status"),
    ) -> dict:  # fmt: skip
        """State, progress (0-1), stage and ETA of a job."""
        job = _job_or_404(jobs, job_id)
        if wait_s > 0 and job.state not in FINISHED:
            loop, finished = asyncio.get_running_loop(), asyncio.Event()

            def wake() -> None:
                loop.call_soon_threadsafe(finished.set)

            jobs.add_done_callback(job, wake)
            try:
                await asyncio.wait_for(finished.wait(), timeout=wait_s)
            except TimeoutError:
                pass
            finally:
                jobs.remove_done_callback(job, wake)
        return job.status()

    @app.post("/jobs/{job_id}/cancel", response_model=JobStatus, tags=["jobs"])
    def cancel_job(job_id: str) -> dict:
        """Ask a job to stop (queued: at once; running: at its next step). Finished jobs are unchanged."""
        _job_or_404(jobs, job_id)
        return jobs.cancel(job_id).status()

    @app.get("/jobs/{job_id}/result", response_model=JobResult, tags=["jobs"])
    def job_result(job_id: str) -> dict:
        """The result of a succeeded job; 409 while it runs or when it failed or was cancelled."""
        job = _job_or_404(jobs, job_id)
        if job.state not in FINISHED:
            raise ApiError(409, "not_finished", f"job {job_id} is {job.state.value} ({job.progress.fraction:.0%})",
                           "poll GET /jobs/{id} until its state is succeeded")  # fmt: skip
        if job.state is JobState.cancelled:
            raise ApiError(409, "job_cancelled", f"job {job_id} was cancelled")
        if job.state is JobState.failed:
            error = job.error or {}
            raise ApiError(409, "job_failed", error.get("detail", "the job failed"), error.get("hint"))
        return {"id": job.id, "kind": job.kind, "result": job.result}

    @app.get("/models", response_model=ReleaseResult, tags=["models"])
    def loaded_models() -> dict:
        """Models loaded now."""
        return {"released": [], "loaded": models.loaded()}

    @app.post("/models/release", response_model=ReleaseResult, tags=["models"])
    def release_models(request: ReleaseRequest | None = None) -> dict:
        """Release loaded models (all, or ``names``) to free memory; they load again on next use."""
        try:
            released = models.release(None if request is None else request.names)
        except KeyError as exc:
            detail = str(exc).strip("'\"")
            raise ApiError(404, "model_not_found", detail, "GET /capabilities lists the models") from None
        return {"released": released, "loaded": models.loaded()}

    _add_security_scheme(app)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(BearerAuthMiddleware, token=token)
    return app


def _add_security_scheme(app: FastAPI) -> None:
    """Publish bearer auth in the OpenAPI document (global requirement; ``/health`` is public)."""
    base = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http", "scheme": "bearer", "description": "token from <user config dir>/baton/token"}
        schema["security"] = [{"bearer": []}]
        schema["paths"]["/health"]["get"]["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
