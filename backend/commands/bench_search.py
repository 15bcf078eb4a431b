"""Search benchmark: text/vector query latency p50/p95/p99 for exact and ANN search and ANN recall@10, at 1k, 10k and
100k clips synthesised from real clips (see backend/library/bench.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.library.bench import DEFAULT_SIZES, NOISE_MODELS, run_benchmark
from backend.library.embedding import RetrievalModelEmbedder, load_embedder
from backend.library.sources import SHARED_DATA_ENV


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="library sizes (comma-separated)")
    parser.add_argument("--queries", type=int, default=200, help="queries per size and mode (default 200)")
    parser.add_argument("--clips", nargs="*", help="real motion files/folders to augment (default: Bandai Namco "
                        "dataset-1 and CMU 131 from the shared data)")  # fmt: skip
    parser.add_argument("--model", help="retrieval model run folder (default: the installed model; when none is "
                        "installed, an untrained model of the default architecture: same cost, less "
                        "realistic embeddings)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads while timing (default 1: "
                        "single queries are fastest on one thread; a busy server runs several at once)")  # fmt: skip
    parser.add_argument("--db", help="an EMPTY library URL to benchmark (default: a temporary SQLite file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-model", choices=NOISE_MODELS, default=NOISE_MODELS[0], help="how synthetic clips "
                        "vary around the real ones: neighbour (default: along the real clips' own differences from "
                        "their nearest real clips) or isotropic (every dimension alike: a stress test)")  # fmt: skip


def _embedder(path: str | None):
    from backend.errors import NotAvailableError

    try:
        return load_embedder(path), True
    except NotAvailableError:
        if path is not None:
            raise
    import torch

    from models.retrieval.model import RetrievalConfig, RetrievalModel

    torch.manual_seed(0)
    print("bench search: no trained retrieval model installed; timing an untrained default model", file=sys.stderr)
    model = RetrievalModel(RetrievalConfig()).eval()
    model.name, model.version = "untrained-default", "0"
    return RetrievalModelEmbedder(model), False


def run(args: argparse.Namespace) -> int:
    import os

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.queries < 1:
        raise ValueError(f"--queries must be at least 1, got {args.queries}")
    clips = args.clips
    if not clips:
        root = Path(os.environ.get(SHARED_DATA_ENV) or Path(__file__).resolve().parents[3] / "shared" / "data")
        clips = [root / "bandai_namco_motion_dataset1", root / "cmu_mocap_subject131_bvh"]
        missing = [str(c) for c in clips if not c.exists()]
        if missing:
            raise FileNotFoundError(f"default benchmark clips not found ({missing}); pass --clips or {SHARED_DATA_ENV}")
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    embedder, trained = _embedder(args.model)
    result = run_benchmark(embedder, clips, sizes, queries=args.queries, url=args.db, seed=args.seed,
                           noise_model=args.noise_model)  # fmt: skip
    result.update(model_trained=trained, torch_threads=args.threads, load_average_1min=round(os.getloadavg()[0], 2),
                  cpu_count=os.cpu_count())  # fmt: skip
    if args.json:
        print(json.dumps(result))
    else:
        for entry in result["sizes"]:
            print(f"{entry['clips']:>7} clips: text query p50 exact {entry['exact']['text_query']['p50_ms']:.1f} ms, "
                  f"ANN {entry['ann']['text_query']['p50_ms']:.1f} ms; vector-only p50 exact "
                  f"{entry['exact']['vector_only']['p50_ms']:.2f} ms, ANN {entry['ann']['vector_only']['p50_ms']:.2f}"
                  f" ms; ANN recall@10 {entry['ann_recall_at_10']:.3f}")  # fmt: skip
    return 0
