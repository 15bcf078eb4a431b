"""Video retrieval metrics on a rendered text-video-motion dataset (``baton data render``): video->motion,
motion->video and text->motion R@1/5/10 and MedR, with the pose front end (MediaPipe Pose -> 3D motion) feeding the
retrieval model's motion encoder (backend/render/evaluate.py)."""

from __future__ import annotations

import argparse
import json

from backend.library import load_embedder
from backend.render.evaluate import evaluate_dataset


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset folder written by `baton data render`")
    parser.add_argument("--model", help="retrieval model run folder (default: the installed default)")
    parser.add_argument("--split", default="test", help="train, val, test or all (default test)")
    parser.add_argument("--limit", type=int, help="only the first N items")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    embedder = load_embedder(args.model)
    result = evaluate_dataset(args.dataset, embedder, split=None if args.split == "all" else args.split,
                              limit=args.limit)  # fmt: skip
    result.update({"model": embedder.model_key, "split": args.split, "dataset": args.dataset})
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0
