"""Train a text <-> motion retrieval model (TMR-style transformer or Motion Patches ViT) on the shared data.

The default run writes to ``$XDG_DATA_HOME/baton/models/retrieval/default`` (the model ``baton search`` loads):
``config.json``, ``model.safetensors``, ``metrics.json`` and ``MODEL_CARD.md``; it takes precedence over the weights
Baton ships in ``models/retrieval/weights/default``. Weights trained on the Bandai Namco datasets are for
non-commercial use only (CC BY-NC 4.0); the shipped ones sit in their own folder with that license.

``--video DATASET`` adds LAVIMO's third modality (:mod:`models.retrieval.trimodal`): a video encoder trained on the
rendered avatar clips of ``baton data render`` with the text-video and video-motion soft-target losses, attention
fusion and motion reconstruction, after (or, with ``--init RUN``, instead of) the text-motion training.
``--video-weight 0`` is the control arm without the video terms.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from models.progress import Progress
from models.retrieval.augment import VIEW_SKELETONS

log = logging.getLogger("baton.train.retrieval")
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def default_threads() -> int:
    """Half the CPU cores, at least 1."""
    return max(1, (os.cpu_count() or 2) // 2)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="run folder (default: $XDG_DATA_HOME/baton/models/retrieval/default)")  # fmt: skip
    parser.add_argument("--encoder", choices=("tmr", "patches"), default="tmr", help="motion encoder")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder (../shared/data)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default from the config)")
    parser.add_argument("--batch-size", type=int, default=None, help="clips per batch")
    parser.add_argument("--layers", type=int, default=None, help="transformer / ViT layers")
    parser.add_argument("--d-model", type=int, default=None, help="transformer / ViT width (paper: 256)")
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="torch CPU threads (default: half the cores; fewer threads win on a busy machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", default="bandai1,bandai2,cmu131", help="comma list of bandai1, bandai2, cmu131")
    parser.add_argument("--captions-per-label", type=int, default=None, help="rephrasings per content x style")
    parser.add_argument("--limit-per-group", type=int, default=None, help="at most N clips per content x style")
    parser.add_argument("--views", default=",".join(VIEW_SKELETONS),
                        help="cross-skeleton training views: comma list of smpl24, smpl22, kit21, cmu31, self "
                        "(each clip retargeted onto them, proportions jittered), or 'none' (default: %(default)s)")
    parser.add_argument("--view-probability", type=float, default=None,
                        help="chance that a training sample uses a cross-skeleton view (default 0.5)")
    parser.add_argument("--text-encoder", default=None, help="local Hugging Face encoder folder (default MiniLM)")
    parser.add_argument("--vit-weights", default=None, help="local pre-trained ViT folder for --encoder patches")
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default $XDG_CACHE_HOME)")
    parser.add_argument("--video", type=Path, default=None,
                        help="rendered text-video-motion dataset (`baton data render`): train a video encoder too "
                        "(LAVIMO tri-modal loss)")  # fmt: skip
    parser.add_argument("--init", type=Path, default=None,
                        help="with --video: start from this retrieval run folder (e.g. models/retrieval/weights/"
                        "default) and skip the text-motion training")  # fmt: skip
    parser.add_argument("--video-steps", type=int, default=300, help="tri-modal steps (default 300)")
    parser.add_argument("--video-weight", type=float, default=1.0,
                        help="weight of the text-video and video-motion terms; 0 = the control arm (default 1)")
    parser.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation and model card")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def build_config(args: argparse.Namespace):
    """The resolved :class:`RetrievalConfig` for the command-line arguments."""
    from models.retrieval.model import RetrievalConfig

    config = RetrievalConfig(encoder=args.encoder)
    training = config.training
    training.seed = args.seed
    training.sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    training.limit_per_group = args.limit_per_group
    views = () if args.views.strip().lower() in ("", "none") else tuple(v.strip() for v in args.views.split(","))
    unknown = sorted(set(views) - {"smpl24", "smpl22", "kit21", "cmu31", "self"})
    if unknown:
        raise ValueError(f"--views: unknown view skeletons {unknown}; use smpl24, smpl22, kit21, cmu31, self or none")
    training.views = views
    if args.view_probability is not None:
        if not 0.0 <= args.view_probability <= 1.0:
            raise ValueError(f"--view-probability must be in [0, 1], got {args.view_probability}")
        training.view_probability = args.view_probability
    if args.steps is not None:
        if args.steps < 1:
            raise ValueError(f"--steps must be >= 1, got {args.steps}")
        training.steps = args.steps
        training.warmup_steps = min(training.warmup_steps, max(1, args.steps // 10))
    if args.batch_size is not None:
        if args.batch_size < 2:
            raise ValueError(f"--batch-size must be >= 2, got {args.batch_size}")
        training.batch_size = args.batch_size
    if args.captions_per_label is not None:
        if args.captions_per_label < 1:
            raise ValueError(f"--captions-per-label must be >= 1, got {args.captions_per_label}")
        training.captions_per_label = args.captions_per_label
    if args.layers is not None:
        config.tmr.layers = config.patches.layers = args.layers
    if args.d_model is not None:
        if args.d_model < 8 or args.d_model % 4:
            raise ValueError(f"--d-model must be a multiple of 4 (heads) and >= 8, got {args.d_model}")
        config.tmr.d_model = config.patches.hidden_size = args.d_model
        config.tmr.feedforward = config.patches.intermediate_size = 4 * args.d_model
    if args.text_encoder:
        from models.retrieval.text import SentenceEncoder

        config.text_encoder = args.text_encoder
        config.text_dim = SentenceEncoder(args.text_encoder).dim
    if args.vit_weights:
        config.patches.pretrained = args.vit_weights
    return config


RUN_FILES = {"config.json", "model.safetensors", "metrics.json", "MODEL_CARD.md", "LICENSE"}


def check_output_folder(output: Path) -> None:
    """Refuse an ``--output`` that is a file or a non-empty folder other than a previous run (whose files would be
    replaced). Raises ``ValueError``."""
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output {output} exists and is not a folder")
    if output.is_dir():
        foreign = sorted(p.name for p in output.iterdir() if p.name not in RUN_FILES)
        if foreign:
            raise ValueError(f"--output {output} holds other files ({', '.join(foreign[:5])}); choose a new or empty "
                             "folder or a previous retrieval run folder")  # fmt: skip


def replace_folder(staging: Path, output: Path) -> None:
    """Move the finished run ``staging`` to ``output``, replacing a previous run there only once the new one is
    complete (rename swap), so an interrupted run never leaves a half-written model."""
    if not output.exists():
        os.replace(staging, output)
        return
    previous = output.with_name(f".{output.name}.previous-{os.getpid()}")
    os.replace(output, previous)
    try:
        os.replace(staging, output)
    except OSError:
        os.replace(previous, output)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _command_line(args: argparse.Namespace) -> str:
    """The training command as a user would type it (for the model card)."""
    parts = ["baton", "train", "retrieval", "--encoder", args.encoder]
    for flag in ("steps", "batch_size", "layers", "d_model", "captions_per_label", "limit_per_group", "text_encoder",
                 "vit_weights"):  # fmt: skip
        value = getattr(args, flag)
        if value is not None:
            parts += ["--" + flag.replace("_", "-"), str(value)]
    if args.sources != "bandai1,bandai2,cmu131":
        parts += ["--sources", args.sources]
    if args.views != ",".join(VIEW_SKELETONS):
        parts += ["--views", args.views]
    if args.view_probability is not None:
        parts += ["--view-probability", str(args.view_probability)]
    if args.seed:
        parts += ["--seed", str(args.seed)]
    if args.video is not None:
        parts += ["--video", str(args.video), "--video-steps", str(args.video_steps), "--video-weight",
                  f"{args.video_weight:g}"]  # fmt: skip
        if args.init is not None:
            parts += ["--init", str(args.init)]
    return " ".join(shlex.quote(p) for p in parts)


def _load_init(run_dir: Path, config):
    """The model of ``run_dir`` rebuilt with a video encoder (a copy of its motion encoder)."""
    from safetensors.torch import load_file

    from models.retrieval.model import RetrievalModel
    from models.retrieval.trimodal import init_video_encoder

    model = RetrievalModel(config)
    missing, unexpected = model.load_state_dict(load_file(str(run_dir / "model.safetensors")), strict=False)
    if unexpected or any(not key.startswith("video_encoder.") for key in missing):
        raise ValueError(f"--init {run_dir}: weights do not match its config (missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]})")  # fmt: skip
    if not any(key.startswith("video_encoder.") for key in missing):
        return model  # already tri-modal: continue from its video encoder
    init_video_encoder(model)
    return model


def _train_video(args: argparse.Namespace, model, clips, progress: Progress):
    """Tri-modal fine-tuning of ``model`` on ``args.video``. Returns ``(losses, video metrics on the held-out
    rendered items)``."""
    from models.retrieval.captions import mine_kit_texts
    from models.retrieval.datasets import default_cache_dir
    from models.retrieval.training import KIT_ANNOTATIONS, CaptionBank, build_caption_pools
    from models.retrieval.trimodal import evaluate_items, load_video_items, train_trimodal

    cache_dir = args.cache_dir or default_cache_dir()
    items = load_video_items(args.video, model.config.fps, cache_dir, {c.name: c.split for c in clips},
                             progress.sub(0.0, 0.2))  # fmt: skip
    train = [c for c in clips if c.split == "train"]
    kit_path = args.data / KIT_ANNOTATIONS
    kit_texts = mine_kit_texts(kit_path) if kit_path.is_file() else None
    training = model.config.training
    pools = build_caption_pools(train, training.captions_per_label, kit_texts, training.seed)
    bank = CaptionBank(pools, model.sentence_encoder, cache_dir)
    stats = train_trimodal(model, clips, items, bank, steps=args.video_steps, video_weight=args.video_weight,
                           seed=args.seed, progress=progress.sub(0.2, 1.0))  # fmt: skip
    log.info("tri-modal training on %d rendered items", stats.items)
    metrics = {"dataset": str(args.video), "train_items": stats.items, "video_weight": args.video_weight,
               "steps": args.video_steps}  # fmt: skip
    try:
        metrics["test"] = evaluate_items(model, items, "test")
    except ValueError as exc:
        log.warning("no held-out video metrics: %s", exc)
    return stats.losses, metrics


def run(args: argparse.Namespace) -> int:
    import torch

    from models.retrieval.datasets import load_clips
    from models.retrieval.evaluation import evaluate
    from models.retrieval.model import default_model_dir
    from models.retrieval.model_card import write_model_card
    from models.retrieval.training import train_retrieval

    config = build_config(args)
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.video is None and args.init is not None:
        raise ValueError("--init is for tri-modal training; give --video DATASET too")
    if args.video is not None:
        import math

        if not (args.video / "manifest.jsonl").is_file():
            raise FileNotFoundError(f"--video {args.video}: not a rendered dataset (no manifest.jsonl; make one with "
                                    "`baton data render`)")  # fmt: skip
        if args.video_steps < 1 or not math.isfinite(args.video_weight) or args.video_weight < 0:
            raise ValueError(f"--video-steps must be >= 1 and --video-weight >= 0, got {args.video_steps} and "
                             f"{args.video_weight}")  # fmt: skip
        if args.init is not None:
            from models.retrieval.model import RetrievalConfig, is_model_dir

            if not is_model_dir(args.init):
                raise FileNotFoundError(f"--init {args.init}: no retrieval model there (needs config.json and "
                                        "model.safetensors)")  # fmt: skip
            requested = config.training
            config = RetrievalConfig.from_dict(json.loads((args.init / "config.json").read_text()))
            # the data of this run is the command line's (sources, views, seed), the sizes are the init model's
            config.training.sources, config.training.views = requested.sources, requested.views
            config.training.seed = requested.seed
            if config.encoder != "tmr":
                raise ValueError(f"--init {args.init}: a video encoder needs a tmr model, not {config.encoder}")
        config.video_encoder = True
        if config.encoder != "tmr":
            raise ValueError("--video needs --encoder tmr")
    torch.set_num_threads(args.threads)
    output = (args.output or default_model_dir()).expanduser()
    check_output_folder(output)
    if not args.data.is_dir():
        raise FileNotFoundError(f"shared data folder not found: {args.data} (pass --data)")
    progress = Progress(callback=lambda f, s: log.debug("%3.0f%% %s", 100 * f, s))
    started = time.monotonic()
    clips = load_clips(args.data, sources=config.training.sources, fps=config.fps, cache_dir=args.cache_dir,
                       limit_per_group=config.training.limit_per_group, progress=progress.sub(0.0, 0.1),
                       views=config.training.views, workers=args.threads)  # fmt: skip
    video_metrics = None
    if args.init is None:
        model, clips, losses = train_retrieval(config, args.data, clips=clips, cache_dir=args.cache_dir,
                                               progress=progress.sub(0.1, 0.6 if args.video else 0.95))  # fmt: skip
    else:
        model = _load_init(args.init, config)
    if args.video is not None:
        losses, video_metrics = _train_video(args, model, clips, progress.sub(0.6, 0.95))
    seconds = time.monotonic() - started
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        model.save(staging)
        if not args.no_eval:
            metrics = evaluate(model, clips)
            if video_metrics is not None:
                metrics["video"] = video_metrics
            info = {"seconds": seconds, "final_loss": losses[-1], "command": _command_line(args)}
            write_model_card(staging, config, clips, metrics, info)
        replace_folder(staging, output)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    result = {"run_dir": str(output), "encoder": config.encoder, "steps": config.training.steps,
              "train_seconds": round(seconds, 1), "first_loss": losses[0], "final_loss": losses[-1]}  # fmt: skip
    if not args.no_eval:
        result["metrics"] = metrics
    if args.json:
        print(json.dumps(result))
    else:
        print(f"trained {config.encoder} retrieval model in {seconds:.0f} s -> {output}")
        if "metrics" in result:
            free = result["metrics"]["freeform"]["content"]
            print(f"free-form content hit: R@1 {free['R@1']:.1f}%  R@5 {free['R@5']:.1f}%  (see MODEL_CARD.md)")
    return 0
