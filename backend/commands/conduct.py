"""Generate a conductor's performance from an audio file and save it as .npz, .bvh or .blend.

Embedded (no server): music -> features -> motion (``--model``) -> retargeted onto ``--rig`` -> ``-o`` file.
Default rig: ``coco13`` for ``.npz`` (the generated 2D keypoints), ``smpl24`` for ``.bvh`` and ``.blend``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", help="music file: WAV, OGG, FLAC or MP3, 5 s to 20 min")
    parser.add_argument("--model", default=None, help="procedural | diffusion | m2sgan "
                        "(default: procedural)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed -> same motion)")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps for diffusion (20-50)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance weight (diffusion)")
    parser.add_argument("--checkpoint", default=None, help="weights for the model (default: its installed weights)")
    parser.add_argument("--rig", default=None, help="smpl24 | kit21 | coco13 | FILE.bvh (a rig's rest pose)")
    parser.add_argument("-o", "--output", required=True, help="output file: .npz, .bvh or .blend")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    from backend.conductor import pipeline
    from models.metrics.beats import bc_seconds

    output = pipeline.check_output(args.output)
    if not Path(args.audio).is_file():
        raise FileNotFoundError(f"audio file not found: {args.audio}")
    rig = pipeline.resolve_rig(args.rig or ("coco13" if output.suffix.lower() == ".npz" else "smpl24"))
    model = args.model or pipeline.default_model()
    progress = pipeline.terminal_progress("baton conduct")
    started = time.perf_counter()
    result = pipeline.conduct_audio(args.audio, model, seed=args.seed, steps=args.steps, guidance=args.guidance,
                                    checkpoint=args.checkpoint, progress=progress.sub(0.0, 0.8))  # fmt: skip
    saved = pipeline.save_motion(result, rig, output, args.audio, progress=progress.sub(0.8, 1.0))
    progress.update(1.0, f"wrote {saved}")
    features, motion = result.features, result.motion
    report = {
        "output": str(saved), "model": model, "seed": args.seed, "steps": args.steps, "rig": rig,
        "frames": motion.num_frames, "fps": motion.fps, "duration_s": round(features.duration_s, 3),
        "tempo_bpm": round(features.tempo_bpm, 2), "meter": features.meter,
        "bc_seconds": round(bc_seconds(features.beat_times, motion.positions, motion.fps), 4),
        "timings_s": {k: round(v, 3) for k, v in result.timings_s.items()},
        "wall_s": round(time.perf_counter() - started, 3),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{saved}: {motion.num_frames} frames at {motion.fps:g} fps ({model}, rig {rig}), "
              f"{features.tempo_bpm:.0f} BPM, {features.meter} beats per bar, BC {report['bc_seconds']:.3f}",
              file=sys.stderr)
    return 0
