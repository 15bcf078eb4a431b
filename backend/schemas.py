"""Request and response schemas of the HTTP API (one module; they make the published OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.api_errors import ErrorBody
from blender_addon.client import CONDUCTOR_CONTROLS, MAX_PROMPT_CHARS, MAX_SAMPLES, TEXT_GUIDANCE
from blender_addon.wire import WIRE_DTYPES

_MODEL_NAME = r"^[a-z0-9_\-]{1,32}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArrayPayload(_Strict):
    """A numpy array on the wire: little-endian bytes, C order, base64."""

    dtype: Literal[WIRE_DTYPES]  # type: ignore[valid-type]
    shape: list[int] = Field(max_length=8, description="dimensions, each >= 0")
    data: str = Field(description="base64 of the little-endian bytes")


class SkeletonPayload(_Strict):
    name: str = Field("custom", max_length=200)
    joint_names: list[str] = Field(min_length=1, max_length=1000)
    parents: list[int] = Field(min_length=1, max_length=1000, description="parent index per joint, -1 for the root")
    rest_offsets: ArrayPayload = Field(description="(J, 3) float32 metres, offset from the parent at rest")


class MotionPayload(_Strict):
    """A motion (DESIGN §2): backend space, metres, +Y up, +Z forward; 2D keypoints in normalised image coords."""

    skeleton: SkeletonPayload
    fps: float = Field(gt=0, le=10_000)
    positions: ArrayPayload = Field(description="(T, J, 3) float32 metres or (T, J, 2) image coordinates")
    rotations: ArrayPayload | None = Field(None, description="(T, J, 4) float32 local quaternions (w, x, y, z)")
    root_translation: ArrayPayload | None = Field(None, description="(T, 3) float32 metres")
    metadata: dict[str, Any] = Field(default_factory=dict)


class RigPayload(_Strict):
    """A client's rig (``TargetRig.to_dict()``): bone names, parents and rest world matrices in backend space."""

    model_config = ConfigDict(extra="allow")
    joint_names: list[str] = Field(min_length=1, max_length=1000)
    parents: list[int] = Field(min_length=1, max_length=1000)


RetargetTarget = str | RigPayload  # a built-in skeleton name (smpl24, kit21, coco13) or a described rig


class RetargetOptions(_Strict):
    mapping: dict[str, str] | None = Field(None, description="target joint -> source joint (overrides auto-mapping)")
    root: Literal["full", "inplace", "height"] = "full"
    foot_lock: bool = True
    smoothing: float = Field(0.0, ge=0.0, le=10.0)


class ConductRequest(_Strict):
    """Generate a conductor's performance from music: an uploaded file (``upload_id`` from ``POST /uploads/audio``)
    or a file on the server under an allowed root (``audio_path``). With ``target`` the motion is also retargeted."""

    upload_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    audio_path: str | None = Field(None, max_length=4096, description="server path under an allowed root")
    model: str = Field("procedural", pattern=_MODEL_NAME, description="procedural, diffusion or m2sgan")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    steps: int = Field(20, ge=1, le=1000, description="DDIM steps (diffusion)")
    guidance: float | None = Field(None, ge=0.0, le=50.0, description="classifier-free guidance scale")
    energy: float | None = Field(None, ge=CONDUCTOR_CONTROLS["energy"][0], le=CONDUCTOR_CONTROLS["energy"][1],
                                 description="procedural only: 0 calm .. 1 vigorous (default 0.5)")
    size: float | None = Field(None, ge=CONDUCTOR_CONTROLS["size"][0], le=CONDUCTOR_CONTROLS["size"][1],
                               description="procedural only: beat pattern size (default 1)")
    legato: float | None = Field(None, ge=CONDUCTOR_CONTROLS["legato"][0], le=CONDUCTOR_CONTROLS["legato"][1],
                                 description="procedural only: 0 staccato .. 1 legato (default 0.5)")
    target: RetargetTarget | None = None
    retarget: RetargetOptions = Field(default_factory=RetargetOptions)

    @model_validator(mode="after")
    def _one_source(self) -> ConductRequest:
        if (self.upload_id is None) == (self.audio_path is None):
            raise ValueError("give exactly one of upload_id and audio_path")
        return self

    @model_validator(mode="after")
    def _controls_for_procedural(self) -> ConductRequest:
        from models.conductor.registry import style_from_controls  # numpy only; the one place the rule lives

        style_from_controls(self.model, **self.controls())  # ValueError: a learned model given a control
        return self

    def controls(self) -> dict[str, float]:
        """The controls given (``{"energy", "size", "legato"}`` subset)."""
        return {k: float(getattr(self, k)) for k in CONDUCTOR_CONTROLS if getattr(self, k) is not None}


