"""The search benchmark's measurements on a small synthesised library (timings are reported, never asserted)."""

from __future__ import annotations

import json

import pytest

from backend.library.bench import run_benchmark
from tests.backend.conftest_library import *  # noqa: F401,F403


def test_benchmark_reports_latency_and_recall(small_bvh_tree, feature_embedder):
    result = run_benchmark(feature_embedder, [small_bvh_tree], sizes=[100, 2000], queries=30, seed=1)
    json.dumps(result)
    assert result["setup"]["real_clips"] == 27 and result["backend"] == "sqlite"
    assert [s["clips"] for s in result["sizes"]] == [100, 2000]
    for size in result["sizes"]:
        for mode in ("exact", "ann"):
            for kind in ("text_query", "vector_only"):
                timing = size[mode][kind]
                assert 0 < timing["p50_ms"] <= timing["p99_ms"]
        assert 0.9 <= size["ann_recall_at_10"] <= 1.0  # HNSW finds almost all of the exact top 10
    with pytest.raises(ValueError, match="increasing"):
        run_benchmark(feature_embedder, [small_bvh_tree], sizes=[2000, 100])
    with pytest.raises(ValueError, match="smallest size"):
        run_benchmark(feature_embedder, [small_bvh_tree], sizes=[10])
