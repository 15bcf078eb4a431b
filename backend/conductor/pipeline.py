"""Embedded conductor pipeline: audio file -> MusicFeatures -> COCO-13 motion -> retargeted rigs -> files.

Used by ``baton conduct`` and ``baton demo`` (no server). Retargeting a 2D conductor motion lifts it to 3D
(:func:`models.motion.lift2d.lift_coco13`, inside :func:`models.motion.retarget.retarget`: frontal plane, human
scale, arms towards the viewer) and keeps the body in place (``root="inplace"``, no foot locking: a conductor
stands still; legs stay at rest).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from models.progress import Progress

#: Rig names ``--rig`` accepts besides a ``.bvh`` file.
RIG_NAMES = ("smpl24", "kit21", "coco13")
OUTPUT_SUFFIXES = (".npz", ".bvh", ".blend")


@dataclass
class ConductResult:
    """What the pipeline produced: the analysed music, the 2D motion, and retargeted motions by rig name."""

    features: object
    motion: object
    rigs: dict[str, object] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)


def terminal_progress(label: str = "baton", stream=None) -> Progress:
    """A :class:`Progress` for the terminal (stderr): one redrawn line ``label [ 42.0%] stage`` on a TTY, one line
    per stage otherwise (logs stay readable)."""
    stream = stream or sys.stderr
    interactive = bool(getattr(stream, "isatty", lambda: False)())
    state = {"last": "", "stage": None}

    def show(fraction: float, stage: str) -> None:
        text = f"{label} [{fraction * 100:5.1f}%] {stage}"
        if interactive and text != state["last"]:
            stream.write("\r" + text.ljust(72) + ("\n" if fraction >= 1.0 else ""))
            stream.flush()
        elif not interactive and stage != state["stage"]:
            stream.write(text + "\n")
            stream.flush()
        state["last"], state["stage"] = text, stage

    return Progress(callback=show)


#: The model ``baton demo`` / ``baton conduct`` use when none is named. The shipped diffusion weights (trained on CPU
#: on a synthetic teacher) follow the beat less well than the procedural conductor (BC 0.34 vs 0.92 on Brahms), so
#: the procedural conductor stays the default until better diffusion weights ship.
DEFAULT_MODEL = "procedural"


def default_model() -> str:
    """The default generator name (:data:`DEFAULT_MODEL`)."""
    return DEFAULT_MODEL


def conduct_audio(audio: str | os.PathLike, model: str = "procedural", *, seed: int = 0, steps: int = 20,
                  guidance: float | None = None, checkpoint: str | os.PathLike | None = None,
                  progress: Progress | None = None, device: str = "cpu", runtime: str = "torch",
                  energy: float | None = None, size: float | None = None,
                  legato: float | None = None) -> ConductResult:
    """Analyse ``audio`` and generate a COCO-13 conductor motion with ``model``, loaded on ``device`` with
    ``runtime`` by :func:`models.conductor.load_generator` (the server's loader; check a user's device and runtime
    first with :func:`check_device_runtime`). ``energy``, ``size``, ``legato``: the procedural conductor's
    controls (``None`` = default; :func:`models.conductor.registry.style_from_controls`).

    Raises:
        FileNotFoundError / ValueError: bad audio (see :func:`models.conductor.analyze_audio`), unknown model,
            missing weights, a runtime the model does not have, a control out of range or given to a learned model.
    """
    from models.conductor import analyze_audio, generate
    from models.conductor.registry import style_from_controls

    style_from_controls(model, energy, size, legato)  # bad controls fail before the audio is analysed

    timings = {}
    start = time.perf_counter()
    features = analyze_audio(audio, progress=progress.sub(0.0, 0.3) if progress else None)
    timings["analyze_s"] = time.perf_counter() - start
    start = time.perf_counter()
    motion = generate(features, model, seed=seed, steps=steps, guidance=guidance, checkpoint=checkpoint,
                      progress=progress.sub(0.3, 0.8) if progress else None, device=device,
                      runtime=runtime, energy=energy, size=size, legato=legato)  # fmt: skip
    timings["generate_s"] = time.perf_counter() - start
    motion.metadata.update({"music": str(audio), "tempo_bpm": features.tempo_bpm, "meter": features.meter})
    return ConductResult(features=features, motion=motion, timings_s=timings)


def check_device_runtime(model: str, device: str = "cpu", runtime: str = "torch") -> str:
    """Check ``--device`` / ``--runtime`` for conductor ``model`` as the server does at start (before any audio is
    read): :func:`backend.model_registry.resolve_device`, :func:`backend.model_registry.check_runtime`, and the
    generator's own runtimes.

    Args:
        model: a conductor model name (:data:`models.conductor.registry.GENERATORS`).
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``.
        runtime: ``torch`` or ``onnx``.

    Returns:
        the resolved device (``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``).

    Raises:
        BatonError: a device this machine lacks (``--device cuda`` without CUDA), an onnx runtime that cannot run
            there; ValueError: an unknown model or runtime, or a runtime the model does not have.
    """
    from backend.model_registry import check_runtime, resolve_device
    from models.conductor.registry import RUNTIMES, generator_runtimes

    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; use {' or '.join(RUNTIMES)}")
    resolved = resolve_device(device)
    check_runtime(runtime, resolved)
    try:
        offered = generator_runtimes(model)
    except ImportError as exc:
        raise ValueError(f"conductor model {model!r} is not available: {exc}") from None
    if runtime not in offered:
        raise ValueError(f"conductor model {model!r} has no {runtime} runtime (it runs on {', '.join(offered)}); "
                         f"use --runtime {offered[0]}")  # fmt: skip
    return resolved


def retarget_conductor(motion, target):
    """Retarget a 2D COCO-13 conductor motion onto ``target`` (registry name, ``.bvh`` path, Skeleton, TargetRig).

    :func:`models.motion.retarget.retarget` lifts the 2D keypoints to 3D itself; the body stays in place.

    Returns:
        the retargeted :class:`models.motion.Motion` (positions, local rotations, root translation) on the target.
    """
    from models.motion.retarget import retarget

    return retarget(motion, target, root="inplace", foot_lock=False).motion


def resolve_rig(rig: str) -> str:
    """Validate ``--rig``: a registry name or an existing ``.bvh`` file (returned unchanged).

    Raises:
        ValueError: anything else; FileNotFoundError: a missing ``.bvh``.
    """
    if rig in RIG_NAMES:
        return rig
    if rig.lower().endswith(".bvh"):
        if not Path(rig).is_file():
            raise FileNotFoundError(f"rig BVH not found: {rig}")
        return rig
    raise ValueError(f"unknown rig {rig!r}; use one of {', '.join(RIG_NAMES)} or a .bvh file")


def check_output(path: str | os.PathLike) -> Path:
    """The output path if its ending is one we write (``.npz``, ``.bvh``, ``.blend``), else ValueError."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"output {path} must end in one of {', '.join(OUTPUT_SUFFIXES)}")
    return path


def save_motion(result: ConductResult, rig: str, output: str | os.PathLike, audio: str | os.PathLike,
                progress: Progress | None = None) -> Path:
    """Write the conducted motion for ``rig`` as ``.npz`` (Baton motion), ``.bvh`` or ``.blend``.

    ``.npz`` on ``coco13`` keeps the generated 2D keypoints; every other case retargets (3D, rotations).
    ``.blend`` holds one armature with the action and the music as a sound strip (needs ``.venv-blender``).
    """
    from models.motion.bvh import save_bvh
    from models.motion.io import save_npz

    output = check_output(output)
    suffix = output.suffix.lower()
    if suffix == ".npz" and rig == "coco13":
        return save_npz(result.motion, output)
    if rig not in result.rigs:
        result.rigs[rig] = retarget_conductor(result.motion, rig)
    motion = result.rigs[rig]
    if suffix == ".npz":
        return save_npz(motion, output)
    if suffix == ".bvh":
        return save_bvh(motion, output)
    from backend.conductor.blend import write_blend

    name = Path(rig).stem if rig.lower().endswith(".bvh") else rig
    return write_blend(output, {name: motion}, audio=audio, frames=result.motion.num_frames, progress=progress)
