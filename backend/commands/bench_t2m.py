"""Benchmark text-to-motion generation on this machine: latency for 4 s and 20 s motions, batch 1 and 8, torch vs
onnxruntime (CPU), ONNX parity (max |torch - ORT| per exported graph) and seams (joint speed at window joins and
prompt changes vs the clip's own 99th percentile).

Latency is the median of ``--repeats`` calls of ``TextToMotion.generate`` (token sampling, decoding and the smpl22
rotation solve; the prompt's sentence embedding is cached after the warm-up call, as in a server).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=None, help="a `baton train t2m` run folder (default: shipped weights)")
    parser.add_argument("--threads", type=int, default=2, help="torch / onnxruntime CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per configuration (median reported)")
    parser.add_argument("--runtimes", default="torch,ort", help="comma list of torch, ort")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _joins(generator, tokens: int, starts_s: list[float]) -> list[int]:
    import numpy as np

    owner = np.zeros(tokens, dtype=np.int64)
    for i, s in enumerate(starts_s):
        owner[int(round(s * 20 / generator.frames_per_token)) :] = i
    windows = generator._windows(np.ones(tokens, bool), owner)
    return [start * generator.frames_per_token for _, start, _, _ in windows[1:]]


def run(args: argparse.Namespace) -> int:
    import torch

    from models.instruct import TimelineSegment, load_text_to_motion
    from models.instruct.evaluation import seam_ratio

    if args.repeats < 1 or args.threads < 1:
        raise ValueError("--repeats and --threads must be >= 1")
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    if not runtimes or set(runtimes) - {"torch", "ort"}:
        raise ValueError(f"--runtimes must list torch and/or ort, got {args.runtimes!r}")
    torch.set_num_threads(args.threads)
    prompt = "a person walks forward and waves with the right hand"
    report: dict = {"threads": args.threads, "repeats": args.repeats, "prompt": prompt, "latency_s": {}}
    generators = {}
    for runtime in runtimes:
        started = time.perf_counter()
        generator = load_text_to_motion(args.weights, runtime=runtime)
        if runtime == "ort":
            generator._ort.__init__(generator._ort.folder, args.threads)
            report["onnx_max_abs_diff"] = generator._ort.parity
        generator.generate(prompt, seconds=2.0)  # warm-up (+ sentence embedding)
        report.setdefault("load_s", {})[runtime] = round(time.perf_counter() - started, 3)
        generators[runtime] = generator
        for seconds in (4.0, 20.0):
            for batch in (1, 8):
                times = []
                for r in range(args.repeats):
                    t0 = time.perf_counter()
                    generator.generate(prompt, seconds=seconds, samples=batch, seed=r)
                    times.append(time.perf_counter() - t0)
                report["latency_s"][f"{runtime}/{seconds:g}s/batch{batch}"] = round(statistics.median(times), 4)
    if "torch" in generators and "ort" in generators:
        report["ort_vs_torch"] = {k.split("/", 1)[1]: round(report["latency_s"][k] / report["latency_s"][
            "torch/" + k.split("/", 1)[1]], 3) for k in report["latency_s"] if k.startswith("ort/")}  # fmt: skip
    generator = generators.get("torch") or next(iter(generators.values()))
    long = generator.generate(prompt, seconds=20.0, seed=0)[0]
    timeline = [TimelineSegment("a person walks forward", 0, 4), TimelineSegment("a person waves the right hand", 4, 8),
                TimelineSegment("a person bows", 8, 12)]  # fmt: skip
    tl = generator.generate(timeline, seed=0)[0]
    report["seams"] = {
        "20s_window_joins": round(seam_ratio(long.positions, _joins(generator, 100, [0.0])), 3),
        "timeline_3_prompts": round(seam_ratio(tl.positions, _joins(generator, 60, [0.0, 4.0, 8.0])), 3),
        "rule": "max joint speed at joins / the clip's own 99th percentile (<= 1: no seam)",
    }
    if "torch" in generators:
        report["realtime_factor_4s_torch"] = round(4.0 / report["latency_s"]["torch/4s/batch1"], 2)
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report["latency_s"].items():
            print(f"{k:24s} {v * 1000:8.1f} ms")
    return 0
