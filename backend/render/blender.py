"""Render planned clips with headless Blender (``.venv-blender``'s bpy, in a subprocess) and encode them as MP4.

Torch never loads inside Blender and bpy lives in its own environment, so :func:`render_plans` writes one job file
for a batch of clips and runs :mod:`backend.render.render_script` once per batch (Blender's start-up and first-frame
shader compilation, ~20 s on 2 busy cores, are paid once per batch). PNG frames are turned into H.264 MP4 with the
ffmpeg binary of ``imageio-ffmpeg`` (:func:`render_plans`) or returned as arrays (:func:`render_frames`, for
thumbnails).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from backend.conductor.blend import REPO, blender_python
from backend.errors import BatonError
from models.atomic import temp_beside

SCRIPT = Path(__file__).with_name("render_script.py")
ENGINES = ("BLENDER_WORKBENCH", "BLENDER_EEVEE", "CYCLES")


def encode_mp4(frame_dir: str | os.PathLike, output: str | os.PathLike, fps: float) -> Path:
    """Encode ``frame_dir/NNNN.png`` as an H.264 MP4 (yuv420p, CRF 18) at ``fps``, atomically.

    Raises:
        BatonError: when there are no frames or ffmpeg fails (its stderr tail is in the message).
    """
    import imageio_ffmpeg

    frame_dir, output = Path(frame_dir), Path(output)
    if not sorted(frame_dir.glob("*.png")):
        raise BatonError(f"no rendered frames in {frame_dir}")
    tmp = temp_beside(output, suffix=".mp4")
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-framerate", f"{fps:g}",
               "-i", str(frame_dir / "%04d.png"), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18",
               "-threads", "1", tmp]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        Path(tmp).unlink(missing_ok=True)
        raise BatonError(f"ffmpeg failed encoding {output}: {done.stderr.strip()[-800:]}")
    os.replace(tmp, output)
    return output


def _render_batch(plans: list[dict], folder: Path, *, size: int, engine: str, timeout_s: float,
                  on_clip: Callable[[int, float], None] | None) -> list[Path]:
    """Render every plan's frames with ONE Blender process into ``folder/clip<i>/NNNN.png``; returns those folders.

    Raises ``ValueError`` for an unknown engine, ``BatonError`` when there is no Blender environment or Blender
    fails (its stderr tail is in the message).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown render engine {engine!r}; use one of {ENGINES}")
    python = blender_python()
    meta = {"size": int(size), "engine": engine, "clips": []}
    arrays: dict[str, np.ndarray] = {}
    for index, plan in enumerate(plans):
        keep = ("lens_mm", "background", "floor", "floor_z", "light", "light_rotation", "shadows")
        meta["clips"].append({"output": str(folder / f"clip{index}"), **{k: plan[k] for k in keep},
                              "view_transform": plan.get("view_transform")})  # fmt: skip
        arrays[f"matrices_{index}"] = plan["matrices"]
        arrays[f"colors_{index}"] = plan["colors"]
        arrays[f"camera_{index}"] = plan["camera"]
    job = folder / "job.npz"
    np.savez(job, meta=np.str_(json.dumps(meta)), **arrays)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([str(python), str(SCRIPT), str(job)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("clip ") and " done " in line and on_clip is not None:
                words = line.split()
                on_clip(int(words[1]), float(words[5]))
        _, stderr = process.communicate(timeout=timeout_s)
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise BatonError(f"rendering with Blender failed (exit {process.returncode}): {stderr.strip()[-1500:]}")
    return [folder / f"clip{index}" for index in range(len(plans))]


def render_plans(plans: list[dict], outputs: list[str | os.PathLike], *, size: int, fps: float,
                 engine: str = "BLENDER_WORKBENCH", timeout_s: float = 3600.0,
                 on_clip: Callable[[int, float], None] | None = None) -> list[Path]:
    """Render each plan (:func:`backend.render.mannequin.plan_clip`) to the MP4 at the same index of ``outputs``.

    Args:
        plans / outputs: equally long lists.
        size: image size in pixels; fps: frame rate written into the MP4.
        engine: a Blender render engine (:data:`ENGINES`).
        on_clip: called as ``on_clip(index, seconds)`` when a clip's frames are rendered.

    Returns:
        The MP4 paths. Raises ``ValueError`` for mismatched lists or an unknown engine, ``BatonError`` when there
        is no Blender environment or Blender fails (its stderr tail is in the message).
    """
    if len(plans) != len(outputs):
        raise ValueError(f"{len(plans)} plans but {len(outputs)} outputs")
    done: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="baton-render-") as tmp:
        folders = _render_batch(plans, Path(tmp), size=size, engine=engine, timeout_s=timeout_s, on_clip=on_clip)
        for folder, output in zip(folders, outputs, strict=True):
            output = Path(output)
            output.parent.mkdir(parents=True, exist_ok=True)
            done.append(encode_mp4(folder, output, fps))
            shutil.rmtree(folder, ignore_errors=True)
    return done


def render_frames(plans: list[dict], *, size: int, engine: str = "BLENDER_WORKBENCH", timeout_s: float = 3600.0,
                  on_clip: Callable[[int, float], None] | None = None) -> list[np.ndarray]:
    """Render each plan with one Blender process and return its frames, ``(F, size, size, 3) uint8`` RGB per plan.

    Raises the errors of :func:`render_plans` (``ValueError``: unknown engine; ``BatonError``: no Blender or it
    failed or wrote no frames).
    """
    from PIL import Image

    frames: list[np.ndarray] = []
    with tempfile.TemporaryDirectory(prefix="baton-render-") as tmp:
        folders = _render_batch(plans, Path(tmp), size=size, engine=engine, timeout_s=timeout_s, on_clip=on_clip)
        for folder in folders:
            files = sorted(folder.glob("*.png"))
            if not files:
                raise BatonError(f"Blender wrote no frames into {folder}")
            images = []
            for file in files:
                with Image.open(file) as image:
                    images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
            frames.append(np.stack(images))
    return frames
