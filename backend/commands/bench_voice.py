"""Voice-command speed: spoken instructions -> motions per second, end-to-end vs cascaded, in one run.

Each item is one full request: read + check the audio, understand it (end-to-end: Whisper encoder + memory-retrieval
attention; cascaded: Whisper transcription, which pads to Whisper's 30 s window, + the MiniLM text embedding), then
generate one ``--seconds`` motion with the same generator, seed and guidance (generation is the same work on both
paths). Inputs: ``--audio`` files, else instructions synthesised with espeak-ng / flite into a temporary folder.
Without ``--weights`` and without installed text-to-motion weights, an untrained generator of the default
architecture (``models.instruct.train.TrainConfig``) is timed: the same cost, not a meaningful motion.
Reports samples/s per path, the understanding time alone, and the ratio end-to-end / cascaded (the paper: 2.70 vs
1.51 samples/s, +78 %). Items a path refuses ("I did not understand") are counted and timed all the same.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

INSTRUCTIONS = ("could you make her walk forward", "I'd like him to wave his right hand happily",
                "please make the character bow politely", "can you have her raise both arms", "now run forward",
                "I want him to kick angrily", "make her walk backwards sadly",
                "could you make him punch forward")  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio", nargs="*", default=None, help="instruction recordings (default: synthesised)")
    parser.add_argument("--items", type=int, default=8, help="synthesised instructions (default 8)")
    parser.add_argument("--repeats", type=int, default=1, help="passes over the items per path")
    parser.add_argument("--seconds", type=float, default=4.0, help="motion length (default 4 s)")
    parser.add_argument("--weights", default=None, help="text-to-motion run folder (default: shipped)")
    parser.add_argument("--whisper-model", default=None)
    parser.add_argument("--speech-weights", default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch / CTranslate2 threads (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _synthesise(folder: Path, count: int) -> list[Path]:
    from models.speech.voices import all_voices, engine_missing, synthesize

    voices = [v for v in all_voices() if v.engine in ("flite", "espeak") and engine_missing(v.engine) is None]
    if not voices:
        raise ValueError("no --audio given and neither flite nor espeak-ng is installed to synthesise instructions")
    voices = [v for v in voices if v.engine == "flite"] + [v for v in voices if v.engine == "espeak"][:4]
    return [synthesize(voices[i % len(voices)], INSTRUCTIONS[i % len(INSTRUCTIONS)], folder / f"item{i}.wav")
            for i in range(count)]


def _untrained_default(folder: Path) -> Path:
    """An untrained text-to-motion run of the default architecture in ``folder`` (timing only)."""
    import torch

    from models.instruct import networks as nets
    from models.instruct.train import TrainConfig

    cfg = TrainConfig()
    torch.manual_seed(0)
    vq = nets.RVQVAE(cfg.vq)
    vq.train()
    vq(torch.randn(4, 64, cfg.vq.input_dim))  # k-means initialises the codebooks
    stats = {"mean": torch.zeros(cfg.vq.input_dim), "std": torch.full((cfg.vq.input_dim,), 0.1)}
    nets.save_network(folder / "vq.pt", "vq", vq.eval(), stats)
    nets.save_network(folder / "mask.pt", "mask", nets.MaskedTransformer(cfg.transformer))
    nets.save_network(folder / "residual.pt", "residual", nets.ResidualTransformer(cfg.transformer))
    nets.save_network(folder / "length.pt", "length", nets.LengthEstimator(cfg.length))
    return folder


def run(args: argparse.Namespace) -> int:
    import torch

    from backend.instruct.speech import SpeechInstructor, SpeechNotUnderstood
    from models.instruct import load_text_to_motion
    from models.speech.audio import load_instruction

    if args.items < 1 or args.repeats < 1:
        raise ValueError("--items and --repeats must be >= 1")
    from models.instruct import WeightsNotAvailable

    torch.set_num_threads(max(1, args.threads))
    with tempfile.TemporaryDirectory(prefix="baton-bench-voice-") as tmp:
        weights = "installed" if args.weights is None else str(args.weights)
        try:
            generator = load_text_to_motion(args.weights)
        except WeightsNotAvailable:
            if args.weights is not None:
                raise
            print("bench voice: no text-to-motion weights installed; timing an untrained default-architecture "
                  "generator (same cost)", file=sys.stderr)  # fmt: skip
            generator = load_text_to_motion(_untrained_default(Path(tmp)))
            weights = "untrained-default"
        files = [Path(a) for a in args.audio] if args.audio else _synthesise(Path(tmp), args.items)
        clips = [load_instruction(f) for f in files]
    instructor = SpeechInstructor(generator, whisper_model=args.whisper_model, speech_weights=args.speech_weights,
                                  threads=args.threads)  # fmt: skip
    # warm up both paths (model loading, first-call allocations) outside the timing
    for path in ("end2end", "cascaded"):
        try:
            u = instructor.prompt_for(clips[0], path)
            generator.generate(u.prompt, seconds=args.seconds, seed=0)
            instructor.release(u)
        except SpeechNotUnderstood:
            pass
    result: dict = {"items": len(clips), "repeats": args.repeats, "seconds": args.seconds, "threads": args.threads,
                    "t2m_weights": weights,
                    "whisper_model": str(instructor.whisper().model_dir), "paths": {}}  # fmt: skip
    for path in ("end2end", "cascaded"):
        understand, refused, started = 0.0, 0, time.perf_counter()
        for rep in range(args.repeats):
            for i, clip in enumerate(clips):
                t0 = time.perf_counter()
                try:
                    u = instructor.prompt_for(clip, path)
                except SpeechNotUnderstood:
                    refused += 1
                    understand += time.perf_counter() - t0
                    continue
                understand += time.perf_counter() - t0
                generator.generate(u.prompt, seconds=args.seconds, seed=rep * 100 + i)
                instructor.release(u)
        total = time.perf_counter() - started
        n = len(clips) * args.repeats
        result["paths"][path] = {"samples_per_s": round(n / total, 3), "understand_ms": round(1000 * understand / n, 1),
                                 "total_s": round(total, 2), "refused": refused}  # fmt: skip
        print(f"bench voice: {path}: {n / total:.2f} samples/s ({refused} refused)", file=sys.stderr)
    e2e, cas = result["paths"]["end2end"], result["paths"]["cascaded"]
    result["speedup_end2end_vs_cascaded"] = round(e2e["samples_per_s"] / cas["samples_per_s"], 3)
    result["understand_speedup"] = round(cas["understand_ms"] / max(1e-9, e2e["understand_ms"]), 2)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0
