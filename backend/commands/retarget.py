"""Retarget a motion (BVH, Baton .npz, HumanML3D .npy; 2D coco13 .npz included) onto another skeleton or rig.

Reports the joint mapping and foot skate before/after on stderr (``--json``: one JSON object on stdout). The output
is written only when retargeting succeeded, atomically (.bvh or Baton .npz by its ending).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models.motion.bvh import save_bvh
from models.motion.io import load_motion, save_npz
from models.motion.joint_mapping import load_mapping_file
from models.motion.retarget import ROOT_MODES, retarget
from models.motion.skeleton import skeleton_names

OUTPUT_SUFFIXES = (".bvh", ".npz")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="source motion: .bvh, Baton .npz, HumanML3D .npy")
    parser.add_argument(
        "--to", required=True, dest="target", help=f"target: {'|'.join(skeleton_names())} or a TARGET.bvh rig"
    )
    parser.add_argument("--mapping", help='JSON file {"target joint": "source joint" | null} over the automatic one')
    parser.add_argument("--root", choices=ROOT_MODES, default="full", help="root motion (default: full)")
    parser.add_argument("--no-foot-lock", action="store_true", help="do not pin feet during contacts")
    parser.add_argument("--positions-only", action="store_true",
                        help="ignore the source's rotation channels (twist then always comes from bend planes)")
    parser.add_argument("--smoothing", type=float, default=0.0, help="Gaussian sigma in frames (default 0: off)")
    parser.add_argument("-o", "--output", required=True, help="output file: .bvh or .npz")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"output must end in {' or '.join(OUTPUT_SUFFIXES)}, got {output.name!r}")
    mapping = load_mapping_file(args.mapping) if args.mapping else None
    source = load_motion(args.source)
    result = retarget(
        source,
        args.target,
        mapping=mapping,
        root=args.root,
        foot_lock=not args.no_foot_lock,
        smoothing=args.smoothing,
        use_source_rotations=not args.positions_only,
    )
    if output.suffix.lower() == ".bvh":
        save_bvh(result.motion, output)
    else:
        save_npz(result.motion, output)
    report = {"source": str(args.source), "output": str(output), **result.report()}
    width = max((len(t) for t in result.mapping), default=0)
    print(f"retarget {source.skeleton.name} -> {result.rig.name}: {len(result.mapping)} of "
          f"{result.rig.num_joints} target joints mapped, scale {result.scale:.3f}", file=sys.stderr)
    for target_joint, source_joint in result.mapping.items():
        print(f"  {target_joint:<{width}} <- {source_joint}", file=sys.stderr)
    unmapped = [n for n in result.rig.joint_names if n not in result.mapping]
    if unmapped:
        print(f"  unmapped (kept at rest): {', '.join(unmapped)}", file=sys.stderr)
    print(f"foot skate: source {result.foot_skate_before_cm:.3f} cm/frame, retargeted "
          f"{result.foot_skate_after_cm:.3f} cm/frame (foot lock {'on' if result.details['foot_lock'] else 'off'})",
          file=sys.stderr)
    print(f"wrote {output}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    return 0