class RetargetRequest(_Strict):
    """Retarget a motion (sent inline, a server file under an allowed root, or a library clip) onto a target."""

    source: MotionPayload | None = None
    source_path: str | None = Field(None, max_length=4096)
    source_clip_id: int | None = Field(None, ge=0, description="a clip id of the server's motion library")
    target: RetargetTarget
    options: RetargetOptions = Field(default_factory=RetargetOptions)

    @model_validator(mode="after")
    def _one_source(self) -> RetargetRequest:
        given = [x is not None for x in (self.source, self.source_path, self.source_clip_id)]
        if sum(given) != 1:
            raise ValueError("give exactly one of source, source_path and source_clip_id")
        return self


class SearchFiltersPayload(_Strict):
    """Restrictions applied before ranking (``backend.library.SearchFilters``)."""

    skeleton: str | None = Field(None, max_length=200, description="skeleton label, e.g. cmu31, smpl22")
    min_duration_s: float | None = Field(None, ge=0)
    max_duration_s: float | None = Field(None, ge=0)
    license: str | None = Field(None, max_length=200)
    commercial_only: bool = Field(False, description="drop clips whose license forbids commercial use")


class SearchRequest(_Strict):
    """Search the motion library by text, by a motion (inline or a server file under an allowed root) or by one of
    its own clips (``clip_id``, left out of the results)."""

    text: str | None = Field(None, min_length=1, max_length=2000)
    motion: MotionPayload | None = None
    motion_path: str | None = Field(None, max_length=4096)
    clip_id: int | None = Field(None, ge=0)
    k: int = Field(10, ge=1, le=1000)
    exact: bool = Field(False, description="exhaustive search instead of the HNSW index")
    filters: SearchFiltersPayload = Field(default_factory=SearchFiltersPayload)

    @model_validator(mode="after")
    def _one_query(self) -> SearchRequest:
        if sum(x is not None for x in (self.text, self.motion, self.motion_path, self.clip_id)) != 1:
            raise ValueError("give exactly one of text, motion, motion_path and clip_id")
        return self


class VideoSearchRequest(_Strict):
    """Search the motion library with a video of a person (a server file under an allowed root; issue 14): MediaPipe
    Pose finds the people in the first ``max_seconds``; every 4.8 s window is searched, clips score their best."""

    video_path: str = Field(max_length=4096)
    k: int = Field(10, ge=1, le=1000)
    exact: bool = Field(False, description="exhaustive search instead of the HNSW index")
    filters: SearchFiltersPayload = Field(default_factory=SearchFiltersPayload)
    max_seconds: float = Field(180.0, gt=0, le=600, allow_inf_nan=False, description="video analysed (s)")


class ThumbnailsRequest(_Strict):
    """Thumbnails of library clips (e.g. a search's hits): the renderer's mannequin contact sheets, rendered on first
    request and then kept in the library (:mod:`backend.render.thumbnails`)."""

    clip_ids: list[int] = Field(min_length=1, max_length=100, description="library clip ids")
    render: bool = Field(True, description="render missing thumbnails (false: stored ones and pose strips only)")


class TimelineSegmentPayload(_Strict):
    """One prompt of a timeline (``models.instruct.TimelineSegment``): ``text`` from ``start_s`` to ``end_s``."""

    text: str = Field(max_length=MAX_PROMPT_CHARS)
    start_s: float = Field(allow_inf_nan=False, description="seconds; the first segment starts at 0")
    end_s: float = Field(allow_inf_nan=False, description="seconds; each segment lasts until the next starts")


