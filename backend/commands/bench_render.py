"""Benchmark the avatar renderer: frames/s of one Blender process (the baseline), then a batch of clips through the
scheduler (Ray by default) that is killed part-way and resumed; checks that the resumed run renders only what was
missing and that the dataset ends complete."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backend.render.dataset import SCHEDULERS, build_dataset
from backend.render.mannequin import RenderSettings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="library URL or SQLite file whose clips are rendered")
    parser.add_argument("--clips", type=int, default=100, help="clips in the batch (default 100)")
    parser.add_argument("--baseline-clips", type=int, default=4, help="clips rendered inline first (default 4)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="clips per Blender process")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="ray")
    parser.add_argument("--kill-after", type=int, default=None,
                        help="kill the batch once this many clips are done (default: a third of --clips)")
    parser.add_argument("-o", "--output", help="dataset folder (default: a temporary one, deleted)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _done(folder: Path) -> int:
    return len(list((folder / "meta").glob("*.json"))) if (folder / "meta").is_dir() else 0


def run(args: argparse.Namespace) -> int:
    settings = RenderSettings(size=args.size, frames=args.frames)
    with tempfile.TemporaryDirectory(prefix="baton-bench-render-") as tmp:
        root = Path(args.output) if args.output else Path(tmp)
        baseline = build_dataset(args.db, root / "baseline", settings=settings, limit=args.baseline_clips,
                                 scheduler="inline", batch_clips=args.baseline_clips)  # fmt: skip
        batch_dir = root / "batch"
        kill_after = args.kill_after if args.kill_after is not None else max(1, args.clips // 3)
        command = [sys.executable, "-m", "backend.cli", "data", "render", str(batch_dir), "--db", str(args.db),
                   "--limit", str(args.clips), "--frames", str(args.frames), "--size", str(args.size),
                   "--workers", str(args.workers), "--batch", str(args.batch), "--scheduler", args.scheduler,
                   "--json"]  # fmt: skip
        started = time.perf_counter()
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while first.poll() is None and _done(batch_dir) < kill_after:
            time.sleep(0.5)
        killed = first.poll() is None
        if killed:
            os.killpg(first.pid, signal.SIGKILL)  # the whole group: the CLI, Ray and its Blender processes
            first.wait()
        first_seconds = time.perf_counter() - started
        done_at_kill = _done(batch_dir)
        resumed = build_dataset(args.db, batch_dir, settings=settings, limit=args.clips, workers=args.workers,
                                batch_clips=args.batch, scheduler=args.scheduler)  # fmt: skip
        total_seconds = time.perf_counter() - started
        result = {
            "settings": {"size": args.size, "frames": args.frames, "fps": settings.fps},
            "cpus": os.cpu_count(),
            "baseline_inline": {"clips": baseline["rendered"], "seconds": baseline["seconds"],
                                "frames_per_s": baseline["frames_per_s"]},  # fmt: skip
            "batch": {"scheduler": args.scheduler, "workers": args.workers, "clips": args.clips,
                      "killed": killed, "done_when_killed": done_at_kill, "first_run_seconds": round(first_seconds, 3),
                      "resumed_rendered": resumed["rendered"], "resumed_skipped": resumed["skipped"],
                      "resumed_seconds": resumed["seconds"], "clips_in_dataset": resumed["clips"],
                      "complete": resumed["clips"] == args.clips and resumed["skipped"] >= done_at_kill,
                      "total_seconds": round(total_seconds, 3),
                      "frames_per_s": round(args.clips * args.frames / total_seconds, 3)},  # fmt: skip
        }
        if baseline["frames_per_s"]:
            ratio = result["batch"]["frames_per_s"] / baseline["frames_per_s"]
            result["batch_vs_inline_frames_per_s"] = round(ratio, 3)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0
