"""Clip counts, durations, skeletons, licenses and embeddings of a motion library."""

from __future__ import annotations

import argparse
import json

from backend.library import open_library


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="library URL or file (default: $BATON_LIBRARY or the per-user library)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    with open_library(args.db, create=False) as library:
        stats = library.stats()
    if args.json:
        print(json.dumps(stats))
        return 0
    print(f"{stats['url']}: {stats['clips']} clips, {stats['duration_s'] / 60:.1f} min, "
          f"{stats['captioned_clips']} captioned, {stats['storage_bytes'] / 1e6:.1f} MB")  # fmt: skip
    for title in ("by_skeleton", "by_license", "by_source_kind"):
        print(f"  {title.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in stats[title].items()))
    for key, info in stats["embeddings"].items():
        print(f"  embeddings {key}: {info['clips']} clips x {info['dim']}")
    return 0
