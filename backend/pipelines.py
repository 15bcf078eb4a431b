"""The work behind each job kind: conduct, retarget, search and echo (the empty job).

Each kind has a *prepare* step, run at submit time (cheap checks, so bad input answers 400 at once), and a
*pipeline* ``run(params, context) -> dict`` run by :class:`backend.jobs.JobManager` in a worker thread. Models come
from the registry (lazy, one instance each); model inference holds the device lock (``context.model_lock()``).
Results use the DESIGN §2 wire format (:mod:`backend.wire_motion`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.api_errors import ApiError
from backend.errors import NotAvailableError
from backend.jobs import JobContext
from backend.model_registry import ModelSpec, instance_runtime
from backend.paths import resolve_allowed_path
from backend.schemas import (
    ConductRequest,
    EchoRequest,
    RetargetOptions,
    RetargetRequest,
    SearchRequest,
    ThumbnailsRequest,
    VideoSearchRequest,
)
from backend.settings import Settings
from backend.wire_motion import json_safe, motion_from_payload, motion_to_payload
from blender_addon.wire import encode_array
from models.motion import Motion, skeleton_names

#: Conductor models the server offers (``models.conductor.available_models()`` says which have weights).
CONDUCTOR_MODELS = ("procedural", "diffusion", "m2sgan")


# -- targets -------------------------------------------------------------------------------------------------------
def parse_target(target: Any, settings: Settings) -> Any:
    """A retarget target from a request: a built-in skeleton name (kept as the string), a ``.bvh`` file under the
    allowed roots (its real path), or a ``TargetRig`` from a rig description.

    Raises:
        ValueError: for an unknown skeleton name or a rig the retargeting module rejects.
        ApiError 400/404: for a ``.bvh`` path outside the allowed roots / missing.
    """
    if isinstance(target, str):
        if target.lower().endswith(".bvh"):
            return str(resolve_allowed_path(target, settings, "target"))
        if target not in skeleton_names():
            raise ValueError(f"unknown target skeleton {target!r}; built-in: {', '.join(skeleton_names())} "
                             "or a .bvh file under the server's allowed roots")
        return target
    from models.motion.retarget import TargetRig

    rig = target.model_dump() if hasattr(target, "model_dump") else dict(target)
    return TargetRig.from_dict(rig)


def retarget_solution(source: Motion, target: Any, options: RetargetOptions, progress) -> dict:
    """Retarget ``source`` onto ``target`` and describe the solution for the client's rig.

    Returns ``{"motion": <payload on the target: positions, local rotations (T,J,4) wxyz relative to the rest pose,
    root_translation (T,3)>, "bone_names", "bone_rotations": <array (T,J,4) wxyz relative to each bone's own rest
    frame, what Blender pose bones hold>, "rig": the target rig dict, "mapping" (target -> source joint),
    "foot_skate_before_cm", "foot_skate_after_cm", "report"}``.
    """
    from models.motion.retarget import retarget

    result = retarget(source, target, mapping=options.mapping, root=options.root, foot_lock=options.foot_lock,
                      smoothing=options.smoothing, progress=progress)  # fmt: skip
    return {
        "motion": motion_to_payload(result.motion),
        "bone_names": list(result.motion.skeleton.joint_names),
        "bone_rotations": encode_array(np.asarray(result.bone_rotations(), dtype=np.float32)),
        "rig": json_safe(result.rig.to_dict()),
        "mapping": dict(result.mapping),
        "foot_skate_before_cm": float(result.foot_skate_before_cm),
        "foot_skate_after_cm": float(result.foot_skate_after_cm),
        "report": json_safe(result.report()),
    }


# -- conduct -------------------------------------------------------------------------------------------------------
@dataclass
class ConductParams:
    audio_path: Path
    model: str
    seed: int
    steps: int
    guidance: float | None
    target: Any = None
    retarget: RetargetOptions = field(default_factory=RetargetOptions)
    #: The procedural conductor's controls given in the request (``{"energy", "size", "legato"}`` subset).
    controls: dict[str, float] = field(default_factory=dict)


def prepare_conduct(request: ConductRequest, settings: Settings, audio_path: Path) -> ConductParams:
    """Check the model name and target; ``audio_path`` is an upload or a server path already checked."""
    if request.model not in CONDUCTOR_MODELS:
        raise ApiError(400, "unknown_model", f"unknown conductor model {request.model!r}",
                       f"choose one of {', '.join(CONDUCTOR_MODELS)} (GET /capabilities says which have weights)")
    target = None if request.target is None else parse_target(request.target, settings)
    return ConductParams(audio_path, request.model, request.seed, request.steps, request.guidance, target,
                         request.retarget, request.controls())  # fmt: skip


def run_conduct(params: ConductParams, context: JobContext) -> dict:
    """Music -> features (``analyze_audio``) -> conductor motion (``generate``, coco13, 30 fps) [-> retarget].

    Progress: analysis 0-0.3, generation 0.3-0.9 (0.3-1.0 without a target), retargeting 0.9-1.0.
    """
    from models.conductor import analyze_audio

    progress = context.progress
    gen_end = 1.0 if params.target is None else 0.9
    features = analyze_audio(params.audio_path, progress=progress.sub(0.0, 0.3))
    if features.duration_s > context.settings.max_audio_duration_s:
        raise ValueError(f"audio lasts {features.duration_s:.1f} s; this server accepts at most "
                         f"{context.settings.max_audio_duration_s:.0f} s")  # fmt: skip
    generator = context.models.get(f"conductor:{params.model}")  # loaded once, kept for later jobs
    if params.controls and params.model == "procedural":  # this job's style; no weights, so cheap to build per job
        from models.conductor.registry import load_generator, style_from_controls

        generator = load_generator(params.model, style=style_from_controls(params.model, **params.controls))
    kwargs = {"seed": params.seed, "steps": params.steps, "guidance": params.guidance,
              "progress": progress.sub(0.3, gen_end)}  # fmt: skip
    if context.models.uses_device(f"conductor:{params.model}"):
        with context.model_lock():
            motion = generator.generate(features, **kwargs)
    else:  # rule-based: no weights, no device
        motion = generator.generate(features, **kwargs)
    result = {
        "motion": motion_to_payload(motion),
        "model": params.model,
        "seed": params.seed,
        "music": {
            "duration_s": float(features.duration_s),
            "tempo_bpm": float(features.tempo_bpm),
            "meter": int(features.meter),
            "beat_times": [float(t) for t in features.beat_times],
            "downbeat_times": [float(t) for t in features.downbeat_times],
        },
        "retarget": None,
    }
    if params.target is not None:
        result["retarget"] = retarget_solution(motion, params.target, params.retarget, progress.sub(0.9, 1.0))
    return result


# -- retarget ------------------------------------------------------------------------------------------------------
@dataclass
class RetargetParams:
    source: Motion | None
    source_clip_id: str | None
    target: Any
    options: RetargetOptions


def prepare_retarget(request: RetargetRequest, settings: Settings) -> RetargetParams:
    """Decode an inline source, load a server-path source (allowed roots only), parse the target."""
    source = None
    if request.source is not None:
        source = motion_from_payload(request.source.model_dump())
    elif request.source_path is not None:
        from models.motion.io import load_motion

        source = load_motion(resolve_allowed_path(request.source_path, settings, "source_path"))
    return RetargetParams(source, request.source_clip_id, parse_target(request.target, settings), request.options)


def run_retarget(params: RetargetParams, context: JobContext) -> dict:
    source = params.source
    if source is None:
        context.progress.update(0.0, "loading the library clip")
        source = context.models.get("library").get_motion(params.source_clip_id)
    return retarget_solution(source, params.target, params.options, context.progress)


# -- search ------------------------------------------------------------------------------------------------------
@dataclass
class SearchParams:
    """A checked search request in the shape ``backend.library.jobs.run_search`` takes (one query kind, ``k``,
    ``filters``, ``exact``); a ``motion_path`` is already resolved inside the allowed roots."""

    request: dict


def prepare_search(request: SearchRequest, settings: Settings) -> SearchParams:
    """Resolve a server path (allowed roots only), check an inline motion and the filters."""
    from backend.library import SearchFilters

    query: dict[str, Any] = {"k": request.k, "exact": request.exact, "filters": request.filters.model_dump()}
    SearchFilters.from_dict(query["filters"])  # raises ValueError for an inverted duration range
    if request.text is not None:
        query["text"] = request.text
    elif request.clip_id is not None:
        query["clip_id"] = request.clip_id
    elif request.motion_path is not None:
        query["motion_path"] = str(resolve_allowed_path(request.motion_path, settings, "motion_path"))
    else:
        payload = request.motion.model_dump()
        if motion_from_payload(payload).is_2d:
            raise ValueError("motion search needs a 3D motion (positions (T, J, 3)); retarget 2D keypoints first")
        query["motion"] = payload
    return SearchParams(query)


def run_search(params: SearchParams, context: JobContext) -> dict:
    """Text / motion / clip query -> ranked library hits (``backend.library.jobs.run_search``; its result:
    ``{"hits": [SearchHit fields], "model", "library", "query_kind", "exact", "seconds"}``)."""
    from backend.library.jobs import run_search as library_search

    context.progress.update(0.0, "opening the library")
    library = context.models.get("library")
    with context.model_lock():  # the retrieval encoders run on the device
        return library_search(params.request, library, context.progress)


def prepare_search_video(request: VideoSearchRequest, settings: Settings) -> SearchParams:
    """Resolve the video (allowed roots only) and check it (codec, frames, length) before queueing the job."""
    from backend.library import SearchFilters
    from models.video.pose import probe_video

    path = resolve_allowed_path(request.video_path, settings, "video_path")
    SearchFilters.from_dict(request.filters.model_dump())
    probe_video(path)  # raises VideoError (a ValueError) for corrupt, empty, too long or undecodable videos
    return SearchParams({"video_path": str(path), "k": request.k, "exact": request.exact,
                         "filters": request.filters.model_dump(), "max_seconds": request.max_seconds})  # fmt: skip


def run_search_video(params: SearchParams, context: JobContext) -> dict:
    """Video -> pose front end -> ranked library hits (:func:`backend.video_search.run_video_search`)."""
    from backend.video_search import run_video_search

    context.progress.update(0.0, "opening the library")
    library = context.models.get("library")
    with context.model_lock():
        return run_video_search(params.request, library, context.progress)


# -- thumbnails ----------------------------------------------------------------------------------------------------
@dataclass
class ThumbnailParams:
    """Checked clip ids (unique, in request order) and whether missing thumbnails are rendered."""

    clip_ids: list[int]
    render: bool


def prepare_thumbnails(request: ThumbnailsRequest, library: Any) -> ThumbnailParams:
    """Check the ids against ``library`` (a :class:`backend.library.Library`) before queueing the job.

    Raises:
        ApiError: 404 ``clip_not_found`` naming the ids that are not clips of the library.
    """
    ids = list(dict.fromkeys(request.clip_ids))
    known = {record.clip_id for record in library.store.clips(ids)}
    unknown = [clip_id for clip_id in ids if clip_id not in known]
    if unknown:
        raise ApiError(404, "clip_not_found", f"no clip with id(s) {unknown} in the library {library.url}",
                       "search the library first; ids come from search hits")  # fmt: skip
    return ThumbnailParams(ids, request.render)


def run_thumbnails(params: ThumbnailParams, context: JobContext) -> dict:
    """Clip ids -> PNG thumbnails (:func:`backend.render.thumbnails.ensure_thumbnails`): ``{"thumbnails":
    [{"clip_id", "png_base64", "rendered"}], "rendered_now", "note", "seconds"}``. Rendering runs in Blender (a
    subprocess), so it does not hold the device's inference lock."""
    import base64
    import time

    from backend.render.thumbnails import ensure_thumbnails

    started = time.perf_counter()
    context.progress.update(0.0, "opening the library")
    library = context.models.get("library")
    found = ensure_thumbnails(library, params.clip_ids, render=params.render, progress=context.progress)
    thumbnails = [{"clip_id": t["clip_id"], "png_base64": base64.b64encode(t["png"]).decode("ascii"),
                   "rendered": t["rendered"]} for t in found["thumbnails"]]  # fmt: skip
    return {"thumbnails": thumbnails, "rendered_now": found["rendered_now"], "note": found["note"],
            "seconds": round(time.perf_counter() - started, 6)}  # fmt: skip


