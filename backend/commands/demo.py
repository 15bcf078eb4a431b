"""The main job, embedded (no server): music -> conductor -> SMPL-24 and COCO-13 rigs -> .blend + .mp4 + beat plot.

With no AUDIO, Baton synthesises a short piece itself (numpy; no third-party audio is shipped) and conducts that.
Writes into ``-o DIR``: ``<name>.blend`` (both armatures keyed, the music as a sound strip at frame 1, scene at
30 fps spanning the music), ``<name>.mp4`` (stick-figure preview with the music), ``<name>_beats.png`` (music
beats against motion beats) and ``<name>_coco13.npz`` (the generated keypoints). Default model: ``procedural``
(see ``backend.conductor.pipeline.DEFAULT_MODEL``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from backend.commands.conduct import add_control_arguments, controls


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", nargs="?", help="music file (default: a short piece Baton synthesises itself)")
    parser.add_argument("-o", "--output", default="out", help="output folder (default: out/)")
    parser.add_argument("--model", default=None, help="procedural | diffusion | m2sgan (default: see above)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps for diffusion")
    parser.add_argument("--checkpoint", default=None, help="weights for --model")
    add_control_arguments(parser)
    parser.add_argument("--no-video", action="store_true", help="skip the MP4 preview")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _safe_stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._")[:60] or "music"


def run(args: argparse.Namespace) -> int:
    from backend.conductor.blend import blender_python, write_blend
    from backend.conductor.pipeline import conduct_audio, default_model, retarget_conductor, terminal_progress
    from backend.conductor.preview import plot_beats_png, render_preview_mp4
    from backend.conductor.synth import write_demo_piece
    from models.metrics.beats import bc_seconds
    from models.motion.io import save_npz

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"-o {out} exists and is not a folder")
    blender_python()  # fail early, before any work, when the Blender environment is missing
    started = time.perf_counter()
    progress = terminal_progress("baton demo")
    if args.audio:
        audio = Path(args.audio)
        if not audio.is_file():
            raise FileNotFoundError(f"audio file not found: {audio}")
    else:
        audio = write_demo_piece(out / "baton_demo_piece.wav")
        print(f"no AUDIO given: synthesised {audio} (16 s waltz, 112 BPM)", file=sys.stderr)
    model = args.model or default_model()
    name = _safe_stem(audio)
    result = conduct_audio(audio, model, seed=args.seed, steps=args.steps, checkpoint=args.checkpoint,
                           progress=progress.sub(0.0, 0.35), **controls(args, model))  # fmt: skip
    features, motion = result.features, result.motion
    progress.update(0.35, "retargeting onto smpl24 and coco13")
    rigs = {rig: retarget_conductor(motion, rig) for rig in ("smpl24", "coco13")}
    files = {"npz": save_npz(motion, out / f"{name}_coco13.npz")}
    files["png"] = plot_beats_png(out / f"{name}_beats.png", features, motion, title=f"{name} ({model})")
    files["blend"] = write_blend(out / f"{name}.blend", rigs, audio=audio, frames=motion.num_frames,
                                 fps=motion.fps, progress=progress.sub(0.4, 0.6))  # fmt: skip
    if not args.no_video:
        files["mp4"] = render_preview_mp4(out / f"{name}.mp4", motion, audio, rig3d=rigs["smpl24"],
                                          beat_times=features.beat_times,
                                          downbeat_times=features.downbeat_times, title=f"{name} ({model})",
                                          progress=progress.sub(0.6, 1.0))  # fmt: skip
    progress.update(1.0, f"done: {out}/")
    report = {
        "audio": str(audio), "model": model, "seed": args.seed, "frames": motion.num_frames, "fps": motion.fps,
        "duration_s": round(features.duration_s, 3), "tempo_bpm": round(features.tempo_bpm, 2),
        "meter": features.meter, "bc_seconds": round(bc_seconds(features.beat_times, motion.positions), 4),
        "files": {k: str(v) for k, v in files.items()}, "wall_s": round(time.perf_counter() - started, 2),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        for kind, path in files.items():
            print(f"{kind:>6}: {path}", file=sys.stderr)
    return 0
