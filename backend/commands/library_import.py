"""Import motion files into the library: BVH folders (Bandai Namco labels, CMU index + KIT-ML texts as captions),
HumanML3D new_joints + texts, Baton .npz, AMASS .npz (with --smpl-model). Resumable and idempotent."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from backend.library import ImportOptions, import_paths, load_embedder, open_library
from backend.library.sources import AnnotationSources, default_annotation_sources
from models.progress import Progress


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="motion files or folders (searched recursively)")
    parser.add_argument("--db", help="library URL or file (default: $BATON_LIBRARY or the per-user library)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--license", help="license for every imported clip (overrides what the files say)")
    parser.add_argument("--tag", action="append", default=[], help="extra tag for every clip (repeatable)")
    parser.add_argument("--no-thumbnails", action="store_true", help="do not draw pose-strip thumbnails")
    parser.add_argument("--cmu-index", type=Path, help="CMU trial descriptions CSV (default: from shared data)")
    parser.add_argument("--kitml", type=Path, help="TMR KIT-ML annotations.json (default: from shared data)")
    parser.add_argument("--smpl-model", type=Path, help="SMPL / SMPL-H model folder or file for AMASS .npz files")
    parser.add_argument("--model", help="retrieval model to embed clips with during import (default: embed on "
                        "first search)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=32, help="clips per transaction (default 32)")
    parser.add_argument("--workers", type=int, default=max(1, min(4, (os.cpu_count() or 2) // 2)),
                        help="processes parsing files in parallel (default: half the CPUs, at most 4)")  # fmt: skip


def _progress_printer() -> Progress:
    last = [-1]

    def show(fraction: float, stage: str) -> None:
        tenth = int(fraction * 10)
        if tenth != last[0]:
            last[0] = tenth
            print(f"{stage}: {fraction:.0%}", file=sys.stderr)

    return Progress(callback=show)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    defaults = default_annotation_sources()
    for option, path in (("--cmu-index", args.cmu_index), ("--kitml", args.kitml), ("--smpl-model", args.smpl_model)):
        if path is not None and not path.exists():
            raise FileNotFoundError(f"{option}: not found: {path}")
    options = ImportOptions(
        annotations=AnnotationSources(args.cmu_index or defaults.cmu_index, args.kitml or defaults.kitml_annotations),
        license=args.license,
        tags=tuple(args.tag),
        thumbnails=not args.no_thumbnails,
        smpl_model=args.smpl_model,
        batch_size=args.batch_size,
        workers=args.workers,
    )
    embedder = load_embedder(args.model) if args.model else None
    with open_library(args.db) as library:
        report = import_paths(library, args.paths, options, embedder=embedder, progress=_progress_printer())
        result = {"library": library.url, **report.to_dict(), "total_clips": library.stats()["clips"]}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"imported {report.imported} of {report.files} files ({report.skipped_existing} already stored, "
              f"{len(report.failed)} failed) in {report.seconds:.1f} s into {result['library']}; "
              f"{result['total_clips']} clips in total")  # fmt: skip
        for failure in report.failed:
            print(f"  failed: {failure['path']}: {failure['error']}")
    return 0
