"""Benchmark the local backend: round-trip overhead of an empty job, and concurrent search throughput through the
server compared with calling the search pipeline in-process (a ratio measured in the same run).

The server is the real one (``baton serve`` in a child process on a free loopback port); the client is the add-on's
standard-library client. The search library is a temporary SQLite library of the CMU and Bandai Namco (dataset 1)
BVH clips from ../shared/data, embedded by a retrieval model built from its default config with a fixed seed
(untrained weights rank arbitrarily but cost exactly what trained ones cost; pass --retrieval-model to use yours).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger("baton.bench.serve")

QUERIES = (
    "a person walks forward", "someone waves their right hand", "a person jumps in place", "a person runs in a circle",
    "a man bows politely", "someone kicks with the left leg", "a person dances happily", "a tired person walks slowly",
)  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=60, help="empty jobs for the round-trip timing (default 60)")
    parser.add_argument("--searches", type=int, default=48, help="search queries per throughput run (default 48)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients for search (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating in-process / server rounds (default 3)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads, the same in-process and in the server (default 1)")
    parser.add_argument("--data", default=None, help="shared data folder (default ../shared/data beside the repo)")
    parser.add_argument("--retrieval-model", default=None, help="trained retrieval model run folder (optional)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _ms(seconds: list[float]) -> dict:
    median, p95 = statistics.median(seconds), _percentile(seconds, 0.95)
    return {"median_ms": round(median * 1e3, 3), "p95_ms": round(p95 * 1e3, 3)}


def build_search_fixture(tmp: Path, data: Path, retrieval_model: str | None) -> tuple[str, str, int]:
    """A temporary SQLite library of real BVH clips and the retrieval model that embedded it.

    Returns ``(library_url, model_dir, number_of_clips)``.
    """
    import torch

    from backend.library import import_paths, load_embedder, open_library
    from models.retrieval.model import RetrievalConfig, RetrievalModel

    model_dir = retrieval_model
    if model_dir is None:
        torch.manual_seed(0)
        model_dir = str(RetrievalModel(RetrievalConfig()).save(tmp / "retrieval-model"))
    url = f"sqlite:///{tmp / 'library.sqlite'}"
    sources = [data / "cmu_mocap_subject131_bvh", data / "bandai_namco_motion_dataset1"]
    with open_library(url, load_embedder(model_dir)) as library:
        import_paths(library, [s for s in sources if s.exists()])
        clips = int(library.stats()["clips"])
    return url, model_dir, clips


def run(args: argparse.Namespace) -> int:
    from backend.jobs import JobContext
    from backend.model_registry import ModelRegistry
    from backend.pipelines import SearchParams, default_model_specs, run_search
    from backend.server_process import REPO, start_server
    from backend.settings import Settings
    from blender_addon.client import BatonClient
    from models.progress import Progress

    if min(args.jobs, args.searches, args.concurrency, args.rounds, args.torch_threads) < 1:
        raise ValueError("--jobs, --searches, --concurrency, --rounds and --torch-threads must be at least 1")
    data = Path(args.data) if args.data else REPO.parent / "shared" / "data"
    if not data.is_dir():
        raise ValueError(f"shared data folder not found: {data}")
    report: dict = {"jobs": args.jobs, "searches": args.searches, "concurrency": args.concurrency,
                    "rounds": args.rounds, "torch_threads": args.torch_threads}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="baton-bench-serve-") as name:
        tmp = Path(name)
        log.info("building the search library")
        url, model_dir, clips = build_search_fixture(tmp, data, args.retrieval_model)
        queries = [QUERIES[i % len(QUERIES)] for i in range(args.searches)]
        # the in-process baseline runs the same search pipeline the server runs, with the same concurrency
        settings = Settings(token="b" * 32, library_url=url, retrieval_model=model_dir, work_dir=tmp / "work")
        registry = ModelRegistry(settings, default_model_specs())  # loads the library as the server does

        def in_process(text: str) -> int:
            context = JobContext("bench", Progress(), settings, registry)
            return len(run_search(SearchParams({"text": text, "k": 10}), context)["hits"])

        import torch

        torch.set_num_threads(args.torch_threads)
        log.info("starting the server")
        server = start_server(tmp / "server", "--library", url, "--retrieval-model", model_dir, "--workers",
                              str(args.concurrency), "--torch-threads", str(args.torch_threads))  # fmt: skip
        try:
            client = BatonClient(server.url, token=server.token, timeout=120)
            health, echo = [], []
            for i in range(args.jobs):  # interleaved, so load drift on a shared machine hits both alike
                t0 = time.perf_counter()
                client.health()
                t1 = time.perf_counter()
                answer = client.wait(client.submit_echo(str(i)), timeout=60, poll_interval=5.0)
                echo.append(time.perf_counter() - t1)
                health.append(t1 - t0)
                if answer["message"] != str(i):
                    raise RuntimeError(f"echo job answered {answer!r}, expected {str(i)!r}")

            def remote(text: str) -> int:
                own = BatonClient(server.url, token=server.token, timeout=120)
                return len(own.wait(own.submit_search(text, k=10), timeout=300, poll_interval=5.0)["hits"])

            def timed(call) -> tuple[float, list[int]]:
                start = time.perf_counter()
                with ThreadPoolExecutor(args.concurrency) as pool:
                    counts = list(pool.map(call, queries))
                return args.searches / (time.perf_counter() - start), counts

            in_process(queries[0])  # warm-ups: load the library and the sentence encoder on both sides
            remote(queries[0])
            local_rates, remote_rates = [], []
            for _ in range(args.rounds):  # alternating rounds; medians below
                rate, hits_local = timed(in_process)
                local_rates.append(rate)
                rate, hits_remote = timed(remote)
                remote_rates.append(rate)
                if hits_remote != hits_local:
                    raise RuntimeError(f"server and in-process searches disagree: {hits_remote} vs {hits_local}")
        finally:
            server.stop()
            registry.release()
    overhead = statistics.median(echo) - statistics.median(health)
    report["empty_job"] = {**_ms(echo), "health_ms": _ms(health)["median_ms"],
                           "overhead_over_health_ms": round(overhead * 1e3, 3)}  # fmt: skip
    local, remote_rate = statistics.median(local_rates), statistics.median(remote_rates)
    report["search"] = {
        "library_clips": clips,
        "server_per_s": round(remote_rate, 3),
        "in_process_per_s": round(local, 3),
        "ratio_server_vs_in_process": round(remote_rate / local, 4),
        "retrieval_model": "given" if args.retrieval_model else "default config, seed 0 (untrained)",
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0
