"""Draw ``docs/img/conductor_demo_meters.png``: one frame of ``baton demo``'s MP4 per meter (2/4, 3/4, 4/4).

For each meter Baton synthesises a 16 s piece (``backend.conductor.synth.write_demo_piece``, 96 BPM), runs the real
``baton demo PIECE -o DIR --json`` on it (default model, seed 0) and takes the MP4 frame one frame before a downbeat
in the middle of the piece, when the preview's one-bar baton trail holds the whole bar just conducted. The left
(generated COCO-13) panel of each frame is tiled left to right with the meter and the front end's estimate above it;
below, the same frame zoomed on the baton hand's path over that bar (found from the demo's ``_coco13.npz``).

Usage (backend environment; about a minute)::

    .venv/bin/python scripts/conductor_demo_frames_png.py docs/img/conductor_demo_meters.png
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from backend.conductor.preview import SIZE, preview_pixels, preview_view
from backend.conductor.synth import write_demo_piece

METERS = (2, 3, 4)


def demo_frame(meter: int, work: Path) -> tuple[np.ndarray, tuple[int, int, int, int], dict]:
    """The ``(SIZE, SIZE, 3)`` uint8 left panel of the demo MP4 frame before a middle downbeat, the pixel box
    ``(left, top, right, bottom)`` around the baton hand's path over the bar before it, and the demo's report."""
    import imageio_ffmpeg

    from models.conductor import analyze_audio

    piece = write_demo_piece(work / f"meter{meter}.wav", seconds=16.0, bpm=96.0, meter=meter)
    out = work / f"demo{meter}"
    run = subprocess.run([sys.executable, "-m", "backend.cli", "demo", str(piece), "-o", str(out), "--json"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    report = json.loads(run.stdout)
    downbeats = analyze_audio(piece).downbeat_times
    fps = report["fps"]
    middle = len(downbeats) // 2
    target = int(round(downbeats[middle] * fps)) - 1
    start = int(round(downbeats[middle - 1] * fps))
    from models.motion.io import load_npz

    performance = load_npz(report["files"]["npz"]).positions
    wrist = performance[start : target + 1, 10].astype(np.float64)
    pixels = preview_pixels(wrist, preview_view(performance))
    half = min(float((pixels.max(0) - pixels.min(0)).max()) / 2 + 25, SIZE / 2)
    centre = np.clip((pixels.min(0) + pixels.max(0)) / 2, half, SIZE - half)  # the box stays inside the frame
    box = tuple(int(v) for v in (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half))
    reader = imageio_ffmpeg.read_frames(report["files"]["mp4"])
    size = next(reader)["size"]
    for index, frame in enumerate(reader):
        if index == target:
            image = np.frombuffer(frame, dtype=np.uint8).reshape(size[1], size[0], 3)
            reader.close()
            return image[:, :SIZE].copy(), box, report
    raise RuntimeError(f"{report['files']['mp4']}: no frame {target}")


def main(output: str) -> None:
    """Write the tiled PNG to ``output``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with tempfile.TemporaryDirectory() as tmp:
        frames = [demo_frame(meter, Path(tmp)) for meter in METERS]
    from PIL import Image

    figure, axes = plt.subplots(2, len(METERS), figsize=(3.3 * len(METERS), 6.8))
    for column, (meter, (image, box, report)) in enumerate(zip(METERS, frames, strict=True)):
        axes[0, column].imshow(image)
        axes[0, column].set_title(f"{meter}/4 piece: analysed as {report['meter']}/4, {report['tempo_bpm']:.0f} BPM",
                                  fontsize=9)  # fmt: skip
        axes[1, column].imshow(Image.fromarray(image).crop(box).resize((SIZE // 2 * 2, SIZE // 2 * 2)))
        axes[1, column].set_title("the baton hand's bar, zoomed", fontsize=9)
        for ax in axes[:, column]:
            ax.axis("off")
    figure.suptitle("baton demo MP4, the frame before a downbeat: the trail is the bar just conducted", fontsize=10)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    print(output)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img/conductor_demo_meters.png")