# -- echo ----------------------------------------------------------------------------------------------------------
def run_echo(params: EchoRequest, context: JobContext) -> dict:
    """The empty job: answers its message (measures the queue's round trip)."""
    context.progress.update(1.0, "echo")
    return {"message": params.message}


PIPELINES = {"conduct": run_conduct, "retarget": run_retarget, "search": run_search, "search_video": run_search_video,
             "thumbnails": run_thumbnails, "echo": run_echo}


# -- models --------------------------------------------------------------------------------------------------------
def _conductor_available(name: str):
    def check(settings: Settings) -> tuple[bool, str]:
        try:
            from models.conductor import available_models
            from models.conductor.registry import generator_runtimes
        except ImportError as exc:
            return False, f"conductor package not installed ({exc})"
        info = available_models(dict(settings.checkpoints)).get(name, {"available": False, "detail": "unknown"})
        try:
            runtimes = generator_runtimes(name)
        except (ImportError, ValueError):
            runtimes = ()
        if info["available"] and settings.runtime not in runtimes:
            return False, (f"no {settings.runtime} runtime for this model (it runs on {', '.join(runtimes)}); "
                           f"serve it with --runtime {runtimes[0]}")  # fmt: skip
        return bool(info["available"]), str(info.get("detail", ""))

    return check


