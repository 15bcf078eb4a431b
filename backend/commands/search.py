"""Search the motion library by text ("a person waves their right hand") or by motion (a .bvh / .npz / HumanML3D
.npy file): the k closest clips in the retrieval model's joint text-motion space, with optional filters."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from backend.library import SearchFilters, load_embedder, open_library
from backend.library.jobs import run_search
from models.motion.io import MOTION_SUFFIXES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", help="what the motion looks like, in words (or a motion file: .bvh, .npz, "
                        ".npy, searched like --motion)")  # fmt: skip
    parser.add_argument("--motion", help="search by example: a .bvh, Baton .npz or HumanML3D .npy file")
    parser.add_argument("--video", help="search by a video of a person (any format ffmpeg reads; MediaPipe Pose; "
                        "every 4.8 s window of the first --video-seconds is searched, a clip scores its mean "
                        "cosine over them)")
    parser.add_argument("--video-seconds", type=float, default=180.0, help="part of the video analysed, from its "
                        "start (default 180 s)")  # fmt: skip
    parser.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    parser.add_argument("--db", help="library URL or file (default: $BATON_LIBRARY or the per-user library)")
    parser.add_argument("--model", help="retrieval model run folder (default: $BATON_RETRIEVAL_MODEL or the "
                        "installed default)")  # fmt: skip
    parser.add_argument("--skeleton", help="only clips on this skeleton (see `baton library stats`)")
    parser.add_argument("--min-duration", type=float, help="only clips at least this long (seconds)")
    parser.add_argument("--max-duration", type=float, help="only clips at most this long (seconds)")
    parser.add_argument("--license", help="only clips with exactly this license")
    parser.add_argument("--commercial-only", action="store_true", help="leave out non-commercial (NC) clips")
    parser.add_argument("--exact", action="store_true", help="exhaustive search instead of the ANN index")
    parser.add_argument("--thumbnails", metavar="DIR", help="write each hit's thumbnail to DIR/<rank>_<name>.png (the "
                        "renderer's mannequin, rendered once per clip and kept in the library; the hits get a "
                        "'thumbnail' path)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    if args.text is not None and args.motion is None and Path(args.text).suffix.lower() in MOTION_SUFFIXES:
        if Path(args.text).is_file():
            args.text, args.motion = None, args.text
    if args.video and (args.text is not None or args.motion is not None):
        raise ValueError("give one query: text, --motion FILE or --video FILE")
    if (args.text is None) == (args.motion is None) and not args.video:
        raise ValueError('give either a text query ("a person waves") or --motion FILE, not both or neither')
    filters = SearchFilters(
        skeleton=args.skeleton, min_duration_s=args.min_duration, max_duration_s=args.max_duration,
        license=args.license, commercial_only=args.commercial_only,
    )  # fmt: skip
    request = {"k": args.k, "exact": args.exact, "filters": {k: v for k, v in vars(filters).items() if v}}
    if args.video:
        from backend.video_search import run_video_search

        with open_library(args.db, embedder=load_embedder(args.model), create=False) as library:
            result = run_video_search({**request, "video_path": args.video, "max_seconds": args.video_seconds},
                                      library)  # fmt: skip
    else:
        request.update({"text": args.text} if args.text is not None else {"motion_path": args.motion})
        with open_library(args.db, embedder=load_embedder(args.model), create=False) as library:
            result = run_search(request, library)
    if args.thumbnails:
        with open_library(args.db or result["library"], create=False) as library:
            write_thumbnails(library, result["hits"], Path(args.thumbnails))
    if args.json:
        print(json.dumps(result))
        return 0
    milliseconds = result["seconds"] * 1e3
    if args.thumbnails:
        rendered = sum(hit.get("thumbnail_rendered", False) for hit in result["hits"])
        print(f"thumbnails in {args.thumbnails} ({rendered} of {len(result['hits'])} rendered mannequins)")
    print(f"{len(result['hits'])} results from {result['library']} ({result['model']}, {milliseconds:.0f} ms)")
    for rank, hit in enumerate(result["hits"], 1):
        print(f"{rank:>3}. {hit['score']:.3f}  {hit['name']}  [{hit['skeleton']}, {hit['duration_s']:.1f} s, "
              f"{hit['license']}]  {hit['caption']}")  # fmt: skip
    return 0


def write_thumbnails(library, hits: list[dict], folder: Path) -> None:
    """Write each hit's thumbnail (:func:`backend.render.thumbnails.ensure_thumbnails`) to
    ``folder/<rank>_<name>.png`` atomically and add ``thumbnail`` (the path) and ``thumbnail_rendered`` to the hit."""
    import re

    from backend.render.thumbnails import ensure_thumbnails
    from models.atomic import atomic_write

    if not hits:
        return
    folder.mkdir(parents=True, exist_ok=True)
    found = {t["clip_id"]: t for t in ensure_thumbnails(library, [hit["clip_id"] for hit in hits])["thumbnails"]}
    for rank, hit in enumerate(hits, 1):
        thumbnail = found.get(int(hit["clip_id"]))
        if thumbnail is None:
            continue
        path = folder / f"{rank:02d}_{re.sub(r'[^A-Za-z0-9._-]+', '_', str(hit['name']))[:80]}.png"
        with atomic_write(path, suffix=".png") as tmp:
            Path(tmp).write_bytes(thumbnail["png"])
        hit["thumbnail"], hit["thumbnail_rendered"] = str(path), bool(thumbnail["rendered"])
