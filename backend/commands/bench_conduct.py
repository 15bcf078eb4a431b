"""``baton bench conduct``: real-time factor of every conductor model and runtime on CPU, in one run.

Real-time factor (RTF) = seconds of motion generated per wall-clock second, for generation from analysed music
(music encoder + sampler; the audio analysis is shared by every model and reported once as ``analysis_s``).
Rows: ``procedural`` (numpy), ``diffusion_torch``, ``diffusion_ort_fp32``, ``diffusion_ort_int8`` (onnxruntime,
exported in this run from the same checkpoint) and ``m2sgan_torch`` when its weights are installed or given
(``--m2sgan``).
Ratios against torch are measured in the same run. Each row is the best of ``--repeats`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_AUDIO = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "librosa_example_audio"
                 / "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", nargs="?", default=None, help=f"music file (default: {DEFAULT_AUDIO.name})")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and onnxruntime (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per row, best kept (default 2)")
    parser.add_argument("--checkpoint", default=None, help="diffusion checkpoint (default: shipped weights)")
    parser.add_argument("--m2sgan", default=None,
                        help="M2S-GAN checkpoint (official or imported; default: imported weights if present)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _best(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, onnxruntime graph optimisation, numba)
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(args: argparse.Namespace) -> int:
    import torch

    from models.conductor.audio import analyze_audio
    from models.conductor.diffusion import DiffusionConductor
    from models.conductor.registry import available_models, load_generator
    from models.conductor.rhythm import BeatGrid
    from models.export.conductor_onnx import OnnxConductorRuntime, export_denoiser, export_music_encoder, quantize_int8

    torch.set_num_threads(args.threads)
    audio = Path(args.audio) if args.audio else DEFAULT_AUDIO
    if not audio.is_file():
        raise FileNotFoundError(f"audio file not found: {audio}")
    start = time.perf_counter()
    features = analyze_audio(audio)
    analysis_s = time.perf_counter() - start
    duration = features.num_motion_frames / 30.0
    seconds: dict[str, float] = {}
    procedural = load_generator("procedural")
    seconds["procedural"] = _best(lambda: procedural.generate(features, seed=0), args.repeats)
    diffusion = DiffusionConductor(args.checkpoint)
    seconds["diffusion_torch"] = _best(lambda: diffusion.generate(features, seed=0, steps=args.steps), args.repeats)
    providers = {}
    with tempfile.TemporaryDirectory(prefix="baton-bench-") as tmp:
        den = export_denoiser(diffusion.denoiser, Path(tmp) / "denoiser.onnx")
        mus = export_music_encoder(diffusion.music_encoder, Path(tmp) / "music_encoder.onnx")
        variants = {"fp32": (den, mus),
                    "int8": (quantize_int8(den, Path(tmp) / "denoiser.int8.onnx"),
                             quantize_int8(mus, Path(tmp) / "music_encoder.int8.onnx", ("Conv", "MatMul", "Gemm")))}
        for name, (d, m) in variants.items():
            runtime = OnnxConductorRuntime(d, m, device="cpu", threads=args.threads)
            providers[name] = runtime.providers

            def ort_generate(runtime=runtime):
                music = runtime.music_features(features.mel, features.num_motion_frames,
                                               BeatGrid.from_features(features))
                return diffusion.sample(music, seed=0, steps=args.steps, denoise=runtime.denoise)

            seconds[f"diffusion_ort_{name}"] = _best(ort_generate, args.repeats)
    if args.m2sgan or available_models().get("m2sgan", {}).get("available"):
        m2sgan = load_generator("m2sgan", args.m2sgan)
        seconds["m2sgan_torch"] = _best(lambda: m2sgan.generate(features, seed=0), args.repeats)
    rtf = {name: duration / max(s, 1e-9) for name, s in seconds.items()}
    report = {
        "audio": str(audio), "duration_s": duration, "steps": args.steps, "threads": args.threads,
        "analysis_s": analysis_s, "seconds": seconds, "rtf": rtf, "ort_providers": providers,
        "diffusion_real_time": rtf["diffusion_torch"] > 1.0,
        "ort_fp32_speedup_vs_torch": seconds["diffusion_torch"] / seconds["diffusion_ort_fp32"],
        "ort_int8_speedup_vs_fp32": seconds["diffusion_ort_fp32"] / seconds["diffusion_ort_int8"],
        "diffusion_checkpoint": str(diffusion.checkpoint_path),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for name, value in rtf.items():
            print(f"{name:>22}: RTF {value:8.1f}  ({seconds[name]:.3f} s for {duration:.1f} s)", file=sys.stderr)
    return 0
