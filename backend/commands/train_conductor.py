"""``baton train conductor``: train the Diffusion-Conductor (contrastive pre-training, then x0 diffusion).

Data: ``--data DIR`` (ConductorMotion100 layout ``{train,val}/<i>/{mel.npy,motion.npy}``, e.g. the real dataset
or a corpus built earlier) or ``--synthetic FILE...`` (audio or MIDI files paired with the procedural conductor
under random styles; the corpus is written to ``RUN_DIR/corpus`` unless ``--corpus-dir`` says otherwise).
Writes ``RUN_DIR/{config.json, diffusion.pt, m2snet.pt, metrics.json}``; ``diffusion.pt`` loads with
``baton conduct --model diffusion --checkpoint RUN_DIR``. Multi-GPU: ``torchrun --nproc_per_node N -m backend.cli
train conductor ... --device cuda`` (see docs/conductor.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("baton.train")


def configure(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="corpus root in the ConductorMotion100 layout ({train,val}/<i>/mel.npy,motion.npy)")
    src.add_argument("--synthetic", nargs="+", metavar="FILE", help="audio/MIDI files for a synthetic-teacher corpus")
    parser.add_argument("-o", "--output", required=True, help="run folder (config.json, diffusion.pt, ...)")
    parser.add_argument("--corpus-dir", help="where --synthetic writes its corpus (default RUN_DIR/corpus)")
    parser.add_argument("--styles-per-piece", type=int, default=8, help="random procedural styles per piece")
    parser.add_argument("--stretch", default="1.0", help="comma-separated tempo stretch rates, e.g. 1.0,0.8,1.25")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="trailing share of each piece held out")
    parser.add_argument("--compose", type=int, default=0, metavar="N",
                        help="with --synthetic: also compose N MIDI pieces in 2/4, 3/4, 4/4 and 6/8 with varied tempi "
                             "and tempo maps (models/conductor/compose.py), rendered with fluidsynth")
    parser.add_argument("--compose-styles", type=int, default=None,
                        help="styles per composed piece (default --styles-per-piece)")
    parser.add_argument("--meter-augment", type=float, default=0.0,
                        help="share of teacher performances conducted in another meter than the estimated one")
    g = parser.add_argument_group("model")
    g.add_argument("--latent-dim", type=int, default=128)
    g.add_argument("--layers", type=int, default=8)
    g.add_argument("--heads", type=int, default=8)
    g.add_argument("--ff-dim", type=int, default=256)
    g.add_argument("--max-frames", type=int, default=900)
    g.add_argument("--dropout", type=float, default=0.1)
    g.add_argument("--rhythm", action=argparse.BooleanOptionalAction, default=True,
                   help="append the explicit rhythm condition (beat/bar phase, meter, onsets, level) to the music "
                        "encoder's features (default on; --no-rhythm = the paper's encoder-only condition)")
    t = parser.add_argument_group("training")
    t.add_argument("--window", type=int, default=900, help="stage-2 window, frames at 30 fps (default 30 s)")
    t.add_argument("--overlap", type=int, default=150, help="generation overlap, frames")
    t.add_argument("--music-encoder", metavar="M2SNET.pt",
                   help="skip stage 1: use this M2S-Net (a run's m2snet.pt, or official/imported weights)")
    t.add_argument("--init", metavar="DIFFUSION.pt",
                   help="fine-tune: start stage 2 from this Diffusion-Conductor checkpoint (its denoiser, frozen "
                        "music encoder and normaliser; skips stage 1; the model flags are taken from it)")
    t.add_argument("--stage1-window", type=int, default=120)
    t.add_argument("--stage1-steps", type=int, default=2000)
    t.add_argument("--stage1-batch", type=int, default=32)
    t.add_argument("--stage1-lr", type=float, default=1e-3)
    t.add_argument("--steps", type=int, default=20000)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--grad-clip", type=float, default=0.5)
    t.add_argument("--cond-drop", type=float, default=0.1)
    t.add_argument("--perceptual-weight", type=float, default=1e-6)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    t.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (torchrun: one GPU per process)")
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--save-every", type=int, default=0,
                   help="also write diffusion.pt every N stage-2 steps (0 = only at the end)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (paths and metrics) on stdout")


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"--stretch must be comma-separated numbers, got {text!r}") from None
    if not rates:
        raise ValueError("--stretch needs at least one rate")
    return rates


def _progress():
    from models.progress import Progress

    state = {"stage": None, "shown": -1.0}

    def show(fraction: float, stage: str) -> None:
        if stage != state["stage"] or fraction - state["shown"] >= 0.05 or fraction >= 1.0 > state["shown"]:
            print(f"[{fraction * 100:5.1f}%] {stage}", file=sys.stderr, flush=True)
            state.update(stage=stage, shown=fraction)

    return Progress(callback=show)


def run(args: argparse.Namespace) -> int:
    from models.conductor.corpus import build_synthetic_corpus
    from models.conductor.diffusion_losses import LossWeights
    from models.conductor.diffusion_model import DenoiserConfig
    from models.conductor.diffusion_train import TrainConfig, train_conductor
    from models.conductor.rhythm import RHYTHM_DIM
    from models.motion.conductor_dataset import iter_conductor_split

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    logging.getLogger("models.conductor.diffusion_train").setLevel(logging.INFO)
    denoiser = DenoiserConfig(latent_dim=args.latent_dim, num_layers=args.layers, num_heads=args.heads,
                              ff_dim=args.ff_dim, max_frames=args.max_frames, dropout=args.dropout,
                              rhythm_dim=RHYTHM_DIM if args.rhythm else 0)
    if args.init:
        from models.conductor.diffusion import load_checkpoint

        if args.music_encoder:
            raise ValueError("--init fine-tunes a checkpoint with its own music encoder; drop --music-encoder")
        denoiser = DenoiserConfig.from_dict(load_checkpoint(args.init)["denoiser_config"])
    cfg = TrainConfig(
        denoiser=denoiser,
        window=args.window, overlap=args.overlap, stage1_window=args.stage1_window, stage1_steps=args.stage1_steps,
        stage1_batch=args.stage1_batch, stage1_lr=args.stage1_lr, steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, grad_clip=args.grad_clip, cond_drop=args.cond_drop,
        loss=LossWeights(perceptual=args.perceptual_weight), seed=args.seed, threads=args.threads,
        device=args.device, log_every=args.log_every, save_every=args.save_every,
    )
    out = Path(args.output)
    progress = _progress()
    if args.synthetic:
        for f in args.synthetic:
            if not Path(f).is_file():
                raise ValueError(f"--synthetic: file not found: {f}")
        corpus = Path(args.corpus_dir) if args.corpus_dir else out / "corpus"
        manifest = build_synthetic_corpus(args.synthetic, corpus, styles_per_piece=args.styles_per_piece,
                                          stretch_rates=_rates(args.stretch), val_fraction=args.val_fraction,
                                          seed=args.seed, compose=args.compose, compose_styles=args.compose_styles,
                                          meter_augment=args.meter_augment, progress=progress.sub(0.0, 0.05))
        data_info = {"kind": "synthetic", "corpus": str(corpus), "manifest": manifest}
    else:
        if args.compose:
            raise ValueError("--compose builds a synthetic corpus: use it with --synthetic, not --data")
        corpus = Path(args.data)
        data_info = {"kind": "folder", "corpus": str(corpus)}
        if (corpus / "manifest.json").is_file():  # a synthetic corpus built earlier says what music it holds
            data_info["manifest"] = json.loads((corpus / "manifest.json").read_text())
    train = list(iter_conductor_split(corpus, "train"))
    try:
        val = list(iter_conductor_split(corpus, "val"))
    except FileNotFoundError:
        val = []
    data_info.update(train_samples=len(train), val_samples=len(val))
    data_info["argv"] = [Path(sys.argv[0]).name, *sys.argv[1:]]
    if args.music_encoder and not Path(args.music_encoder).is_file():
        raise ValueError(f"--music-encoder: file not found: {args.music_encoder}")
    path = train_conductor(train, out, cfg, val=val, data_info=data_info, progress=progress.sub(0.05, 1.0),
                           music_encoder_from=args.music_encoder, init_from=args.init)
    import torch.distributed as dist

    if dist.is_initialized():  # torchrun: wait for rank 0's files, then only rank 0 reports
        dist.barrier()
        rank = dist.get_rank()
        dist.destroy_process_group()
        if rank != 0:
            return 0
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else {}
    result = {"checkpoint": str(path), "run_dir": str(out), "config": str(out / "config.json"), "metrics": metrics}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"checkpoint: {path}", file=sys.stderr)
    return 0
