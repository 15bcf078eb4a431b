"""The search benchmark's measurements on a small synthesised library (timings are reported, never asserted), its
augmentation noise, and the HNSW index's query effort."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend.library.ann import EF_MAX, EF_MIN, HnswIndex, adaptive_ef
from backend.library.bench import augmentation_noise, neighbour_differences, participation_ratio, run_benchmark
from tests.backend.conftest_library import *  # noqa: F401,F403


def test_benchmark_reports_latency_and_recall(small_bvh_tree, feature_embedder):
    result = run_benchmark(feature_embedder, [small_bvh_tree], sizes=[100, 2000], queries=30, seed=1)
    json.dumps(result)
    assert result["setup"]["real_clips"] == 27 and result["backend"] == "sqlite"
    assert result["setup"]["noise_model"] == "neighbour"
    assert [s["clips"] for s in result["sizes"]] == [100, 2000]
    for size in result["sizes"]:
        for mode in ("exact", "ann"):
            for kind in ("text_query", "vector_only"):
                timing = size[mode][kind]
                assert 0 < timing["p50_ms"] <= timing["p95_ms"] <= timing["p99_ms"]
        assert 0.9 <= size["ann_recall_at_10"] <= 1.0  # HNSW finds almost all of the exact top 10
        assert size["ann_ef"] == adaptive_ef(10, size["clips"])
        assert size["exact_score_gap_k_to_k1_median"] >= 0
    with pytest.raises(ValueError, match="increasing"):
        run_benchmark(feature_embedder, [small_bvh_tree], sizes=[2000, 100])
    with pytest.raises(ValueError, match="smallest size"):
        run_benchmark(feature_embedder, [small_bvh_tree], sizes=[10])
    with pytest.raises(ValueError, match="noise model"):
        run_benchmark(feature_embedder, [small_bvh_tree], sizes=[100], noise_model="uniform")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_augmentation_noise_scale_and_directions():
    rng = np.random.default_rng(0)
    # "real clips" varying in a 6-d subspace of a 64-d space
    basis = np.linalg.qr(rng.normal(size=(64, 6)))[0].T
    base = _unit(rng.normal(size=(40, 6)) @ basis + 3 * basis[0])
    for model in ("isotropic", "neighbour"):
        noise = augmentation_noise(base, 4000, 0.2, rng, model)
        assert noise.shape == (4000, 64) and noise.dtype == np.float32
        assert np.sqrt(np.mean(np.sum(noise**2, axis=1))) == pytest.approx(0.2, rel=0.05)
    neighbour = augmentation_noise(base, 4000, 0.2, rng, "neighbour")
    differences = neighbour_differences(base)
    assert differences.shape == (2 * 40 * 5, 64)
    # neighbour noise lies in the span of the real neighbour differences; isotropic noise does not
    span = np.linalg.svd(differences, full_matrices=False)[2][:6]
    off_span = neighbour - (neighbour @ span.T) @ span
    assert np.abs(off_span).max() < 1e-4
    isotropic = augmentation_noise(base, 4000, 1, rng, "isotropic")
    assert participation_ratio(neighbour) <= 6.5 and participation_ratio(isotropic) > 50
    with pytest.raises(ValueError, match="noise model"):
        augmentation_noise(base, 10, 0.2, rng, "uniform")


def test_adaptive_ef_grows_with_the_index_within_bounds():
    assert adaptive_ef(10, 100) == EF_MIN and adaptive_ef(10, 100_000) == 1000 and adaptive_ef(10, 10**7) == EF_MAX
    assert adaptive_ef(EF_MAX + 5, 10**7) == EF_MAX + 5  # never below k
    sizes = [1, 1000, 10_000, 50_000, 100_000, 500_000]
    efs = [adaptive_ef(10, n) for n in sizes]
    assert efs == sorted(efs)


def test_hnsw_recall_on_clustered_vectors_with_far_queries(tmp_path):
    """Many variants of few clips (the hard case of clip libraries, as the benchmark builds it: mixed pairwise plus
    noise) queried from far away, as text is."""
    rng = np.random.default_rng(0)
    dim, centres, copies = 64, 40, 150
    centre = _unit(rng.normal(size=(centres, dim)) + 2.0)
    main, other = np.repeat(np.arange(centres), copies), rng.integers(0, centres, centres * copies)
    t = rng.uniform(0, 0.3, (centres * copies, 1))
    vectors = _unit((1 - t) * centre[main] + t * centre[other] + rng.normal(0, 0.02, (centres * copies, dim)))
    ids = np.arange(len(vectors), dtype=np.int64) + 1
    index = HnswIndex(tmp_path / "lib.hnsw", dim)
    assert index.sync(ids, vectors) == len(ids)
    assert index.ef(10) == adaptive_ef(10, len(ids))
    queries = _unit(rng.normal(size=(60, dim)))  # best cosine to any clip ~0.2: far from all of them
    fixed = HnswIndex(tmp_path / "lib.hnsw", dim, ef_search=10)
    assert fixed.sync(ids, vectors) == 0 and fixed.ef(10) == 10 and fixed.ef(40) == 40  # loaded, not rebuilt
    recall = {"adaptive": [], "ef 10": []}
    for query in queries:
        exact = set((ids[np.argsort(-(vectors @ query))[:10]]).tolist())
        for name, ann in (("adaptive", index), ("ef 10", fixed)):
            hits, scores = ann.query(query, 10)
            assert np.all(np.diff(scores) <= 1e-6)
            recall[name].append(len(exact & set(hits.tolist())) / 10)
    assert np.mean(recall["adaptive"]) >= 0.95
    assert np.mean(recall["ef 10"]) < np.mean(recall["adaptive"])  # the effort is what finds them