def _library_runtime(library: Any) -> dict:
    """What the library's search runs on: its retrieval model's device once a search has loaded it
    (:meth:`backend.library.embedding.RetrievalModelEmbedder.runtime_info`); empty before."""
    return instance_runtime(library.embedder) if library.has_embedder else {}


def _library_loader(settings: Settings, device: str) -> Any:
    from backend.library import open_library

    # the retrieval model (settings.retrieval_model; None: the installed default) loads on the first search, on the
    # server's device; a library that does not exist is an error, not a new empty one
    return open_library(settings.library_url, create=False, embedder_path=settings.retrieval_model, device=device)


def _library_available(settings: Settings) -> tuple[bool, str]:
    try:
        from backend.library import default_library_url
        from backend.library.embedding import MODEL_ENV
        from models.retrieval.model import installed_model_dir
    except ImportError as exc:
        return False, f"library or retrieval models not installed ({exc})"
    import os

    model = Path(settings.retrieval_model or os.environ.get(MODEL_ENV) or installed_model_dir()).expanduser()
    where = settings.library_url or default_library_url()
    if not model.is_dir():
        return False, f"library {where}; no retrieval model at {model} (train one: baton train retrieval)"
    return True, f"library {where}; retrieval model {model}"


def _conductor_loader(name: str):
    def load(settings: Settings, device: str) -> Any:
        """``models.conductor.load_generator(name, checkpoint, device=device, runtime=settings.runtime)``.

        Raises:
            NotAvailableError: missing weights, or a runtime the generator does not have (its message says which).
        """
        from models.conductor import load_generator
        from models.conductor.registry import generator_runtimes

        if settings.runtime not in generator_runtimes(name):
            raise NotAvailableError(f"conductor model {name!r} has no {settings.runtime} runtime in this build; "
                                    f"serve it with --runtime {generator_runtimes(name)[0]}")  # fmt: skip
        try:
            return load_generator(name, settings.checkpoints.get(name), device=device, runtime=settings.runtime)
        except FileNotFoundError as exc:
            raise NotAvailableError(str(exc)) from None

    return load


def default_model_specs() -> list[ModelSpec]:
    """The models this server knows: the conductor generators and the motion library (with its encoders)."""
    specs = [
        ModelSpec(f"conductor:{name}", "conductor", _conductor_loader(name), _conductor_available(name),
                  uses_device=name != "procedural")  # fmt: skip
        for name in CONDUCTOR_MODELS
    ]
    specs.append(ModelSpec("library", "library", _library_loader, _library_available, runtime_of=_library_runtime))
    return specs
