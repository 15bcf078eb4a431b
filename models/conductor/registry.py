"""Generator registry: model names -> generator classes, imported lazily (torch only loads when needed).

Every generator class takes ``(checkpoint=None, *, device="cpu", runtime="torch")`` and lists the runtimes it has
in ``RUNTIMES``; ``runtime_info()`` on an instance says what it really runs on (``{"device", "runtime",
"providers"}``: the torch device of its modules, or its onnxruntime sessions' ``get_providers()``).
"""

from __future__ import annotations

import importlib
import os

from models.conductor.audio import MOTION_FPS, MusicFeatures
from models.conductor.procedural import ProceduralStyle, procedural_motion
from models.motion import Motion, get_skeleton
from models.progress import Progress

#: Inference runtimes a generator may offer: torch modules, or onnxruntime sessions of its exported graphs.
RUNTIMES = ("torch", "onnx")

#: name -> (module, class). Diffusion lives in models/conductor/diffusion*.py.
GENERATORS: dict[str, tuple[str, str]] = {
    "procedural": ("models.conductor.registry", "ProceduralConductor"),
    "diffusion": ("models.conductor.diffusion", "DiffusionConductor"),
    "m2sgan": ("models.conductor.virtualconductor", "M2SGANConductor"),
}


class ProceduralConductor:
    """The ``procedural`` generator: :func:`models.conductor.procedural.procedural_motion`, no weights.

    Args:
        checkpoint: unused (there are no weights); accepted for a uniform interface.
        device, runtime: accepted for the uniform interface and ignored: the patterns are numpy on the CPU, whatever
            the server's device and runtime (``runtime_info()`` says so).
        style: the conductor's style knobs (default :class:`ProceduralStyle()`).
    """

    name = "procedural"
    #: No network: any runtime setting serves it (it runs numpy).
    RUNTIMES = RUNTIMES

    def __init__(self, checkpoint: str | os.PathLike | None = None, *, device: str = "cpu", runtime: str = "torch",
                 style: ProceduralStyle | None = None) -> None:
        if checkpoint is not None:
            raise ValueError("the procedural conductor has no weights; do not pass a checkpoint")
        self.style = style or ProceduralStyle()

    def runtime_info(self) -> dict:
        """``{"device": "cpu", "runtime": "numpy", "providers": []}``: rule-based, no model to place."""
        return {"device": "cpu", "runtime": "numpy", "providers": []}

    @classmethod
    def availability(cls, checkpoint: str | os.PathLike | None = None) -> tuple[bool, str]:
        return True, "rule-based beat patterns (no weights)"

    def generate(self, features: MusicFeatures, *, seed: int = 0, steps: int = 20, guidance: float | None = None,
                 progress: Progress | None = None) -> Motion:
        if progress:
            progress.update(0.0, "procedural conductor")
        positions = procedural_motion(features, self.style, seed=seed)
        if progress:
            progress.update(1.0, "procedural conductor")
        return Motion(skeleton=get_skeleton("coco13"), fps=MOTION_FPS, positions=positions,
                      metadata={"generator": "procedural", "seed": int(seed), "style": self.style.to_dict(),
                                "meter": int(features.meter), "tempo_bpm": float(features.tempo_bpm)})


def generator_class(name: str):
    """The generator class registered as ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
        ModuleNotFoundError: the generator's module is not installed/built (e.g. diffusion before it lands).
    """
    if name not in GENERATORS:
        raise ValueError(f"unknown conductor model {name!r}; choose one of {', '.join(GENERATORS)}")
    module, cls = GENERATORS[name]
    return getattr(importlib.import_module(module), cls)


def available_models(checkpoints: dict[str, str | os.PathLike] | None = None) -> dict[str, dict]:
    """``{name: {"available": bool, "detail": str}}`` for every registered generator (nothing heavy is loaded
    beyond reading a checkpoint header)."""
    checkpoints = checkpoints or {}
    report = {}
    for name in GENERATORS:
        try:
            ok, detail = generator_class(name).availability(checkpoints.get(name))
        except (ImportError, AttributeError) as exc:
            ok, detail = False, f"not built: {exc}"
        report[name] = {"available": bool(ok), "detail": str(detail)}
    return report


def generator_runtimes(name: str) -> tuple[str, ...]:
    """The runtimes generator ``name`` can run on (its class's ``RUNTIMES``; ``("torch",)`` when it lists none).

    Raises:
        ValueError / ModuleNotFoundError: see :func:`generator_class`.
    """
    return tuple(getattr(generator_class(name), "RUNTIMES", ("torch",)))


#: The user-facing conductor controls (``baton conduct --energy/--size/--legato``, the server's conduct job, the
#: add-on's sliders) -> their allowed range; they shape the ``procedural`` conductor only (:class:`ProceduralStyle`).
CONTROLS: dict[str, tuple[float, float]] = dict(ProceduralStyle.CONTROLS)


