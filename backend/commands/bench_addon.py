"""Add-on end-to-end timing: operator invoke -> keyed action, for Generate from music onto a new rig.

Starts a real backend (``baton serve`` on a free loopback port, token in a temporary config folder, through the one
launcher :func:`backend.server_process.start_server`), builds the extension zip, and runs
``scripts/addon_session_blender.py`` in the Blender environment (``.venv-blender``, real ``bpy``): the add-on is
installed from the zip, ``baton.generate`` is invoked and the add-on's timer driven until the action is keyed.
Before timing, the add-on checks the backend once (health + capabilities, as the Backend panel does), so the server's
first-request warm-up is not counted. Reports every run, ``cold`` (the first run on a fresh backend) and ``warm``
(the median of the later runs):

- ``invoke_ms``: how long the operator's invoke blocks Blender (target < 100 ms);
- ``invoke_to_keyed_s``: invoke until the keyed action has landed (one undo step);
- its split: ``upload_s`` (music to the backend), ``backend_s`` (conduct job compute, server clock),
  ``retarget_solve_s`` (retarget job compute, server clock), ``transfer_s`` (every other second of HTTP: submits,
  polling latency, result downloads), ``keyframe_write_s`` (bulk F-curve write on Blender's main thread).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("baton.bench.addon")

REPO = Path(__file__).resolve().parents[2]
BRAHMS = REPO.parent / "shared" / "data" / "librosa_example_audio" / (
    "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"
)
PHASES = ("invoke_ms", "invoke_to_keyed_s", "upload_s", "backend_s", "retarget_solve_s", "transfer_s",
          "keyframe_write_s")  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio", type=Path, default=BRAHMS, help="music (default: Brahms, 45.8 s, ../shared)")
    parser.add_argument("--target", default="SMPL24", choices=("SMPL24", "KIT21", "COCO13"))
    parser.add_argument("--model", default="procedural")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs, a fresh Blender each (default 3): the first is reported as cold, the median of "
                        "the others as warm")
    parser.add_argument("--blender-python", type=Path, default=REPO / ".venv-blender" / "bin" / "python")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    if not args.audio.is_file():
        raise FileNotFoundError(f"audio not found: {args.audio}")
    if not args.blender_python.exists():
        raise FileNotFoundError(f"the Blender environment's python is missing: {args.blender_python} (run setup)")
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    sys.path.insert(0, str(REPO))
    import build_addon
    from backend.server_process import start_server

    with tempfile.TemporaryDirectory(prefix="baton-bench-addon-") as tmp:
        home = Path(tmp)
        zip_path = build_addon.build(home / "baton.zip")
        backend = start_server(home / "backend", "--log-level", "warning", startup_timeout=120)
        try:
            runs = []
            for index in range(args.repeats):
                command = [str(args.blender_python), str(REPO / "scripts" / "addon_session_blender.py"),
                           "--zip", str(zip_path), "--url", backend.url, "--token", backend.token,
                           "--audio", str(args.audio), "--target", args.target, "--model", args.model]  # fmt: skip
                env = {**os.environ, "PYTHONPATH": str(REPO), "BLENDER_USER_RESOURCES": str(home / f"blender{index}")}
                done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
                lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                if done.returncode != 0 or not lines:
                    raise RuntimeError(f"Blender run {index} failed: {done.stdout[-800:]} {done.stderr[-1500:]}")
                runs.append(json.loads(lines[-1]))
                log.info("run %d: invoke %.1f ms, keyed after %.2f s", index, runs[-1]["invoke_ms"],
                         runs[-1]["invoke_to_keyed_s"])  # fmt: skip
        finally:
            backend.stop()
    first = runs[0]
    warm_runs = runs[1:] or runs
    report = {
        "audio": str(args.audio),
        "music_duration_s": first.get("music_duration_s"),
        "target": args.target,
        "model": args.model,
        "bones": first["bones"],
        "frames": first["frames"],
        "repeats": args.repeats,
        "blender": first["blender"],
        # The first run meets a freshly started backend (imports, numba compilation, first upload); later runs are
        # what an animator sees once the backend has done one job.
        "cold": {key: round(float(first.get(key, 0.0)), 4) for key in PHASES},
        "warm": {key: round(statistics.median(float(r.get(key, 0.0)) for r in warm_runs), 4) for key in PHASES},
        "invoke_ms_max": round(max(r["invoke_ms"] for r in runs), 2),
        "invoke_under_100ms": all(r["invoke_ms"] < 100.0 for r in runs),
        "runs": runs,
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key in PHASES:
            print(f"{key:>20}: cold {report['cold'][key]:.4f}  warm {report['warm'][key]:.4f}")
    return 0
