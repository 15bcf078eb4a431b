"""Search on both stores: text and motion queries, filters, exact vs ANN, lazy embedding, the search job and the
``baton search`` command, and the real ``models.retrieval`` encoders across skeletons (Bandai 22 joints, CMU 31)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.library import SearchFilters, open_library
from backend.library.embedding import RetrievalModelEmbedder
from backend.library.importer import import_paths
from backend.library.jobs import run_search
from models.motion.bvh import load_bvh
from tests.backend.conftest_library import *  # noqa: F401,F403

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def library(library_url, small_bvh_tree, feature_embedder):
    """27 real clips (24 Bandai, 3 CMU) imported WITHOUT embeddings; the embedder is attached afterwards."""
    with open_library(library_url) as lib:
        import_paths(lib, [small_bvh_tree])
        lib.set_embedder(feature_embedder)
        yield lib


def test_text_search_embeds_lazily_and_ranks(library, feature_embedder):
    assert library.stats()["embeddings"] == {}
    hits = library.search_text("waves goodbye like a giant", k=5)
    assert library.stats()["embeddings"][feature_embedder.model_key]["clips"] == 27
    assert hits[0].name == "dataset-1_bye_giant_001"
    assert hits[0].caption == "a person waves goodbye with one hand like a giant"
    assert len(hits) == 5 and all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    exact = library.search_text("waves goodbye like a giant", k=5, exact=True)
    np.testing.assert_allclose([h.score for h in exact], [h.score for h in hits], atol=1e-4)
    # The index returns the exact top 5. Clips whose scores tie exactly (this library has four at rank 4-7) may
    # come back in any order, so ids must agree above the 5th score and, at it, come from that tie group.
    cut = exact[-1].score
    assert [h.clip_id for h in exact if h.score > cut + 1e-4] == [h.clip_id for h in hits if h.score > cut + 1e-4]
    tied = {h.clip_id for h in library.search_text("waves goodbye like a giant", k=27, exact=True)
            if abs(h.score - cut) <= 1e-4}
    assert {h.clip_id for h in hits if abs(h.score - cut) <= 1e-4} <= tied
    with pytest.raises(ValueError, match="non-empty"):
        library.search_text("  ")
    with pytest.raises(ValueError, match="k must be"):
        library.search_text("walk", k=0)


@pytest.mark.parametrize("exact", [True, False])
def test_filters_hold_for_every_hit(library, exact):
    cmu = library.search_text("walk", k=10, filters=SearchFilters(skeleton="cmu31"), exact=exact)
    assert sorted(h.name for h in cmu) == ["131_01", "131_02", "131_03"]
    free = library.search_text("walk", k=30, filters=SearchFilters(commercial_only=True), exact=exact)
    assert {h.skeleton for h in free} == {"cmu31"}
    nc = library.search_text("walk", k=30, filters=SearchFilters(license="CC BY-NC 4.0"), exact=exact)
    assert len(nc) == 24 and {h.license for h in nc} == {"CC BY-NC 4.0"}
    window = SearchFilters(min_duration_s=3.0, max_duration_s=6.0)
    timed = library.search_text("walk", k=30, filters=window, exact=exact)
    expected = [c for c in library.clips() if 3.0 <= c.duration_s <= 6.0]
    assert 0 < len(timed) == len(expected) < 27
    assert all(3.0 <= h.duration_s <= 6.0 for h in timed)
    assert library.search_text("walk", filters=SearchFilters(skeleton="kit21"), exact=exact) == []
    with pytest.raises(ValueError, match="larger than"):
        SearchFilters(min_duration_s=5, max_duration_s=1)
    with pytest.raises(ValueError, match="unknown search filter"):
        SearchFilters.from_dict({"colour": "red"})


def test_motion_search_by_file_and_by_clip(library, shared_data):
    source = load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_03.bvh")  # 120 fps original
    hits = library.search_motion(source, k=3)
    assert hits[0].name == "131_03" and hits[0].score > hits[1].score
    by_id = library.search_motion(hits[0].clip_id, k=3)
    assert hits[0].clip_id not in [h.clip_id for h in by_id] and len(by_id) == 3
    with pytest.raises(TypeError, match="Motion or a clip id"):
        library.search_motion("131_03.bvh")
    described = library.describe_motion(library.get_motion(hits[0].clip_id), k=3)  # motion -> text
    assert described[0][0] == "Start Hop Stop" and len(described) == 3
    assert all(a[1] >= b[1] for a, b in zip(described, described[1:], strict=False))


def test_search_job_requests(library, shared_data):
    result = run_search({"text": "walks like a street thug", "k": 3, "filters": {"skeleton": "bandai22"}}, library)
    assert result["query_kind"] == "text" and len(result["hits"]) == 3
    assert result["hits"][0]["name"].startswith("dataset-1_walk_chimpira")
    json.dumps(result)
    motion = library.get_motion(result["hits"][0]["clip_id"])
    import base64

    wire = {"dtype": "float32", "shape": list(motion.positions.shape),
            "data": base64.b64encode(motion.positions.astype("<f4").tobytes()).decode()}  # fmt: skip
    request = {"motion": {"skeleton": motion.skeleton.to_dict(), "fps": motion.fps, "positions": wire}, "k": 1}
    assert run_search(request, library)["hits"][0]["clip_id"] == result["hits"][0]["clip_id"]
    path = shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh"
    assert run_search({"motion_path": str(path), "k": 1}, library)["hits"][0]["name"] == "131_01"
    for bad in ({}, {"text": "x", "clip_id": 1}, {"text": "x", "k": 0}, {"text": "x", "filters": {"size": 1}}):
        with pytest.raises(ValueError):
            run_search(bad, library)


@pytest.fixture(scope="module")
def retrieval_run(tmp_path_factory):
    """A small, randomly initialised model from ``models.retrieval`` saved as a run folder (the encoders, not their
    training, are under test here; training and R@k live in the retrieval tests)."""
    import torch

    from models.retrieval.encoders import TMRConfig
    from models.retrieval.model import RetrievalConfig, RetrievalModel

    torch.manual_seed(0)
    model = RetrievalModel(RetrievalConfig(encoder="tmr", tmr=TMRConfig(d_model=64, layers=1, heads=2, feedforward=128,
                                                                       max_frames=120)))  # fmt: skip
    return model.save(tmp_path_factory.mktemp("retrieval") / "run")


def test_real_encoders_search_bandai_and_cmu_with_one_model(library_url, small_bvh_tree, shared_data, retrieval_run):
    from models.retrieval.model import load_retrieval_model

    embedder = RetrievalModelEmbedder(load_retrieval_model(retrieval_run), retrieval_run)
    with open_library(library_url, embedder=embedder) as library:
        report = import_paths(library, [small_bvh_tree], embedder=embedder)
        assert report.embedded_with == embedder.model_key and report.imported == 27
        ids, vectors = library.store.embeddings(embedder.model_key)
        assert vectors.shape == (27, embedder.dim) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
        hits = library.search_text("a person hops and stops", k=27, exact=True)
        assert {h.skeleton for h in hits} == {"bandai22", "cmu31"}
        for name, folder in (("131_02", "cmu_mocap_subject131_bvh"), ("dataset-1_bye_happy_001", None)):
            path = shared_data / (folder or "bandai_namco_motion_dataset1/data") / f"{name}.bvh"
            assert library.search_motion(load_bvh(path), k=1, exact=True)[0].name == name


def test_search_command_json(small_bvh_tree, retrieval_run, shared_data, tmp_path):
    library_url = str(tmp_path / "cli.sqlite")  # the stores are covered above; this checks the command line
    env = {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    base = [sys.executable, "-m", "backend.cli"]
    done = subprocess.run(base + ["library", "import", str(small_bvh_tree / "cmu"), "--db", library_url, "--json"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["imported"] == 3
    # a motion file given as the query is searched by motion (`--motion FILE` is the same through the module)
    for query in (["a person walks"], [str(shared_data / "cmu_mocap_subject131_bvh" / "131_02.bvh")]):
        command = base + ["search", *query, "-k", "2", "--db", library_url, "--model", str(retrieval_run), "--json"]
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert len(result["hits"]) == 2 and result["model"].startswith("run@")
        assert result["query_kind"] == ("text" if len(query[0]) < 20 else "motion_path")
    both = ["a person walks", "--motion", str(shared_data / "cmu_mocap_subject131_bvh" / "131_02.bvh")]
    done = subprocess.run(base + ["search", *both, "--db", library_url, "--model", str(retrieval_run)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)  # fmt: skip
    assert done.returncode == 1 and "either a text query" in done.stderr
    stats = subprocess.run(base + ["library", "stats", "--db", library_url, "--json"], capture_output=True, text=True,
                           env=env, cwd=REPO, timeout=300)  # fmt: skip
    assert json.loads(stats.stdout)["clips"] == 3


def test_the_store_ranks_and_the_library_asks_it_the_same_way_on_every_store(library, feature_embedder):
    """One door: ``Library`` searches through ``Store.search`` whatever the store (no branching on its kind)."""
    calls = []
    search = library.store.search

    def recording(*args):
        calls.append(args)
        return search(*args)

    library.store.search = recording
    hits = library.search_text("walks like a street thug", k=4, filters=SearchFilters(skeleton="bandai22"))
    assert len(calls) == 1 and len(hits) == 4
    model_key, query, k, filters, exact = calls[0]
    assert model_key == feature_embedder.model_key and query.shape == (feature_embedder.dim,) and k == 4
    assert filters.skeleton == "bandai22" and exact is False
    for exact in (True, False):
        pairs = search(model_key, query, 4, filters, exact)
        assert [i for i, _ in pairs] == [h.clip_id for h in library.search_text(
            "walks like a street thug", k=4, filters=SearchFilters(skeleton="bandai22"), exact=True)]  # fmt: skip
        assert all(a[1] >= b[1] for a, b in zip(pairs, pairs[1:], strict=False))
    assert search("no-such-model@0", query, 4, None, True) == []
    with pytest.raises(ValueError, match="dimensions|-d embeddings"):
        search(model_key, np.ones(feature_embedder.dim + 1, np.float32), 4, None, True)


def test_a_missing_library_is_reported_not_created(library_url, feature_embedder):
    path = Path(library_url[len("sqlite:///") :]) if library_url.startswith("sqlite:///") else None
    with pytest.raises(FileNotFoundError, match="no motion library"):
        open_library(library_url, feature_embedder, create=False)
    assert path is None or not path.exists()
    open_library(library_url).close()  # what an import does: create it (empty)
    with open_library(library_url, feature_embedder, create=False) as library:  # it exists now: empty, no hits
        assert library.search_text("a person walks", k=3) == []


def test_search_and_stats_commands_say_that_the_library_is_missing(retrieval_run, tmp_path):
    missing = tmp_path / "nowhere" / "missing.sqlite"
    env = {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    for command in (["search", "a person walks", "--model", str(retrieval_run)], ["library", "stats"]):
        done = subprocess.run([sys.executable, "-m", "backend.cli", *command, "--db", str(missing), "--json"],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=300)  # fmt: skip
        assert done.returncode == 1 and done.stdout == ""
        assert f"no motion library at sqlite:///{missing}" in done.stderr and "baton library import" in done.stderr
    assert not missing.parent.exists()
