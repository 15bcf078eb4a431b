"""Print the skeleton, joints, fps, frames and duration of a motion file (.bvh, .npz, HumanML3D .npy)."""

from __future__ import annotations

import argparse
import json

from models.motion.io import load_motion


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="motion file: .bvh, Baton .npz, HumanML3D .npy")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    motion = load_motion(args.file)
    info = {"file": str(args.file), **motion.info()}
    if "unit_scale_m" in motion.metadata:
        info["unit_scale_m"] = motion.metadata["unit_scale_m"]
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            if key != "joint_names":
                print(f"{key:>22}: {value}")
    return 0
