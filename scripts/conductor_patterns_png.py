"""Draw ``docs/img/conductor_patterns.png``: the procedural conductor's baton hand over two bars in 2, 3, 4 and 6.

Each panel is the right wrist's path (COCO-13 joint 10) of ``models.conductor.procedural_motion`` with the default
``ProceduralStyle``, on a piece Baton synthesises (``backend.conductor.synth.synthesize_demo_piece``), two bars from
the middle of the piece, seen from the conductor (image x mirrored, y up). Red dots: the hand at each beat time (the
ictus); the first bar's are numbered by the beat's place in the bar. The 6 panel conducts a 4/4 pulse piece as
six beats per bar (the pattern is the point, not the meter estimate).

Usage (backend environment)::

    .venv/bin/python scripts/conductor_patterns_png.py docs/img/conductor_patterns.png
"""

from __future__ import annotations

import dataclasses
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from backend.conductor.synth import synthesize_demo_piece  # noqa: E402
from models.conductor import analyze_signal  # noqa: E402
from models.conductor.audio import SAMPLE_RATE  # noqa: E402
from models.conductor.procedural import ProceduralStyle, beat_grid, procedural_motion  # noqa: E402

RIGHT_WRIST = 10
FPS = 30


def _features(meter: int):
    if meter == 6:
        features = analyze_signal(synthesize_demo_piece(seconds=16.0, bpm=100.0, meter=4), SAMPLE_RATE)
        beats = np.asarray(features.beat_times)
        return dataclasses.replace(features, meter=6, downbeat_times=beats[::6])
    features = analyze_signal(synthesize_demo_piece(seconds=16.0, bpm=96.0, meter=meter), SAMPLE_RATE)
    return dataclasses.replace(features, meter=meter)


def main(out: str) -> None:
    fig, axes = plt.subplots(1, 4, figsize=(10.5, 3.2))
    for ax, meter in zip(axes, (2, 3, 4, 6), strict=True):
        features = _features(meter)
        positions = procedural_motion(features, ProceduralStyle(), seed=0)
        times, bar = beat_grid(features)
        middle = features.duration_s / 2
        downs = times[(bar == 0) & (times >= middle - 2.0)]
        start, end = downs[0], downs[2]  # two whole bars
        frames = np.arange(int(round(start * FPS)), int(round(end * FPS)) + 1)
        wrist = positions[frames, RIGHT_WRIST]
        ax.plot(-wrist[:, 0], -wrist[:, 1], color="tab:blue", lw=1.5)
        for t, b in zip(times, bar, strict=True):
            if start - 1e-6 <= t < end - 1e-6:
                x, y = positions[int(round(t * FPS)), RIGHT_WRIST]
                ax.plot(-x, -y, "o", color="tab:red", ms=5)
                if t < downs[1] - 1e-6:  # number the first bar's beats
                    ax.annotate(str(b + 1), (-x, -y), xytext=(4, -9), textcoords="offset points", color="tab:red")
        ax.set_title(f"{meter} beats per bar", fontsize=10)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Procedural conductor: baton hand over two bars, seen from the conductor (red: ictus on each beat)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
