"""Benchmark retargeting: solver frames per second, and Blender keyframe writing (bulk vs per-key).

The solver part retargets a CMU mocap clip (``../shared/data``) onto SMPL-24. The Blender part runs in the Blender
environment (``.venv-blender/bin/python``, real ``bpy``; ``bpy`` cannot load in the backend environment) and times
writing 24 bones x 600 frames through ``blender_addon.apply.apply_motion`` (``keyframe_points.add`` +
``foreach_set``, including the conversion to bone space; best of three) against the same keys through per-key
``keyframe_insert`` (once), both measured in the same process; their ratio must be >= 50.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CLIP = REPO.parent / "shared" / "data" / "cmu_mocap_subject131_bvh" / "131_01.bvh"
REQUIRED_RATIO = 50.0

_BLENDER_SCRIPT = r"""
import json, sys, time
import numpy as np
import bpy
from blender_addon import apply, rigs

frames, seed = int(sys.argv[1]), int(sys.argv[2])
bpy.ops.wm.read_factory_settings(use_empty=True)
rig = rigs.builtin_rig("smpl24")
names = rig["joint_names"]
rng = np.random.default_rng(seed)
rotations = rng.normal(size=(frames, len(names), 4))
rotations /= np.linalg.norm(rotations, axis=-1, keepdims=True)
root = np.cumsum(rng.normal(scale=0.01, size=(frames, 3)), axis=0) + [0.0, 0.9, 0.0]

bulk_s = float("inf")
for attempt in range(3):  # best of three: the bulk write is short enough for scheduler noise to matter
    bulk_rig = rigs.build_armature(rig, f"bulk{attempt}")
    start = time.perf_counter()
    apply.apply_motion(bulk_rig, names, rotations, root, 30.0)
    bulk_s = min(bulk_s, time.perf_counter() - start)

slow_rig = rigs.build_armature(rig, "per_key")
bones = [slow_rig.pose.bones[n] for n in names]
start = time.perf_counter()
for t in range(frames):
    for j, bone in enumerate(bones):
        bone.rotation_quaternion = rotations[t, j]
        bone.keyframe_insert("rotation_quaternion", frame=1 + t, group=bone.name)
    bones[0].location = root[t]
    bones[0].keyframe_insert("location", frame=1 + t, group=bones[0].name)
per_key_s = time.perf_counter() - start
keys = sum(len(c.keyframe_points) for c in apply.fcurves_of(slow_rig.animation_data.action, slow_rig))
print(json.dumps({"bulk_s": bulk_s, "per_key_s": per_key_s, "keys": keys, "bpy": bpy.app.version_string}))
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clip", default=str(DEFAULT_CLIP), help="source motion for the solver (default: CMU 131_01)")
    parser.add_argument("--repeat", type=int, default=3, help="solver runs (best is reported)")
    parser.add_argument("--frames", type=int, default=600, help="frames for the Blender write test")
    parser.add_argument("--blender-python", default=str(REPO / ".venv-blender" / "bin" / "python"),
                        help="Python with bpy (default: .venv-blender)")  # fmt: skip
    parser.add_argument("--no-blender", action="store_true", help="skip the Blender part")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def bench_solver(clip: str, repeat: int) -> dict:
    """Best-of-``repeat`` solver timing (with and without foot lock) for ``clip`` onto SMPL-24."""
    from models.motion.io import load_motion
    from models.motion.retarget import retarget

    if repeat < 1:
        raise ValueError(f"--repeat must be >= 1, got {repeat}")
    motion = load_motion(clip)
    out = {"clip": Path(clip).name, "frames": motion.num_frames, "source_joints": motion.skeleton.num_joints}
    for label, lock in (("foot_lock", True), ("no_foot_lock", False)):
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            result = retarget(motion, "smpl24", foot_lock=lock)
            best = min(best, time.perf_counter() - start)
        out[f"{label}_s"] = best
        out[f"{label}_frames_per_s"] = motion.num_frames / best
    out["foot_skate_before_cm"] = result.foot_skate_before_cm
    out["frames_per_s"] = out["foot_lock_frames_per_s"]
    return out


def bench_blender(python: str, frames: int, seed: int = 0) -> dict:
    """Run the bulk vs per-key write test in the Blender environment; returns its timings and their ratio."""
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    if not Path(python).exists():
        return {"available": False, "detail": f"no Blender environment at {python} (run scripts/setup.sh)"}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [python, "-c", _BLENDER_SCRIPT, str(frames), str(seed)], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        return {"available": False, "detail": proc.stderr.strip().splitlines()[-1:] or ["bpy run failed"]}
    timing = json.loads(proc.stdout.strip().splitlines()[-1])
    ratio = timing["per_key_s"] / timing["bulk_s"]
    return {
        "available": True,
        "bpy": timing["bpy"],
        "bones": 24,
        "frames": frames,
        "keys_per_method": timing["keys"],
        "bulk_s": timing["bulk_s"],
        "per_key_s": timing["per_key_s"],
        "ratio": ratio,
        "ratio_ok": ratio >= REQUIRED_RATIO,
    }


def run(args: argparse.Namespace) -> int:
    solver = bench_solver(args.clip, args.repeat)
    print(f"solver: {solver['frames_per_s']:.0f} frames/s ({solver['frames']} frames, foot lock on), "
          f"{solver['no_foot_lock_frames_per_s']:.0f} frames/s without", file=sys.stderr)  # fmt: skip
    blender = None if args.no_blender else bench_blender(args.blender_python, args.frames)
    if blender and blender["available"]:
        print(f"blender {blender['bpy']}: 24 bones x {args.frames} frames bulk {blender['bulk_s'] * 1000:.1f} ms, "
              f"keyframe_insert {blender['per_key_s']:.2f} s, ratio {blender['ratio']:.0f}x "
              f"(required >= {REQUIRED_RATIO:.0f})", file=sys.stderr)  # fmt: skip
    elif blender:
        print(f"blender part unavailable: {blender['detail']}", file=sys.stderr)
    report = {"solver": solver, "blender": blender, "required_ratio": REQUIRED_RATIO}
    if args.json:
        print(json.dumps(report, default=lambda v: float(v) if isinstance(v, np.floating) else str(v)))
    return 0