class _GenerationOptions(_Strict):
    """The options text and speech generation share: duration, seed, variations, guidance and the target rig."""

    seconds: float | None = Field(None, allow_inf_nan=False, description="duration (s); omitted: estimated")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    samples: int = Field(1, ge=1, le=MAX_SAMPLES, description="variations, generated in one batch")
    guidance: float = Field(TEXT_GUIDANCE, ge=0.0, le=50.0, allow_inf_nan=False,
                            description="classifier-free guidance scale")
    target: RetargetTarget = Field("smpl24", description="built-in skeleton name, server .bvh path or a rig")


class GenerateRequest(_GenerationOptions):
    """Generate motion from a text prompt or a timeline of prompts (text-to-motion, ``models.instruct``), retargeted
    onto ``target``.

    ``seconds`` omitted: the model's length estimator chooses the duration (a timeline: its last ``end_s``). The
    generator's own rules (a prompt with words, ``models.instruct.MIN_SECONDS``..``MAX_SECONDS``, a sorted timeline
    without overlaps) are checked at submit time; refusals state the limit."""

    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS, description="e.g. 'a person waves'")
    timeline: list[TimelineSegmentPayload] | None = Field(None, min_length=1, max_length=64,
                                                          description="prompts one after another")  # fmt: skip

    @model_validator(mode="after")
    def _one_text(self) -> GenerateRequest:
        if (self.prompt is None) == (self.timeline is None):
            raise ValueError("give exactly one of prompt and timeline")
        return self


class GenerateSpeechRequest(_GenerationOptions):
    """Generate motion from a spoken instruction (docs/voice.md): an uploaded recording (``upload_id`` from
    ``POST /uploads/audio``) or a file on the server under an allowed root (``audio_path``), understood by the
    ``end2end`` or the ``cascaded`` path, then generated like ``generate`` and retargeted onto ``target``. The audio is
    checked at submit time (``models.speech.audio.load_instruction``: readable, 8-192 kHz, 0.5-10 s, not silent)."""

    upload_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    audio_path: str | None = Field(None, max_length=4096, description="server path under an allowed root")
    path: Literal["end2end", "cascaded"] = Field("end2end", description="speech condition, or transcript -> text")

    @model_validator(mode="after")
    def _one_source(self) -> GenerateSpeechRequest:
        if (self.upload_id is None) == (self.audio_path is None):
            raise ValueError("give exactly one of upload_id and audio_path")
        return self


class RecordSpeechRequest(_Strict):
    """Record a spoken instruction from the local backend's default microphone (sounddevice / PortAudio); the
    result's ``upload_id`` goes into ``POST /jobs/generate_speech``. No input device: 409."""

    seconds: float = Field(4.0, allow_inf_nan=False, description="recording length (s), 0.5-10")


class EchoRequest(_Strict):
    """An empty job: returns its message (round-trip check of the job queue)."""

    message: str = Field("", max_length=1000)


class UploadInfo(BaseModel):
    upload_id: str
    bytes: int
    content_type: str
    duration_s: float | None = Field(description="audio duration read from the header, when readable")
    expires_in_s: float


class JobStatus(BaseModel):
    id: str
    kind: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    stage: str
    eta_s: float | None = Field(description="seconds left, extrapolated from progress so far")
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: ErrorBody | None


class JobResult(BaseModel):
    id: str
    kind: str
    result: dict[str, Any]


class ReleaseRequest(_Strict):
    names: list[str] | None = Field(None, description="models to release; all when omitted")


class ReleaseResult(BaseModel):
    released: list[str]
    loaded: list[str]


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Capabilities(BaseModel):
    version: str
    models: dict[str, dict[str, Any]]
    rigs: list[str]
    job_kinds: list[str]
    device: str
    devices: list[str]
    runtime: str
    onnx_providers: dict[str, list[str]]
    limits: dict[str, Any]
    allowed_roots: int = Field(description="how many server folders jobs may read (paths not disclosed)")
