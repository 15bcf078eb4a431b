"""Train the text-to-motion generator (RVQ-VAE, masked + residual transformers, length estimator).

Data (one of): the shared data (default: Bandai Namco 1 + 2 and CMU 131 retargeted onto smpl22, written in the
HumanML3D layout to ``RUN_DIR/dataset``), ``--humanml3d DIR`` (a real HumanML3D folder or one written by an earlier
run), or ``--library DB`` (every clip of a Baton motion library, captions from the library). Stages are saved as they
finish; running the same command again resumes. Multi-process: ``torchrun --nproc_per_node N -m backend.cli train
t2m ...`` (rank 0 alone writes and reports). Weights trained on Bandai Namco data are CC BY-NC 4.0 (non-commercial).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

log = logging.getLogger("baton.train.t2m")
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--humanml3d", type=Path, default=None, help="a HumanML3D-layout folder to train on")
    source.add_argument("--library", default=None, help="a Baton motion library URL / SQLite file to train on")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder (../shared/data)")
    parser.add_argument("--sources", default="bandai1,bandai2,cmu131", help="shared-data sources to build from")
    parser.add_argument("-o", "--output", type=Path, required=True, help="run folder (resumed when it exists)")
    parser.add_argument("--stages", default="vq,mask,residual,length,prior",
                        help="comma list of stages to train (prior: the base codes' bigram counts, seconds)")
    parser.add_argument("--vq-steps", type=int, default=None)
    parser.add_argument("--mask-steps", type=int, default=None)
    parser.add_argument("--residual-steps", type=int, default=None)
    parser.add_argument("--length-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="transformer batch size")
    parser.add_argument("--vq-batch-size", type=int, default=None)
    parser.add_argument("--vq-heading-weight", type=float, default=None,
                        help="weight of the RVQ-VAE's accumulated-root-yaw loss (default 0.3; 0 = MoMask's loss)")
    parser.add_argument("--content-balance", type=float, default=None,
                        help="draw transformer windows with probability ~ content size ** -B (0 = uniform, "
                             "1 = every content equally; default 0)")
    parser.add_argument("--vq-content-balance", type=float, default=None,
                        help="draw RVQ-VAE windows with probability ~ content frames ** -B (0 = every frame "
                             "equally, 1 = every content equally; default 0)")
    parser.add_argument("--token-phases", type=int, default=None,
                        help="start offsets (frames, 1-4) at which each train clip is tokenized for the transformers "
                             "(each gives another code sequence of the same motion; default 1)")  # fmt: skip
    parser.add_argument("--mirror", action="store_true",
                        help="also write every train clip left-right mirrored into the built dataset (HumanML3D's "
                             "augmentation; sides swapped in captions and content labels)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def build_config(args: argparse.Namespace):
    """The :class:`models.instruct.train.TrainConfig` of the arguments (the run's saved config when resuming)."""
    from models.instruct.train import TrainConfig

    saved = args.output / "config.json"
    cfg = TrainConfig.from_dict(json.loads(saved.read_text())) if saved.is_file() else TrainConfig()
    for flag, field in (("vq_steps", "vq_steps"), ("mask_steps", "mask_steps"), ("residual_steps", "residual_steps"),
                        ("length_steps", "length_steps"), ("batch_size", "transformer_batch"),
                        ("vq_batch_size", "vq_batch")):  # fmt: skip
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
            setattr(cfg, field, value)
    phases = getattr(args, "token_phases", None)
    if phases is not None:
        if not 1 <= phases <= cfg.vq.downsample:
            raise ValueError(f"--token-phases must be in 1..{cfg.vq.downsample} (frames per token), got {phases}")
        cfg.token_phases = phases
    heading = getattr(args, "vq_heading_weight", None)
    if heading is not None:
        if not heading >= 0:  # also refuses NaN
            raise ValueError(f"--vq-heading-weight must be a number >= 0, got {heading}")
        cfg.vq_heading_weight = float(heading)
    for name in ("content_balance", "vq_content_balance"):
        balance = getattr(args, name, None)
        if balance is not None:
            if not 0.0 <= balance <= 1.0:  # also refuses NaN
                raise ValueError(f"--{name.replace('_', '-')} must be a number in [0, 1], got {balance}")
            setattr(cfg, name, float(balance))
    cfg.seed, cfg.device = args.seed, args.device
    return TrainConfig.from_dict(cfg.to_dict())


def library_clips(url: str):
    """Every clip of a Baton motion library as :class:`models.instruct.data.SourceClip` (captions, else tags; 10 %
    test by SHA-1 of the clip's content hash)."""
    from backend.library import open_library
    from models.instruct.data import SourceClip

    library = open_library(url)
    clips = []
    for record in library.clips():
        captions = list(record.captions) or [" ".join(record.tags) or record.name]
        split = "test" if int(hashlib.sha1(record.content_hash.encode()).hexdigest(), 16) % 10 == 0 else "train"
        clips.append(SourceClip(str(record.clip_id), "library", (lambda i=record.clip_id: library.get_motion(i)),
                                captions=captions, split=split))  # fmt: skip
    if not clips:
        raise ValueError(f"the library {url} holds no clips")
    return clips


def prepare_dataset(args: argparse.Namespace, progress) -> Path:
    """The HumanML3D-layout folder to train on (built into ``RUN_DIR/dataset`` unless ``--humanml3d``)."""
    from models.instruct.data import build_dataset, build_shared_dataset

    if args.humanml3d is not None:
        if args.mirror:
            raise ValueError("--mirror applies to the dataset Baton builds; a --humanml3d folder is used as it is "
                             "(HumanML3D ships its own mirrored M<id> motions)")
        if not args.humanml3d.is_dir():
            raise FileNotFoundError(f"--humanml3d folder not found: {args.humanml3d}")
        return args.humanml3d
    folder = args.output / "dataset"
    if (folder / "all.txt").is_file():
        index = folder / "index.json"
        mirrored = index.is_file() and any(m.get("mirror_of") for m in json.loads(index.read_text()).values())
        if mirrored != args.mirror:
            raise ValueError(f"{folder} was built {'with' if mirrored else 'without'} mirrored clips but "
                             f"--mirror was {'not ' if mirrored else ''}given; use another -o or remove that folder")
        log.info("reusing the dataset in %s", folder)
        return folder
    if args.library is not None:
        build_dataset(library_clips(args.library), folder, mirror=args.mirror, progress=progress)
    else:
        if not args.data.is_dir():
            raise FileNotFoundError(f"shared data folder not found: {args.data} (pass --data)")
        sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
        build_shared_dataset(args.data, folder, sources=sources, mirror=args.mirror, progress=progress)
    return folder


def run(args: argparse.Namespace) -> int:
    import torch

    from backend.conductor.pipeline import terminal_progress
    from models.instruct.data import load_dataset
    from models.instruct.train import STAGES, train_t2m

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown --stages {sorted(unknown)}; use {', '.join(STAGES)}")
    if args.output.exists() and not args.output.is_dir():
        raise ValueError(f"--output {args.output} exists and is not a folder")
    cfg = build_config(args)
    torch.set_num_threads(args.threads)
    progress = terminal_progress("baton train t2m")
    started = time.monotonic()
    folder = prepare_dataset(args, progress.sub(0.0, 0.2))
    data = load_dataset(folder)
    result = train_t2m(data, cfg, args.output, stages=stages, progress=progress.sub(0.2, 1.0))
    report = {"run_dir": str(args.output), "dataset": str(folder), "train_clips": len(data.splits["train"]),
              "test_clips": len(data.splits["test"]), **result, "seconds": round(time.monotonic() - started, 1)}
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return 0
    if args.json:
        print(json.dumps(report))
    else:
        print(f"trained text-to-motion stages {', '.join(s for s, done in result['stages'].items() if done)} "
              f"-> {args.output}")
    return 0
