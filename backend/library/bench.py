"""``baton bench search``: search latency and ANN recall at growing library sizes.

The library is synthesised from real clips: the real clips (default: Bandai Namco dataset-1 and CMU 131 from the
shared data) are embedded with the retrieval model's motion encoder, and each synthetic clip is a real embedding
augmented in the way real libraries vary (a random mix ``(1 - t) a + t b`` of two real clips with ``t ~ U(0, 0.3)``
plus isotropic Gaussian noise whose expected norm is ``noise`` times the median distance between a real clip and its
nearest real neighbour, re-normalised), with the metadata of its main source clip
(skeleton, license, caption) and a jittered duration. Each synthetic clip stores a short real motion so every hit
can be loaded.

For each size: query latency p50/p99 (ms) of exact search and of the ANN index, for text queries end to end (text
encoder + search + fetching the hits, model already loaded) and for the vector search alone; ANN recall@10 against
exact search (mean fraction of the exact top 10 found by ANN) over the same text queries and over "more like this"
motion queries (perturbed real clip embeddings); the ANN speed-up (exact p50 / ANN p50) is the baseline ratio
measured in the same run. The text encoder's own latency is reported once (it does not depend on the size).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backend.library.codec import encode_motion
from backend.library.embedding import Embedder, normalise
from backend.library.library import Library
from backend.library.types import NewClip

DEFAULT_SIZES = (1_000, 10_000, 100_000)


def _percentiles(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples) * 1e3
    return {"p50_ms": round(float(np.percentile(values, 50)), 3), "p99_ms": round(float(np.percentile(values, 99)), 3),
            "mean_ms": round(float(values.mean()), 3)}  # fmt: skip


def neighbour_distance(vectors: np.ndarray) -> float:
    """Median Euclidean distance between each unit vector ``(N, D)`` and its nearest other vector."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.median(np.sqrt(np.maximum(0.0, 2.0 - 2.0 * similarity.max(axis=1)))))


def synthesise(
    library: Library, embedder: Embedder, base_ids: np.ndarray, base_vectors: np.ndarray, count: int,
    rng: np.random.Generator, noise: float = 0.5, batch: int = 5000,
) -> None:  # fmt: skip
    """Add ``count`` synthetic clips augmented from ``base_vectors`` (module docstring) to ``library``."""
    sigma = noise * neighbour_distance(base_vectors)
    records = {r.clip_id: r for r in library.store.clips(base_ids.tolist())}
    motions = {i: library.get_motion(int(i)) for i in base_ids.tolist()}
    blobs = {i: encode_motion(m.positions[:8], m.fps, m.skeleton) for i, m in motions.items()}
    start = library.stats()["clips"]
    dim = base_vectors.shape[1]
    for offset in range(0, count, batch):
        size = min(batch, count - offset)
        a, b = rng.integers(0, len(base_ids), size), rng.integers(0, len(base_ids), size)
        t = rng.uniform(0.0, 0.3, (size, 1)).astype(np.float32)
        jitter = rng.normal(0.0, sigma / np.sqrt(dim), (size, dim)).astype(np.float32)
        vectors = normalise((1 - t) * base_vectors[a] + t * base_vectors[b] + jitter)
        clips = []
        for row in range(size):
            source = records[int(base_ids[a[row]])]
            number = start + offset + row
            clips.append(NewClip(
                content_hash=f"synthetic-{number}", name=f"synthetic-{number} ({source.name})",
                source_path=source.source_path, source_kind="synthetic", skeleton=source.skeleton, fps=source.fps,
                frames=max(1, int(source.frames * rng.uniform(0.7, 1.3))), license=source.license,
                captions=list(source.captions[:1]), tags=["synthetic"], motion_blob=blobs[int(source.clip_id)],
                embeddings={embedder.model_key: vectors[row]},
            ))  # fmt: skip
        library.store.add_clips(clips)


