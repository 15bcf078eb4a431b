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
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default cpu); a GPU this "
                        "machine does not have is an error")
    parser.add_argument("--runtime", choices=("torch", "onnx"), default="torch", help="inference runtime (default "
                        "torch); onnx: onnxruntime sessions of the exported graphs (diffusion; exported on first use)")
    add_control_arguments(parser)
    parser.add_argument("--rig", default=None, help="smpl24 | kit21 | coco13 | FILE.bvh (a rig's rest pose)")
    parser.add_argument("-o", "--output", required=True, help="output file: .npz, .bvh or .blend")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def add_control_arguments(parser: argparse.ArgumentParser) -> None:
    """``--energy``, ``--size``, ``--legato``: the procedural conductor's controls (also ``baton demo``'s)."""
    parser.add_argument("--energy", type=float, default=None, help="procedural: 0 calm .. 1 vigorous (default 0.5)")
    parser.add_argument("--size", type=float, default=None, help="procedural: beat pattern size, 0.25..2 (default 1)")
    parser.add_argument("--legato", type=float, default=None, help="procedural: 0 staccato .. 1 legato (default 0.5)")


def controls(args: argparse.Namespace, model: str) -> dict:
    """``{"energy", "size", "legato"}`` from ``args``, checked for ``model`` before any audio is read.

    Raises:
        ValueError: a control out of range, or a non-default control for a learned model.
    """
    from models.conductor.registry import style_from_controls

    given = {"energy": args.energy, "size": args.size, "legato": args.legato}
    try:
        style_from_controls(model, **given)
    except ValueError as exc:
        raise ValueError(f"--{str(exc)}" if str(exc).split(" ", 1)[0] in given else str(exc)) from None
    return given


def run(args: argparse.Namespace) -> int:
    from backend.conductor import pipeline
    from models.metrics.beats import bc_seconds

    output = pipeline.check_output(args.output)
    if not Path(args.audio).is_file():
        raise FileNotFoundError(f"audio file not found: {args.audio}")
    rig = pipeline.resolve_rig(args.rig or ("coco13" if output.suffix.lower() == ".npz" else "smpl24"))
    model = args.model or pipeline.default_model()
    device = pipeline.check_device_runtime(model, args.device, args.runtime)  # before the audio is analysed
    style = controls(args, model)
    progress = pipeline.terminal_progress("baton conduct")
    started = time.perf_counter()
    result = pipeline.conduct_audio(args.audio, model, seed=args.seed, steps=args.steps, guidance=args.guidance,
                                    checkpoint=args.checkpoint, progress=progress.sub(0.0, 0.8), device=device,
                                    runtime=args.runtime, **style)  # fmt: skip
    saved = pipeline.save_motion(result, rig, output, args.audio, progress=progress.sub(0.8, 1.0))
    progress.update(1.0, f"wrote {saved}")
    features, motion = result.features, result.motion
    report = {
        "output": str(saved), "model": model, "device": device, "runtime": args.runtime,
        "ran_on": motion.metadata.get("runtime_info"), "seed": args.seed, "steps": args.steps, "rig": rig,
        "style": motion.metadata.get("style"),
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
