"""The ``generate`` job: a text prompt -> motion (``models.instruct``, MoMask-style) -> the client's rig.

Like the other job kinds (:mod:`backend.pipelines`) it has a *prepare* step run at submit time, so bad input answers
400 at once with the generator's own rules (``backend.instruct.pipeline.check_request``: a prompt with words of at
most 1000 characters, ``MIN_SECONDS``..``MAX_SECONDS``, 1..16 samples, a finite guidance >= 0) and the target parsed,
and a pipeline run by :class:`backend.jobs.JobManager` in a worker thread. The text-to-motion model is the
registry's ``t2m`` entry (:func:`t2m_model_spec`): loaded on first use from ``settings.checkpoints["t2m"]`` (a
``baton train t2m`` run folder) or the shipped default weights, on the configured device and runtime.

Each variation is retargeted with :func:`backend.pipelines.retarget_solution` (the retarget job's solver call, foot
lock on, full root motion), because clients send their armature's rest pose (a ``TargetRig``), which
``backend.instruct.pipeline.generate_to_rig`` (registry names and ``.bvh`` files only) does not take.

Result (JSON): ``{"prompt", "timeline", "seconds", "seed", "guidance", "fps", "samples": [solution, ...]}`` (a
timeline request: ``prompt`` joins its texts with " / ", ``timeline`` lists the segments) with one solution
per variation in batch order, each shaped like a retarget job's result: ``{"motion": <payload on the target:
positions, local rotations (T,J,4) wxyz relative to the rest pose, root_translation (T,3)>, "bone_names",
"bone_rotations", "rig", "mapping", "foot_skate_before_cm", "foot_skate_after_cm", "report"}``. Progress and cancel
go through ``context.progress`` (:class:`models.progress.Progress`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.errors import NotAvailableError
from backend.jobs import JobContext
from backend.model_registry import ModelSpec
from backend.pipelines import parse_target, retarget_solution
from backend.schemas import GenerateRequest, RetargetOptions
from backend.settings import Settings

#: The job kind (``POST /jobs/generate``) and the registry name of the text-to-motion model.
JOB_KIND = "generate"
MODEL_NAME = "t2m"
#: Server runtime name -> ``models.instruct`` runtime name.
RUNTIMES = {"torch": "torch", "onnx": "ort"}


@dataclass
class GenerateParams:
    """A checked generate request: ``prompt`` is the prompt or a list of ``models.instruct.TimelineSegment``;
    ``target`` is a registry name, a resolved ``.bvh`` path or a ``TargetRig``."""

    prompt: str | list
    seconds: float | None
    seed: int
    samples: int
    guidance: float
    target: Any


def prepare_generate(request: GenerateRequest, settings: Settings) -> GenerateParams:
    """Check the request by the generator's rules (nothing is loaded) and parse the target.

    Raises:
        ValueError: an empty or too long prompt, a duration outside ``MIN_SECONDS..MAX_SECONDS`` (the message
            states the limit), samples outside 1..16, a NaN / negative guidance, an unknown target.
        ApiError 400/404: a ``.bvh`` target outside the allowed roots / missing.
    """
    from backend.instruct.pipeline import check_request
    from models.instruct import TimelineSegment

    if request.timeline is not None:
        text: str | list = [TimelineSegment(s.text, s.start_s, s.end_s) for s in request.timeline]
    else:
        text = request.prompt
    check_request(text, seconds=request.seconds, samples=request.samples, guidance=request.guidance)
    if isinstance(text, str):
        text = " ".join(text.split())
    target = parse_target(request.target, settings)
    return GenerateParams(text, request.seconds, request.seed, request.samples, request.guidance, target)


def run_generate(params: GenerateParams, context: JobContext) -> dict:
    """Prompt or timeline -> ``samples`` motions (smpl22, 20 fps, one batch) -> each retargeted onto the target
    (foot lock).

    Progress: loading the model 0-0.05, generation 0.05-0.85 (under the device lock), retargeting 0.85-1.0.
    """
    progress = context.progress
    progress.update(0.0, "loading the text-to-motion model")
    generator = context.models.get(MODEL_NAME)  # loaded once, kept for later jobs
    with context.model_lock():
        motions = generator.generate(params.prompt, seconds=params.seconds, seed=params.seed, samples=params.samples,
                                     guidance=params.guidance, progress=progress.sub(0.05, 0.85))  # fmt: skip
    options = RetargetOptions(root="full", foot_lock=True)
    solutions = []
    for k, motion in enumerate(motions):
        span = progress.sub(0.85 + 0.15 * k / len(motions), 0.85 + 0.15 * (k + 1) / len(motions))
        span.update(0.0, f"retargeting variation {k + 1}/{len(motions)}")
        solutions.append(retarget_solution(motion, params.target, options, span))
    first = motions[0]
    timeline = None if isinstance(params.prompt, str) else params.prompt
    return {
        "prompt": params.prompt if timeline is None else " / ".join(segment.text for segment in timeline),
        "timeline": None if timeline is None else [vars(segment) for segment in timeline],
        "seconds": first.num_frames / first.fps,
        "seed": params.seed,
        "guidance": params.guidance,
        "fps": first.fps,
        "samples": solutions,
    }


# -- the model -----------------------------------------------------------------------------------------------------
def _has_onnx_path() -> bool:
    """Whether this build has the text-to-motion model's onnxruntime path (``models.instruct.onnx_runtime``)."""
    import importlib.util

    return importlib.util.find_spec("models.instruct.onnx_runtime") is not None


_NO_ONNX = "the text-to-motion model has no onnx runtime in this build; serve it with --runtime torch"


def _t2m_loader(settings: Settings, device: str) -> Any:
    """``models.instruct.load_text_to_motion`` on the configured weights, device and runtime.

    Raises:
        NotAvailableError: when the weights are missing or the runtime has no ONNX path in this build.
    """
    from models.instruct import WeightsNotAvailable, load_text_to_motion

    runtime = RUNTIMES[settings.runtime]
    if runtime == "ort" and not _has_onnx_path():
        raise NotAvailableError(_NO_ONNX)
    try:
        return load_text_to_motion(settings.checkpoints.get(MODEL_NAME), device=device, runtime=runtime)
    except WeightsNotAvailable as exc:
        raise NotAvailableError(str(exc)) from None


def _t2m_available(settings: Settings) -> tuple[bool, str]:
    """Whether the text-to-motion weights are present (cheap: files only, no network is built)."""
    from pathlib import Path

    try:
        from models.instruct.generator import DEFAULT_WEIGHTS, RUN_FILES
    except ImportError as exc:
        return False, f"text-to-motion package not installed ({exc})"
    configured = settings.checkpoints.get(MODEL_NAME)
    folder = Path(configured).expanduser() if configured else DEFAULT_WEIGHTS
    missing = [name for name in RUN_FILES if not (folder / name).is_file()]
    if missing:
        return False, (f"no text-to-motion weights in {folder} (missing {', '.join(missing)}); train them with "
                       "`baton train t2m -o RUN_DIR` and serve with --checkpoint t2m=RUN_DIR")  # fmt: skip
    if RUNTIMES[settings.runtime] == "ort" and not _has_onnx_path():
        return False, _NO_ONNX
    return True, f"weights {folder}"


def t2m_model_spec() -> ModelSpec:
    """The registry entry of the text-to-motion model (``t2m``); inference holds the device lock."""
    return ModelSpec(MODEL_NAME, "instruct", _t2m_loader, _t2m_available, uses_device=True)


#: What ``backend.app`` registers next to :data:`backend.pipelines.PIPELINES`.
GENERATE_PIPELINES = {JOB_KIND: run_generate}
