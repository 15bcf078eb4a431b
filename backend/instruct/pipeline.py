"""Text (or a timeline of texts) -> smpl22 motion (:mod:`models.instruct`) -> retargeted onto a rig -> files.

:func:`generate_to_rig` is the one entry point for the command line (``baton generate``) and the backend's
generate-from-text job: it validates the request before any work, generates ``samples`` variations in one batch,
retargets each onto the requested rig with the retarget solver (foot lock on, full root motion: rotations, not just
positions) and reports foot skate before / after the foot lock.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from blender_addon.client import TEXT_GUIDANCE
from models.progress import Progress

#: Rig names besides a ``.bvh`` file.
RIG_NAMES = ("smpl24", "smpl22", "kit21", "coco13")
OUTPUT_SUFFIXES = (".npz", ".bvh", ".blend")


def resolve_rig(rig: str | os.PathLike) -> str:
    """A registry rig name or an existing ``.bvh`` path (as a string).

    Raises:
        ValueError: anything else; FileNotFoundError: a missing ``.bvh``.
    """
    text = str(rig)
    if text in RIG_NAMES:
        return text
    if text.lower().endswith(".bvh"):
        if not Path(text).is_file():
            raise FileNotFoundError(f"rig BVH not found: {text}")
        return text
    raise ValueError(f"unknown rig {text!r}; use one of {', '.join(RIG_NAMES)} or a .bvh file")


def check_request(prompt_or_timeline, *, seconds: float | None, samples: int, guidance: float) -> None:
    """Validate a generation request without loading anything (same rules as ``TextToMotion.generate``).

    Raises:
        ValueError: with a message naming what is wrong.
    """
    from models.instruct.generator import (
        check_generation_args,
        check_prompt,
        check_seconds,
        normalise_timeline,
    )

    check_generation_args(samples, guidance)
    if isinstance(prompt_or_timeline, str):
        check_prompt(prompt_or_timeline)
        if seconds is not None:
            check_seconds(seconds)
    else:
        normalise_timeline(list(prompt_or_timeline), seconds)


def generate_to_rig(
    generator,
    prompt_or_timeline: str | Sequence,
    *,
    seconds: float | None = None,
    seed: int = 0,
    samples: int = 1,
    guidance: float = TEXT_GUIDANCE,
    rig: str | os.PathLike = "smpl24",
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Generate motions from text and retarget them onto ``rig``.

    Args:
        generator: a :class:`models.instruct.TextToMotion` (``load_text_to_motion()``).
        prompt_or_timeline: a prompt or a sequence of :class:`models.instruct.TimelineSegment`.
        seconds / seed / samples / guidance: as :meth:`models.instruct.TextToMotion.generate`.
        rig: ``smpl24`` | ``smpl22`` | ``kit21`` | ``coco13`` | a ``.bvh`` file (its rest pose is the rig).
        progress: optional progress sink (raises ``models.progress.Cancelled``; nothing is written here).

    Returns:
        One dict per sample: ``{"motion": Motion on the rig (positions, local rotations, root translation, 20 fps),
        "smpl22": the generated smpl22 Motion, "report": retarget report incl. ``foot_skate_before_cm`` /
        ``foot_skate_after_cm``, "sample": k}``.

    Raises:
        ValueError / FileNotFoundError: bad request or rig (before any generation).
    """
    from models.motion.retarget import retarget

    check_request(prompt_or_timeline, seconds=seconds, samples=samples, guidance=guidance)
    target = resolve_rig(rig)
    progress = progress or Progress()
    motions = generator.generate(prompt_or_timeline, seconds=seconds, seed=seed, samples=samples,
                                 guidance=guidance, progress=progress.sub(0.0, 0.85))  # fmt: skip
    out = []
    for k, motion in enumerate(motions):
        progress.update(0.85 + 0.15 * k / len(motions), f"retargeting sample {k + 1}/{len(motions)} onto {target}")
        result = retarget(motion, target, foot_lock=True)
        retargeted = result.motion
        retargeted.metadata = {**motion.metadata, "rig": target}
        report = result.report()
        report.pop("mapping", None)
        out.append({"motion": retargeted, "smpl22": motion, "report": report, "sample": k})
    progress.update(1.0, "done")
    return out


def check_output(path: str | os.PathLike) -> Path:
    """The output path if its ending is ``.npz``, ``.bvh`` or ``.blend``, else ``ValueError``."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"output {path} must end in one of {', '.join(OUTPUT_SUFFIXES)}")
    if path.parent and not path.parent.exists():
        raise ValueError(f"output folder {path.parent} does not exist")
    return path


def output_paths(output: str | os.PathLike, count: int) -> list[Path]:
    """``OUT.ext`` for one sample, ``OUT_1.ext`` .. ``OUT_K.ext`` for ``K > 1`` (``.blend`` holds all in one)."""
    path = check_output(output)
    if count == 1 or path.suffix.lower() == ".blend":
        return [path]
    return [path.with_name(f"{path.stem}_{k + 1}{path.suffix}") for k in range(count)]


def save_generated(results: list[dict[str, Any]], output: str | os.PathLike, rig: str,
                   progress: Progress | None = None) -> list[Path]:  # fmt: skip
    """Write :func:`generate_to_rig` results: one ``.bvh`` / ``.npz`` per sample (:func:`output_paths`) or one
    ``.blend`` with an armature per sample (needs ``.venv-blender``). Files are written atomically."""
    from models.motion.bvh import save_bvh
    from models.motion.io import save_npz

    paths = output_paths(output, len(results))
    suffix = paths[0].suffix.lower()
    if suffix == ".blend":
        from backend.conductor.blend import write_blend

        name = Path(rig).stem if str(rig).lower().endswith(".bvh") else str(rig)
        motions = {f"{name}_{r['sample'] + 1}" if len(results) > 1 else name: r["motion"] for r in results}
        frames = results[0]["motion"].num_frames
        return [write_blend(paths[0], motions, audio=None, frames=frames, fps=results[0]["motion"].fps,
                            progress=progress)]  # fmt: skip
    written = []
    for result, path in zip(results, paths, strict=True):
        written.append(save_bvh(result["motion"], path) if suffix == ".bvh" else save_npz(result["motion"], path))
    return written
