"""Conductor metrics for generated performances of one or more audio files, as one JSON object.

For each file: the front end's ``meter`` and ``tempo_bpm``; ``bc_seconds``, ``bc_seed``, ``jitter`` (always);
``fgd``, ``diversity``, ``sync``, ``sync_control`` and ``sync_gain`` when an M2S-Net is available (``--m2snet`` or
imported weights; the control is the sync of the motion shifted against its music, the gain their difference);
``mse``, ``fgd``, ``sce``, ``rde`` against a reference motion: ``--reference m2sgan`` (default when M2S-GAN weights
exist: VirtualConductor's generator, trained on real ConductorMotion100 conductors, at seed 12345 — a proxy for real
data, which is not available here), one motion file per audio (``.npz`` / CM100 ``motion.npy``), or ``none``.
``mean`` averages every key over the files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

KEYS = ("bc_seconds", "bc_seed", "fgd", "diversity", "mse", "sce", "rde", "jitter", "sync", "sync_control",
        "sync_gain")
REFERENCE_SEED = 12345


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", nargs="+", help="music files")
    parser.add_argument("--model", default="procedural", help="procedural | diffusion | m2sgan")
    parser.add_argument("--checkpoint", default=None, help="weights for --model")
    parser.add_argument("--m2snet", default=None, help="M2S-Net checkpoint (official or imported) for FGD/diversity")
    parser.add_argument("--m2sgan", default=None, help="M2S-GAN checkpoint for --reference m2sgan")
    parser.add_argument("--reference", nargs="+", default=["auto"],
                        help="auto | m2sgan | none | one motion file per audio (.npz or CM100 motion.npy)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _reference_motion(kind: str, index: int, features, args, gan_path) -> np.ndarray | None:
    from models.conductor import generate

    if kind == "none":
        return None
    if kind == "m2sgan":
        return generate(features, "m2sgan", seed=REFERENCE_SEED, checkpoint=gan_path).positions
    path = Path(args.reference[index])
    if path.suffix == ".npy":
        data = np.load(path, allow_pickle=False)
        if data.ndim != 3 or data.shape[1:] != (13, 2):
            raise ValueError(f"{path}: a reference motion.npy must be (T, 13, 2), got {data.shape}")
        return data
    from models.motion.io import load_motion

    motion = load_motion(path)
    if motion.positions.shape[1:] != (13, 2):
        raise ValueError(f"{path}: the reference must be a 2D coco13 motion, got {motion.positions.shape}")
    return motion.positions


def _resolve(args) -> tuple[str, Path | None, object]:
    from models.conductor.virtualconductor import default_weights_path, load_m2snet

    m2snet_path = Path(args.m2snet) if args.m2snet else default_weights_path("m2snet")
    m2snet = load_m2snet(m2snet_path) if (args.m2snet or m2snet_path.is_file()) else None
    gan = Path(args.m2sgan) if args.m2sgan else (
        Path(args.checkpoint) if args.model == "m2sgan" and args.checkpoint else default_weights_path("m2sgan"))
    kind = args.reference[0] if len(args.reference) == 1 and args.reference[0] in ("auto", "m2sgan", "none") \
        else "files"  # fmt: skip
    if kind == "files" and len(args.reference) != len(args.audio):
        raise ValueError(f"--reference needs one motion file per audio file ({len(args.audio)}), "
                         f"got {len(args.reference)}")  # fmt: skip
    if kind == "auto":
        kind = "m2sgan" if gan.is_file() else "none"
    if kind == "m2sgan" and not gan.is_file():
        raise FileNotFoundError(f"--reference m2sgan needs M2S-GAN weights: {gan} not found (use --m2sgan PATH)")
    return kind, gan, m2snet


def run(args: argparse.Namespace) -> int:
    from backend.conductor.pipeline import terminal_progress
    from models.conductor import analyze_audio, generate
    from models.metrics.conductor import evaluate_motion

    kind, gan, m2snet = _resolve(args)
    progress = terminal_progress("baton eval conductor")
    files = []
    for index, audio in enumerate(args.audio):
        step = progress.sub(index / len(args.audio), (index + 1) / len(args.audio))
        features = analyze_audio(audio, progress=step.sub(0.0, 0.3))
        motion = generate(features, args.model, seed=args.seed, steps=args.steps, checkpoint=args.checkpoint,
                          progress=step.sub(0.3, 0.8))  # fmt: skip
        step.update(0.8, "metrics")
        reference = _reference_motion(kind if kind != "files" else "file", index, features, args, gan)
        values = evaluate_motion(motion.positions, beat_times=features.beat_times, mel=features.mel,
                                 reference=reference, m2snet=m2snet, fps=motion.fps)  # fmt: skip
        files.append({"audio": str(audio), "duration_s": round(features.duration_s, 3), "meter": int(features.meter),
                      "tempo_bpm": round(float(features.tempo_bpm), 2), **values})
        step.update(1.0, f"{Path(audio).name} done")
    mean = {}
    for key in KEYS:
        numbers = [f[key] for f in files if f[key] is not None]
        mean[key] = float(np.mean(numbers)) if numbers else None
    report = {"model": args.model, "seed": args.seed, "steps": args.steps, "checkpoint": args.checkpoint,
              "reference": f"m2sgan(seed={REFERENCE_SEED})" if kind == "m2sgan" else kind,
              "m2snet": bool(m2snet is not None), "files": files, "mean": mean}  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in mean.items():
            print(f"{key:>12}: {'n/a' if value is None else f'{value:.4f}'}", file=sys.stderr)
    return 0
