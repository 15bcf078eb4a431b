"""Result thumbnails from the avatar renderer: each library clip as four poses of the same neutral mannequin.

A thumbnail is a square PNG, a 2 x 2 contact sheet of ``cell`` pixel frames read left to right, top to bottom, at 1/8,
3/8, 5/8 and 7/8 of the clip (the first and last frames of mocap takes are often a T-pose or a hold). Every clip gets
the same look (:data:`backend.render.mannequin.NEUTRAL_LOOK`: girth, colours, studio light, a camera following the
pelvis from the subject's front-left), so results compare at a glance. The renderer is the one that makes the
video-search training clips (:mod:`backend.render.blender`: headless Blender in ``.venv-blender``), so one Blender
process renders a whole batch (its ~20 s start-up is paid once per batch).

Rendered thumbnails are stored in the library (``rendered_thumbnails`` table, with the renderer settings string
:data:`RENDERER`), so each clip is rendered once per library and every client (the add-on, ``baton search
--thumbnails``, other machines on a shared PostgreSQL library) reuses them. Without a Blender environment the pose
strip drawn at import (:func:`backend.library.codec.pose_strip_png`) is returned instead, marked ``rendered: false``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np

from backend.errors import BatonError
from backend.render.mannequin import RenderSettings, plan_clip
from models.motion.motion import Motion
from models.progress import Progress

#: Frames per thumbnail and their size in pixels (the PNG is ``2 * cell`` square).
POSES = 4
CELL = 128
#: Stored beside each rendered thumbnail; bump when the look or layout changes (older renders are then redone).
RENDERER = f"mannequin-v1 workbench {POSES}x{CELL}"
#: Clips per Blender process.
BATCH = 16


def thumbnail_plan(motion: Motion, *, poses: int = POSES, cell: int = CELL) -> dict:
    """The render plan of one thumbnail: ``poses`` frames at ``(2k + 1) / (2 * poses)`` of the clip, neutral look.

    Raises:
        ValueError: for a 2D motion or a skeleton whose limbs cannot be identified (:func:`plan_clip`).
    """
    duration = max(float(motion.duration_s), 1e-3)
    settings = RenderSettings(size=int(cell), frames=int(poses), fps=poses / duration)
    return plan_clip(motion, settings, seed=0, start_s=duration / (2 * poses), neutral=True)


def contact_sheet(frames: np.ndarray) -> np.ndarray:
    """Tile ``frames (F, H, W, 3) uint8`` into a grid of ``ceil(sqrt(F))`` columns, row-major; empty cells are white.

    Returns:
        ``(rows * H, cols * W, 3) uint8``. Raises ``ValueError`` for anything but a non-empty ``(F, H, W, 3)`` array.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"contact_sheet needs frames (F, H, W, 3), got {frames.shape}")
    count, height, width, _ = frames.shape
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    sheet = np.full((rows * height, cols * width, 3), 255, dtype=np.uint8)
    for index, frame in enumerate(frames):
        row, col = divmod(index, cols)
        sheet[row * height : (row + 1) * height, col * width : (col + 1) * width] = frame
    return sheet


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an ``(H, W, 3) uint8`` RGB image as PNG (Pillow)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def render_thumbnails(motions: Sequence[Motion], *, poses: int = POSES, cell: int = CELL,
                      progress: Progress | None = None) -> list[bytes]:  # fmt: skip
    """Render one thumbnail PNG per motion with ONE Blender process.

    Args:
        motions: 3D motions (any skeleton :func:`~models.retrieval.body_parts.body_parts` understands).
        poses / cell: frames per thumbnail and their size in pixels.
        progress: updated after every clip (cancelling it stops Blender at once; nothing is returned).

    Returns:
        PNG bytes per motion, ``2 * cell`` square for 4 poses.

    Raises:
        ValueError: a 2D motion or an unknown skeleton; BatonError: no Blender environment, or Blender failed.
    """
    from backend.render.blender import render_frames

    plans = [thumbnail_plan(motion, poses=poses, cell=cell) for motion in motions]
    if not plans:
        return []

    def on_clip(index: int, seconds: float) -> None:
        if progress is not None:
            progress.update((index + 1) / len(plans), f"rendered thumbnail {index + 1} of {len(plans)}")

    frames = render_frames(plans, size=cell, on_clip=on_clip)
    return [png_bytes(contact_sheet(clip)) for clip in frames]


def blender_available() -> tuple[bool, str]:
    """Whether the renderer can run here, and why not (the Blender environment's path and how to create it)."""
    from backend.conductor.blend import blender_python

    try:
        blender_python()
    except BatonError as exc:
        return False, str(exc).replace(".blend output needs", "rendering thumbnails needs")
    return True, ""


def ensure_thumbnails(library, clip_ids: Sequence[int], *, render: bool = True, batch: int = BATCH,
                      progress: Progress | None = None) -> dict:  # fmt: skip
    """Thumbnails of ``clip_ids``: stored renders as they are, the missing ones rendered (``batch`` clips per
    Blender process, each batch saved in the library as soon as it is done, so an interrupted call keeps them).

    Args:
        library: a :class:`backend.library.Library`.
        clip_ids: clip ids (duplicates are answered once each, in order).
        render: ``False`` answers from the library only (renders, else pose strips) without starting Blender.
        batch: clips per Blender process (>= 1).
        progress: updated per rendered clip; cancelling stops at once (finished batches stay saved).

    Returns:
        ``{"thumbnails": [{"clip_id", "png": bytes, "rendered": bool}], "rendered_now": int, "note": str}`` in the
        order of ``clip_ids``; a clip the renderer cannot draw (2D, or a skeleton without recognisable legs and arms)
        keeps its pose strip; a clip with neither a render nor a pose strip is left out. ``note`` says why
        nothing was rendered when Blender is missing ("" otherwise).

    Raises:
        KeyError: an id that is not a clip of the library (before anything is rendered); ValueError: ``batch < 1``;
        BatonError: Blender failed.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    ids = list(dict.fromkeys(int(i) for i in clip_ids))
    known = {record.clip_id for record in library.store.clips(ids)}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise KeyError(f"no clip with id(s) {unknown} in {library.url}")
    stored = library.rendered_thumbnails(ids, RENDERER)
    missing = [i for i in ids if i not in stored]
    note, rendered_now = "", 0
    if missing and render:
        available, note = blender_available()
        if available:
            for start in range(0, len(missing), batch):
                chunk, motions = [], []
                for clip_id in missing[start : start + batch]:
                    motion = library.get_motion(clip_id)
                    try:
                        thumbnail_plan(motion)  # a 2D clip or a rig without legs/arms keeps its pose strip
                    except ValueError:
                        continue
                    chunk.append(clip_id)
                    motions.append(motion)
                sub = progress.sub(start / len(missing), min(1.0, (start + batch) / len(missing))) if progress else None
                pngs = render_thumbnails(motions, progress=sub)
                fresh = dict(zip(chunk, pngs, strict=True))
                library.save_rendered_thumbnails(fresh, RENDERER)
                stored.update(fresh)
                rendered_now += len(chunk)
    out = []
    for clip_id in ids:
        if clip_id in stored:
            out.append({"clip_id": clip_id, "png": stored[clip_id], "rendered": True})
        elif (strip := library.store.thumbnail(clip_id)) is not None:
            out.append({"clip_id": clip_id, "png": strip, "rendered": False})
    if progress is not None:
        progress.update(1.0, "thumbnails ready")
    return {"thumbnails": out, "rendered_now": rendered_now, "note": note}
