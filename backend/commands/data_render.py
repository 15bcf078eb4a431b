"""Render library clips on randomised mannequins into a text-video-motion dataset (LAVIMO style): videos, motions,
texts, splits and a manifest with each clip's licence (layout: backend/render/dataset.py). Resumable: a second run
skips finished clips."""

from __future__ import annotations

import argparse
import json

from backend.render.dataset import SCHEDULERS, build_dataset
from backend.render.mannequin import RenderSettings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="dataset folder (created; an existing one is resumed)")
    parser.add_argument("--db", required=True, help="library URL or SQLite file to render")
    clips = parser.add_mutually_exclusive_group()
    clips.add_argument("--limit", type=int, help="only the first N clips (by id)")
    clips.add_argument("--sample", type=int, help="N clips drawn at random with --seed (every source and content)")
    parser.add_argument("--renders", type=int, default=1, help="renders per clip (other avatar, camera, window)")
    parser.add_argument("--size", type=int, default=224, help="image size in pixels (default 224)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    parser.add_argument("--fps", type=float, default=8.0, help="frame rate of the rendered frames (default 8)")
    parser.add_argument("--camera-pitch", default="0,25", metavar="LOW,HIGH", help="camera elevation range in degrees "
                        "(default 0,25; e.g. 20,45 for footage filmed from above)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=8, help="clips per Blender process (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="parallel Blender processes (default 2)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="ray", help="ray (default), process or inline")
    parser.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    try:
        pitch = tuple(float(v) for v in args.camera_pitch.split(","))
    except ValueError:
        pitch = ()
    if len(pitch) != 2:
        raise ValueError(f"--camera-pitch takes LOW,HIGH in degrees (e.g. 20,45), got {args.camera_pitch!r}")
    settings = RenderSettings(size=args.size, frames=args.frames, fps=args.fps, camera_pitch_deg=pitch)
    summary = build_dataset(args.db, args.output, settings=settings, limit=args.limit, sample=args.sample,
                            renders_per_clip=args.renders,
                            batch_clips=args.batch, workers=args.workers, scheduler=args.scheduler,
                            address=args.address, seed=args.seed)  # fmt: skip
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['clips']} clips in {args.output} ({summary['rendered']} rendered now, {summary['skipped']} "
              f"already there; {summary['frames_per_s']} frames/s)")  # fmt: skip
    return 0
