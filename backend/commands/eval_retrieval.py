"""Evaluate a retrieval model on the held-out split: R@1,2,3,5,10 and MedR in both directions (TMR protocols)
plus content- and style-level hit rates of hand-written free-form queries."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from backend.commands.train_retrieval import DEFAULT_DATA, default_threads


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", default="all",
                        help="TMR protocol(s), comma-separated: all (whole held-out set), threshold (near-duplicate "
                        "captions count), dissimilar (100 far-apart pairs), batch32 (batches of 32)")  # fmt: skip
    parser.add_argument("--run", type=Path, default=None,
                        help="run folder (default: your trained default model, else the shipped weights)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder (../shared/data)")
    parser.add_argument("--threshold", type=float, default=0.95, help="near-duplicate caption cosine")
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default $XDG_CACHE_HOME)")
    parser.add_argument("--threads", type=int, default=default_threads(), help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    from models.retrieval.datasets import load_clips
    from models.retrieval.evaluation import PROTOCOLS, evaluate
    from models.retrieval.model import installed_model_dir, load_retrieval_model

    names = tuple(p.strip() for p in args.protocol.split(",") if p.strip())
    if not names or any(p not in PROTOCOLS for p in names):
        raise ValueError(f"--protocol must be one or more of {', '.join(PROTOCOLS)} (comma-separated), "
                         f"got {args.protocol!r}")  # fmt: skip
    if not 0.0 < args.threshold <= 1.0:
        raise ValueError(f"--threshold must be in (0, 1], got {args.threshold}")
    import torch

    torch.set_num_threads(max(1, args.threads))
    run_dir = args.run or installed_model_dir()
    model = load_retrieval_model(run_dir)
    training = model.config.training
    clips = load_clips(args.data, sources=training.sources, fps=model.config.fps, cache_dir=args.cache_dir,
                       limit_per_group=training.limit_per_group)  # fmt: skip
    metrics = {"run_dir": str(run_dir), "encoder": model.config.encoder, "protocol": args.protocol,
               **evaluate(model, clips, names, args.threshold)}  # fmt: skip
    if args.json:
        print(json.dumps(metrics))
        return 0
    for name, result in metrics["protocols"].items():
        for direction in ("text_to_motion", "motion_to_text"):
            m = result[direction]
            print(f"{name:>10} {direction:>15}: " + "  ".join(f"{k} {v:.1f}" for k, v in m.items()))
    content, style = metrics["freeform"].get("content", {}), metrics["freeform"].get("style", {})
    if content:
        print(f"free-form content hit: R@1 {content['R@1']:.1f}%  R@5 {content['R@5']:.1f}%  ({content['queries']} q)")
    if style:
        print(f"free-form style hit:   R@1 {style['R@1']:.1f}%  R@5 {style['R@5']:.1f}%  ({style['queries']} q)")
    return 0