def style_from_controls(model: str, energy: float | None = None, size: float | None = None,
                        legato: float | None = None) -> ProceduralStyle | None:
    """The :class:`ProceduralStyle` for the named controls (``None`` = its default), or ``None`` when none is given.

    Raises:
        ValueError: a control out of its range (:data:`CONTROLS`; the message names it), or a non-default control
            for a learned model (``diffusion``, ``m2sgan``): the controls shape the procedural conductor only.
    """
    given = {k: v for k, v in {"energy": energy, "size": size, "legato": legato}.items() if v is not None}
    if not given:
        return None
    if model != "procedural":
        defaults = ProceduralStyle()
        changed = [k for k, v in given.items() if float(v) != getattr(defaults, k)]
        if changed:
            raise ValueError(f"{', '.join(changed)} shape(s) the procedural conductor only; conductor model "
                             f"{model!r} is learned and has no such control (use model procedural, or leave "
                             f"{', '.join(changed)} at the default)")  # fmt: skip
        return None
    # ProceduralStyle checks each control's range (ProceduralStyle.CONTROLS) and names the one that is wrong
    return ProceduralStyle(**{k: float(v) if isinstance(v, (int, float)) else v for k, v in given.items()})


def load_generator(name: str, checkpoint: str | os.PathLike | None = None, *, device: str = "cpu",
                   runtime: str = "torch", style: ProceduralStyle | None = None):
    """Construct the generator ``name`` (loading its weights from ``checkpoint`` or its default location) on
    ``device`` with ``runtime``; ``style`` (the procedural conductor's :class:`ProceduralStyle`, e.g. from
    :func:`style_from_controls`) is for ``procedural`` only.

    Args:
        name: a key of :data:`GENERATORS`.
        checkpoint: weights file or run folder; ``None`` = the generator's default location.
        device: torch device string (``cpu``, ``cuda``, ``cuda:N``); with ``runtime="onnx"`` the onnxruntime
            device (CUDA execution provider for ``cuda*``).
        runtime: ``torch`` or ``onnx`` (:data:`RUNTIMES`); the generator must list it in its ``RUNTIMES``.

    Raises:
        ValueError: unknown name or runtime, a runtime the generator does not have, an unusable checkpoint, or a
            ``style`` for a model other than ``procedural``; FileNotFoundError: missing weights.
    """
    if style is not None and name != "procedural":
        raise ValueError(f"a conductor style (energy, size, legato) shapes the procedural conductor only; "
                         f"conductor model {name!r} is learned and takes none")  # fmt: skip
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    try:
        cls = generator_class(name)
    except ImportError as exc:
        raise ValueError(f"conductor model {name!r} is not available: {exc}") from None
    offered = tuple(getattr(cls, "RUNTIMES", ("torch",)))
    if runtime not in offered:
        raise ValueError(f"conductor model {name!r} has no {runtime} runtime (it runs on {', '.join(offered)})")
    ok, detail = cls.availability(checkpoint)
    if not ok:
        raise FileNotFoundError(f"conductor model {name!r} is not available: {detail}")
    if style is not None:
        return cls(checkpoint, device=device, runtime=runtime, style=style)
    return cls(checkpoint, device=device, runtime=runtime)


def generate(features: MusicFeatures, model: str = "procedural", *, seed: int = 0, steps: int = 20,
             guidance: float | None = None, checkpoint: str | os.PathLike | None = None,
             progress: Progress | None = None, device: str = "cpu", runtime: str = "torch",
             energy: float | None = None, size: float | None = None, legato: float | None = None) -> Motion:
    """Generate a conductor's performance for analysed music with the generator ``model`` (loaded on ``device``
    with ``runtime``, see :func:`load_generator`).

    ``energy`` (0..1), ``size`` (0.25..2) and ``legato`` (0..1; 0 staccato) are the procedural conductor's
    controls (:data:`CONTROLS`; ``None`` = the default): see :func:`style_from_controls`.

    Returns:
        :class:`Motion` on ``coco13`` at 30 fps, positions ``(T, 13, 2)`` in [0, 1] image coordinates (y down),
        ``T = round(features.duration_s * 30)``; ``metadata["runtime_info"]`` says what the generator ran on
        (its ``runtime_info()``: ``{"device", "runtime", "providers"}``).

    Raises:
        ValueError: unknown model, bad ``steps``, a control out of range or given to a learned model;
            FileNotFoundError: the model's weights are missing.
    """
    if not 1 <= int(steps) <= 1000:
        raise ValueError(f"steps must be in 1..1000, got {steps}")
    style = style_from_controls(model, energy, size, legato)
    generator = load_generator(model, checkpoint, device=device, runtime=runtime, style=style)
    motion = generator.generate(features, seed=seed, steps=steps, guidance=guidance, progress=progress)
    expected = features.num_motion_frames
    if motion.num_frames != expected or motion.positions.shape[1:] != (13, 2):
        raise RuntimeError(f"{model} produced {motion.positions.shape}, expected ({expected}, 13, 2)")
    motion.metadata.setdefault("music", features.path)
    if callable(getattr(generator, "runtime_info", None)):
        motion.metadata["runtime_info"] = dict(generator.runtime_info())
    return motion
