"""Generate a motion from text and save it on a rig as .bvh, .npz or .blend (embedded, no server).

Text -> MoMask-style generator (``models.instruct``, default weights CC BY-NC 4.0) -> smpl22 motion at 20 fps ->
retargeted onto ``--rig`` (foot lock on) -> ``-o`` file. ``--samples K`` writes ``OUT_1.ext`` .. ``OUT_K.ext``
(one ``.blend`` holds every sample). ``--timeline`` takes ``"TEXT@START"`` items instead of one prompt, e.g.
``--timeline "walk forward@0" "wave the right hand@4" --seconds 8``. Bad input exits 1 and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from blender_addon.client import TEXT_GUIDANCE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", default=None, help="what the motion shows, e.g. 'a person waves'")
    parser.add_argument("--timeline", nargs="+", default=None, metavar="TEXT@START",
                        help="a timeline of prompts instead of TEXT: 'walk forward@0' 'wave@4' (start in seconds)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="duration in seconds (1 to 300; default: the model's length estimate)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed -> same motion)")
    parser.add_argument("--samples", type=int, default=1, help="variations to generate in one batch (1-16)")
    parser.add_argument("--guidance", type=float, default=TEXT_GUIDANCE,
                        help=f"classifier-free guidance scale (>= 0; default {TEXT_GUIDANCE:g})")
    parser.add_argument("--rig", default="smpl24", help="smpl24 | smpl22 | kit21 | coco13 | FILE.bvh")
    parser.add_argument("--weights", default=None, help="a `baton train t2m` run folder (default: shipped weights)")
    parser.add_argument("--runtime", choices=("torch", "ort"), default="torch", help="inference runtime")
    parser.add_argument("-o", "--output", required=True, help="output file: .bvh, .npz or .blend")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    from backend.instruct.speech import configure_generate

    configure_generate(parser)  # --speech FILE [--path end2end|cascaded] (docs/voice.md)


def parse_timeline(items: list[str], seconds: float | None):
    """``["TEXT@START", ...]`` -> TimelineSegments (each ends where the next starts; the last at ``seconds``).

    Raises:
        ValueError: for an item without ``@START``, a bad number, or no ``--seconds`` to end the last segment.
    """
    from models.instruct import TimelineSegment

    parsed = []
    for item in items:
        text, sep, start = item.rpartition("@")
        if not sep:
            raise ValueError(f"timeline item {item!r} needs the form TEXT@START_SECONDS")
        try:
            parsed.append((text, float(start)))
        except ValueError:
            raise ValueError(f"timeline item {item!r}: {start!r} is not a number of seconds") from None
    if seconds is None:
        raise ValueError("--timeline needs --seconds (when the last prompt ends)")
    ends = [s for _, s in parsed[1:]] + [seconds]
    return [TimelineSegment(t, s, e) for (t, s), e in zip(parsed, ends, strict=True)]


def run(args: argparse.Namespace) -> int:
    from backend.conductor.pipeline import terminal_progress
    from backend.instruct.pipeline import check_request, generate_to_rig, output_paths, resolve_rig, save_generated

    if args.speech is not None:
        from backend.instruct.speech import run_generate

        return run_generate(args)
    if (args.text is None) == (args.timeline is None):
        raise ValueError("give either TEXT or --timeline")
    request = args.text if args.text is not None else parse_timeline(args.timeline, args.seconds)
    # everything is checked before the model loads or anything is written
    check_request(request, seconds=args.seconds, samples=args.samples, guidance=args.guidance)
    rig = resolve_rig(args.rig)
    paths = output_paths(args.output, args.samples)
    if paths[0].suffix.lower() == ".npz" and rig == "coco13":
        raise ValueError("coco13 is a 2D skeleton; write a 3D rig (smpl24, kit21, a .bvh) or use .bvh / .blend")
    from models.instruct import load_text_to_motion

    started = time.perf_counter()
    progress = terminal_progress("baton generate")
    generator = load_text_to_motion(args.weights, runtime=args.runtime)
    loaded = time.perf_counter()
    results = generate_to_rig(generator, request, seconds=args.seconds, seed=args.seed, samples=args.samples,
                              guidance=args.guidance, rig=rig, progress=progress.sub(0.0, 0.9))  # fmt: skip
    generated = time.perf_counter()
    written = save_generated(results, args.output, rig, progress=progress.sub(0.9, 1.0))
    progress.update(1.0, f"wrote {', '.join(str(p) for p in written)}")
    motion = results[0]["motion"]
    report = {
        "outputs": [str(p) for p in written], "rig": rig, "samples": len(results), "seed": args.seed,
        "guidance": args.guidance, "frames": motion.num_frames, "fps": motion.fps,
        "duration_s": round(motion.duration_s, 3),
        "prompt": args.text if args.text is not None else [s.text for s in request],
        "foot_skate_cm": [{"before": r["report"]["foot_skate_before_cm"], "after": r["report"]["foot_skate_after_cm"]}
                          for r in results],
        "timings_s": {"load": round(loaded - started, 3), "generate": round(generated - loaded, 3),
                      "write": round(time.perf_counter() - generated, 3)},
    }  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{', '.join(Path(p).name for p in report['outputs'])}: {motion.num_frames} frames at {motion.fps:g} fps "
              f"on {rig}", file=sys.stderr)  # fmt: skip
    return 0
