"""Convert an official VirtualConductor checkpoint (M2S-GAN generator or M2S-Net) into Baton's format.

The converted weights go to ``<user data dir>/models/{m2sgan,m2snet}.pt`` (``$BATON_DATA_DIR`` or
``$XDG_DATA_HOME/baton``) unless ``-o`` names a file. They are research-use-only and never part of Baton.
"""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="official M2SGAN_*.pt or M2SNet_*.pt state dict")
    parser.add_argument("-o", "--output", default=None, help="output file (default: the user data dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    from models.conductor.virtualconductor import import_virtualconductor

    kind, path = import_virtualconductor(args.path, args.output)
    if args.json:
        print(json.dumps({"kind": kind, "output": str(path), "source": str(args.path)}))
    else:
        print(f"imported {kind} weights into {path} (VirtualConductor license: research use only)", file=sys.stderr)
    return 0
