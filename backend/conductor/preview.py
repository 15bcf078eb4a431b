"""Headless previews of a conducted piece: an MP4 (stick figures + the music) and a beat-alignment PNG.

Frames are drawn with Pillow (fast, no display) and encoded by the ffmpeg binary that ``imageio-ffmpeg`` ships
(H.264 video, AAC audio muxed from the original music file). The plot uses matplotlib's Agg backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from models.atomic import atomic_write
from models.motion.skeleton import COCO13_EDGES
from models.progress import Progress

SIZE = 480
_BATON = (200, 40, 40)
_BODY = (60, 90, 160)
_LEFT = (40, 140, 80)


def _front_view(positions: np.ndarray, parents) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """3D rig positions ``(T, J, 3)`` (backend, Y up) -> ``(T, J, 2)`` panel coordinates in [0, 1] (y down)."""
    xy = np.stack([positions[..., 0], -positions[..., 1]], axis=-1)  # seen from the front: the subject's left (+X) is
    # on the viewer's right
    lo, hi = xy.reshape(-1, 2).min(0), xy.reshape(-1, 2).max(0)
    span = float((hi - lo).max()) * 1.15 + 1e-6
    centre = (lo + hi) / 2
    return (xy - centre) / span + 0.5, [(p, j) for j, p in enumerate(parents) if p >= 0]


#: The preview's default view of COCO-13 image coordinates: centre (x, y) and zoom (1.6x on the upper body).
DEFAULT_VIEW = (0.5, 0.55, 1.6)
#: Free border kept around the whole performance by :func:`preview_view`, as a fraction of the panel.
VIEW_MARGIN = 0.03


def preview_view(positions: np.ndarray) -> tuple[float, float, float]:
    """The view ``(centre x, centre y, zoom)`` that shows every keypoint of a whole performance ``(T, J, 2)`` (COCO-13
    image coordinates in [0, 1]) inside the panel with a :data:`VIEW_MARGIN` border: the default 1.6x upper-body
    zoom where the motion fits, less zoom (and the centre moved as little as needed) where a wide pattern would
    touch the edge. Non-finite coordinates are ignored; without any finite one, :data:`DEFAULT_VIEW`."""
    points = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    points = points[np.isfinite(points).all(axis=1)]
    if not len(points):
        return DEFAULT_VIEW
    low, high = points.min(axis=0), points.max(axis=0)
    room = 0.5 - VIEW_MARGIN  # panel units from the centre to the usable edge
    zoom = float(min(DEFAULT_VIEW[2], 2 * room / max(float((high - low).max()), 1e-6)))
    centre = [float(np.clip(default, hi - room / zoom, lo + room / zoom))
              for default, lo, hi in zip(DEFAULT_VIEW[:2], low, high, strict=True)]  # fmt: skip
    return centre[0], centre[1], zoom


def preview_pixels(positions: np.ndarray, view: tuple[float, float, float] = DEFAULT_VIEW) -> np.ndarray:
    """COCO-13 image coordinates ``(..., 2)`` in [0, 1] -> pixel coordinates in the preview's left panel (``SIZE``
    pixels square) for a ``view`` ``(centre x, centre y, zoom)`` (:func:`preview_view`; default 1.6x on the upper
    body)."""
    cx, cy, zoom = view
    return ((np.asarray(positions, dtype=np.float64) - np.array([cx, cy])) * zoom + 0.5) * SIZE


def bar_numbers(beat_times: np.ndarray, downbeat_times: np.ndarray | None) -> np.ndarray:
    """Each beat's count in its bar (1 = downbeat), ``(B,)`` int; 0 where no downbeat precedes it or none is given.

    Args:
        beat_times: ``(B,)`` increasing beat times, seconds.
        downbeat_times: ``(D,)`` times of the bars' first beats (a subset of ``beat_times``, matched within 50 ms).
    """
    beats = np.asarray(beat_times, dtype=np.float64)
    counts = np.zeros(beats.size, dtype=np.int64)
    if downbeat_times is None or not len(downbeat_times) or not beats.size:
        return counts
    down = {int(np.argmin(np.abs(beats - d))) for d in np.asarray(downbeat_times, dtype=np.float64)
            if np.min(np.abs(beats - d)) < 0.05}  # fmt: skip
    count = 0
    for i in range(beats.size):
        count = 1 if i in down else count + 1 if count else 0
        counts[i] = count
    return counts


def trail_frames(beat_times: np.ndarray | None, downbeat_times: np.ndarray | None, fps: float) -> int:
    """How many frames of the baton hand's path the preview draws: one bar (the median bar length between
    downbeats, or four median beats), at least 0.5 s and at most 4 s; 20 frames without beats."""
    down = np.asarray(downbeat_times if downbeat_times is not None else [], dtype=np.float64)
    beats = np.asarray(beat_times if beat_times is not None else [], dtype=np.float64)
    if down.size >= 2:
        seconds = float(np.median(np.diff(down)))
    elif beats.size >= 2:
        seconds = 4.0 * float(np.median(np.diff(beats)))
    else:
        return 20
    return int(round(np.clip(seconds, 0.5, 4.0) * fps))


def render_preview_mp4(output: str | os.PathLike, motion2d, audio: str | os.PathLike | None, *, rig3d=None,
                       beat_times: np.ndarray | None = None, downbeat_times: np.ndarray | None = None,
                       title: str = "", progress: Progress | None = None) -> Path:  # fmt: skip
    """Render ``motion2d`` (COCO-13, image coordinates) — and, if given, a retargeted 3D rig seen from the front —
    as an MP4 at the motion's fps with ``audio`` muxed in (AAC). The baton hand leaves a trail one bar long that
    fades with age (:func:`trail_frames`), so the beat pattern of the meter is visible in any frame; music beats
    flash a marker with the beat's count in the bar (:func:`bar_numbers`, from ``downbeat_times``). Atomic write.

    Returns:
        the output path.
    """
    import imageio_ffmpeg
    from PIL import Image, ImageDraw

    output = Path(output)
    frames = motion2d.num_frames
    fps = motion2d.fps
    panels = 2 if rig3d is not None else 1
    width = SIZE * panels
    pixels2d = preview_pixels(motion2d.positions, preview_view(motion2d.positions))
    if rig3d is not None:
        pts3d, bones3d = _front_view(rig3d.positions[:frames].astype(np.float64), rig3d.skeleton.parents)
    beats = np.asarray(beat_times if beat_times is not None else [], dtype=np.float64)
    beat_frames = np.round(beats * fps)
    counts = bar_numbers(beats, downbeat_times)
    trail_length = trail_frames(beat_times, downbeat_times, fps)
    # trail colour by age in frames (0 = newest): from the baton colour towards the background, oldest palest
    baton, background = np.array(_BATON), np.array([250, 250, 248])
    fades = [tuple(int(c) for c in baton + (background - baton) * (0.35 + 0.6 * age / max(1, trail_length)))
             for age in range(trail_length + 1)]  # fmt: skip
    kwargs = {"audio_path": str(audio), "audio_codec": "aac"} if audio else {}
    with atomic_write(output, ".tmp.mp4") as tmp:
        writer = imageio_ffmpeg.write_frames(tmp, (width, SIZE), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                             macro_block_size=16, quality=6, ffmpeg_log_level="error",
                                             output_params=["-shortest"], **kwargs)  # fmt: skip
        writer.send(None)
        for f in range(frames):
            image = Image.new("RGB", (width, SIZE), (250, 250, 248))
            draw = ImageDraw.Draw(image)
            p = pixels2d[f]
            trail = pixels2d[max(0, f - trail_length) : f + 1, 10]
            for k in range(1, len(trail)):
                draw.line([tuple(trail[k - 1]), tuple(trail[k])], fill=fades[len(trail) - 1 - k], width=3)
            for a, b in COCO13_EDGES:
                colour = _BATON if b in (8, 10) else _LEFT if b in (7, 9) else _BODY
                draw.line([tuple(p[a]), tuple(p[b])], fill=colour, width=5)
            draw.ellipse([p[10][0] - 7, p[10][1] - 7, p[10][0] + 7, p[10][1] + 7], fill=_BATON)
            if rig3d is not None:
                q = pts3d[f] * SIZE + np.array([SIZE, 0.0])
                for a, b in bones3d:
                    draw.line([tuple(q[a]), tuple(q[b])], fill=_BODY, width=4)
                draw.text((SIZE + 10, 10), f"retargeted: {rig3d.skeleton.name}", fill=(40, 40, 40))
            if beat_frames.size and np.min(np.abs(beat_frames - f)) <= 1:
                draw.ellipse([SIZE - 40, 15, SIZE - 15, 40], fill=(230, 120, 20))
                count = counts[int(np.argmin(np.abs(beat_frames - f)))]
                if count:
                    draw.text((SIZE - 31, 21), str(count), fill=(255, 255, 255))
            draw.text((10, 10), f"{title}  {f / fps:6.2f} s", fill=(40, 40, 40))
            draw.rectangle([0, SIZE - 6, int(width * (f + 1) / frames), SIZE], fill=(120, 120, 120))
            writer.send(np.asarray(image, dtype=np.uint8).tobytes())
            if progress and f % 30 == 0:
                progress.update(f / frames, "rendering preview video")
        writer.close()
    if progress:
        progress.update(1.0, "rendered preview video")
    return output


def plot_beats_png(output: str | os.PathLike, features, motion2d, *, title: str = "") -> Path:
    """A PNG: the music's loudness with its beats (downbeats bold) above the motion's summed joint speed with its
    beats (speed minima), plus BC (seconds clock) in the title. Atomic write. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.metrics.beats import bc_seconds, motion_beat_frames, motion_speed

    output = Path(output)
    fps = motion2d.fps
    t = np.arange(motion2d.num_frames) / fps
    speed = motion_speed(motion2d.positions) * fps
    motion_beats = motion_beat_frames(motion2d.positions) / fps
    bc = bc_seconds(features.beat_times, motion2d.positions, fps)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 4.8), sharex=True)
    top.plot(t, features.loudness[: len(t)], color="0.4", lw=1, label="loudness")
    for i, beat in enumerate(features.beat_times):
        top.axvline(beat, color="tab:orange", lw=1.6 if beat in features.downbeat_times else 0.7,
                    label="music beats" if i == 0 else None)  # fmt: skip
    top.set_ylabel("music")
    top.legend(loc="upper right", fontsize=8)
    bottom.plot(t, speed, color="tab:blue", lw=1, label="summed joint speed")
    bottom.plot(motion_beats, np.interp(motion_beats, t, speed), "v", color="tab:red", ms=5, label="motion beats")
    for beat in features.beat_times:
        bottom.axvline(beat, color="tab:orange", lw=0.5, alpha=0.6)
    bottom.set_ylabel("motion (units/s)")
    bottom.set_xlabel("time (s)")
    bottom.legend(loc="upper right", fontsize=8)
    figure.suptitle(f"{title}  tempo {features.tempo_bpm:.0f} BPM, {features.meter}/4 — BC (seconds) {bc:.3f}")
    figure.tight_layout()
    try:
        with atomic_write(output, ".tmp.png") as tmp:
            figure.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(figure)
    return output
