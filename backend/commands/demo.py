"""Run the main job on its embedded default: music -> conductor -> rigs -> .blend + .mp4 + plot.

Until the conductor pipeline lands this says what it will do and exits 0.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", nargs="?", help="audio file (default: a short piece Baton synthesises itself)")
    parser.add_argument("-o", "--output", default="out", help="output folder (default: out/)")


def run(args: argparse.Namespace) -> int:
    source = args.audio or "a short piece Baton synthesises itself"
    print(
        "baton demo: the conductor pipeline is not built yet. When it is, this will turn "
        f"{source} into a conductor's performance on SMPL-24 and COCO-13 rigs and write a .blend, an .mp4 "
        f"preview and a beat plot into {args.output}/.",
        file=sys.stderr,
    )
    return 0
