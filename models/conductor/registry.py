"""Generator registry: model names -> generator classes, imported lazily (torch only loads when needed)."""

from __future__ import annotations

import importlib
import os

from models.conductor.audio import MOTION_FPS, MusicFeatures
from models.conductor.procedural import ProceduralStyle, procedural_motion
from models.motion import Motion, get_skeleton
from models.progress import Progress

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
        style: the conductor's style knobs (default :class:`ProceduralStyle()`).
    """

    name = "procedural"

    def __init__(self, checkpoint: str | os.PathLike | None = None, style: ProceduralStyle | None = None) -> None:
        if checkpoint is not None:
            raise ValueError("the procedural conductor has no weights; do not pass a checkpoint")
        self.style = style or ProceduralStyle()

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


def load_generator(name: str, checkpoint: str | os.PathLike | None = None):
    """Construct the generator ``name`` (loading its weights from ``checkpoint`` or its default location).

    Raises:
        ValueError: unknown name or unusable checkpoint; FileNotFoundError: missing weights.
    """
    try:
        cls = generator_class(name)
    except ImportError as exc:
        raise ValueError(f"conductor model {name!r} is not available: {exc}") from None
    ok, detail = cls.availability(checkpoint)
    if not ok:
        raise FileNotFoundError(f"conductor model {name!r} is not available: {detail}")
    return cls(checkpoint=checkpoint) if checkpoint is not None else cls()


def generate(features: MusicFeatures, model: str = "procedural", *, seed: int = 0, steps: int = 20,
             guidance: float | None = None, checkpoint: str | os.PathLike | None = None,
             progress: Progress | None = None) -> Motion:
    """Generate a conductor's performance for analysed music with the generator ``model``.

    Returns:
        :class:`Motion` on ``coco13`` at 30 fps, positions ``(T, 13, 2)`` in [0, 1] image coordinates (y down),
        ``T = round(features.duration_s * 30)``.

    Raises:
        ValueError: unknown model, bad ``steps``; FileNotFoundError: the model's weights are missing.
    """
    if not 1 <= int(steps) <= 1000:
        raise ValueError(f"steps must be in 1..1000, got {steps}")
    generator = load_generator(model, checkpoint)
    motion = generator.generate(features, seed=seed, steps=steps, guidance=guidance, progress=progress)
    expected = features.num_motion_frames
    if motion.num_frames != expected or motion.positions.shape[1:] != (13, 2):
        raise RuntimeError(f"{model} produced {motion.positions.shape}, expected ({expected}, 13, 2)")
    motion.metadata.setdefault("music", features.path)
    return motion
