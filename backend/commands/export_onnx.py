"""``baton export onnx``: the Diffusion-Conductor's denoiser and music encoder as ONNX, checked against torch.

Writes ``OUT/denoiser.onnx`` and ``OUT/music_encoder.onnx`` (dynamic batch and time axes; with ``--int8`` also the
dynamically quantised ``*.int8.onnx``), runs each in onnxruntime — CUDA execution provider when present, as reported
by ``session.get_providers()``, else CPU — and reports max |torch - ORT| on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None,
                        help="diffusion checkpoint or run folder (default: the shipped default weights)")
    parser.add_argument("-o", "--output", default="out/onnx", help="output folder (default out/onnx)")
    parser.add_argument("--int8", action="store_true", help="also write dynamically quantised int8 models")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                        help="onnxruntime device for the parity check (auto: CUDA if available)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    from models.export.conductor_onnx import export_conductor

    report = export_conductor(args.checkpoint, args.output, int8=args.int8, device=args.device)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>32}: {value}", file=sys.stderr)
    return 0