def run_benchmark(
    embedder: Embedder,
    clip_paths: Sequence[str | Path],
    sizes: Sequence[int] = DEFAULT_SIZES,
    queries: int = 200,
    k: int = 10,
    url: str | None = None,
    seed: int = 0,
) -> dict:
    """Build a library growing through ``sizes`` and time searches at each size (module docstring).

    Args:
        embedder: the retrieval model (loaded once; its load time is not counted).
        clip_paths: real motion files / folders the synthetic clips are augmented from.
        url: an EMPTY library to fill (default: a temporary SQLite file); PostgreSQL URLs benchmark pgvector.

    Raises:
        ValueError: for sizes smaller than the number of real clips or not increasing, or a non-empty library.
    """
    from backend.library import open_library
    from backend.library.importer import ImportOptions, import_paths

    sizes = [int(s) for s in sizes]
    if sorted(sizes) != sizes or len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes must be increasing, got {sizes}")
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="baton-bench-search-") as tmp:
        library = open_library(url or str(Path(tmp) / "bench.sqlite"), embedder=embedder)
        try:
            if library.stats()["clips"]:
                raise ValueError(f"the benchmark needs an empty library, {library.url} has clips")
            started = time.perf_counter()
            report = import_paths(library, clip_paths, ImportOptions(thumbnails=False), embedder=embedder)
            base_ids, base_vectors = library.store.embeddings(embedder.model_key)
            if len(base_ids) == 0 or sizes[0] < len(base_ids):
                raise ValueError(f"{len(base_ids)} real clips; the smallest size must be at least that")
            setup = {"real_clips": int(len(base_ids)), "import_and_embed_s": round(time.perf_counter() - started, 3),
                     "failed": report.failed}  # fmt: skip
            texts = sorted({c for r in library.clips() for c in r.captions}) or ["a person walks"]
            query_texts = [texts[i] for i in rng.integers(0, len(texts), queries)]
            query_vectors = embedder.embed_text(query_texts)
            encoder_times = []
            for text in query_texts:
                t0 = time.perf_counter()
                embedder.embed_text([text])
                encoder_times.append(time.perf_counter() - t0)
            setup["text_encoder_only"] = _percentiles(encoder_times)
            # "more like this" queries: real clip embeddings, slightly perturbed (in-distribution for the index)
            picks = rng.integers(0, len(base_ids), queries)
            scale = 0.5 * neighbour_distance(base_vectors) / np.sqrt(base_vectors.shape[1])
            motion_queries = normalise(base_vectors[picks] + rng.normal(0, scale, base_vectors[picks].shape))
            setup["real_clip_neighbour_distance"] = round(neighbour_distance(base_vectors), 4)
            setup["real_clip_mean_cosine"] = round(float((base_vectors @ base_vectors.T).mean()), 4)
            results = []
            for size in sizes:
                started = time.perf_counter()
                synthesise(library, embedder, base_ids, base_vectors, size - library.stats()["clips"], rng)
                fill_s = time.perf_counter() - started
                started = time.perf_counter()
                library.search_text(query_texts[0], k)  # loads the vectors and builds / syncs the ANN index
                index_s = time.perf_counter() - started
                library.search_text(query_texts[0], k, exact=True)
                entry: dict = {"clips": size, "fill_s": round(fill_s, 3), "ann_build_or_sync_s": round(index_s, 3)}
                found = {}
                for exact in (True, False):
                    name = "exact" if exact else "ann"
                    text_times, vector_times, found[name] = [], [], []
                    for text, vector in zip(query_texts, query_vectors, strict=True):
                        t0 = time.perf_counter()
                        library.search_text(text, k, exact=exact)
                        t1 = time.perf_counter()
                        hits = library.search_embedding(vector, k, model_key=embedder.model_key, exact=exact)
                        t2 = time.perf_counter()
                        text_times.append(t1 - t0)
                        vector_times.append(t2 - t1)
                        found[name].append({h.clip_id for h in hits})
                    entry[name] = {"text_query": _percentiles(text_times), "vector_only": _percentiles(vector_times)}
                recall = [len(a & e) / max(1, len(e)) for a, e in zip(found["ann"], found["exact"], strict=True)]
                entry["ann_recall_at_10"] = round(float(np.mean(recall)), 4)
                motion_recall = []
                for vector in motion_queries:
                    exact_ids = {h.clip_id for h in library.search_embedding(vector, k, model_key=embedder.model_key,
                                                                             exact=True)}  # fmt: skip
                    ann_ids = {h.clip_id for h in library.search_embedding(vector, k, model_key=embedder.model_key)}
                    motion_recall.append(len(ann_ids & exact_ids) / max(1, len(exact_ids)))
                entry["ann_recall_at_10_motion_queries"] = round(float(np.mean(motion_recall)), 4)
                entry["ann_speedup_vector_p50"] = round(
                    entry["exact"]["vector_only"]["p50_ms"] / max(entry["ann"]["vector_only"]["p50_ms"], 1e-6), 2
                )
                results.append(entry)
            return {"benchmark": "search", "backend": library.store.kind, "model": embedder.model_key, "k": k,
                    "queries": queries, "setup": setup, "sizes": results}  # fmt: skip
        finally:
            library.close()
