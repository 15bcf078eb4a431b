"""Library storage on SQLite and PostgreSQL + pgvector: import, captions, licenses, idempotency, stats, atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend.library import ImportOptions, open_library
from backend.library.importer import import_paths
from backend.library.sources import AnnotationSources
from backend.library.types import NewClip
from models.motion.bvh import load_bvh
from tests.backend.conftest_library import *  # noqa: F401,F403


@pytest.fixture
def annotations(shared_data: Path) -> AnnotationSources:
    return AnnotationSources(
        cmu_index=shared_data / "cmu_mocap_index" / "cmu_mocap_clip_descriptions.csv",
        kitml_annotations=shared_data / "tmr_text_motion_annotations" / "kitml" / "annotations.json",
    )


def test_import_captions_licenses_and_motion(library_url, small_bvh_tree, shared_data, annotations):
    with open_library(library_url) as library:
        report = import_paths(
            library, [small_bvh_tree, shared_data / "humanml3d_sample"], ImportOptions(annotations=annotations)
        )
        assert report.failed == []
        assert report.files == report.imported == 24 + 3 + 1
        by_name = {c.name: c for c in library.clips()}

        bye = by_name["dataset-1_bye_giant_001"]
        assert bye.captions == ("a person waves goodbye with one hand like a giant",)
        assert set(bye.tags) >= {"content:bye", "style:giant", "bandai-namco-1"}
        assert bye.license == "CC BY-NC 4.0" and bye.skeleton == "bandai22" and bye.fps == 30.0

        hop = by_name["131_03"]  # CMU index description + the KIT-ML crowd text for the same trial
        assert hop.captions == ("Start Hop Stop", "A person is dancing and jumping around.")
        assert hop.skeleton == "cmu31" and hop.license.startswith("CMU")
        assert hop.fps == 30.0 and hop.frames == int(np.ceil(1102 / 4))  # 120 fps decimated by 4

        h3d = by_name["humanml3d:012314"]
        assert h3d.skeleton == "smpl22" and h3d.frames == 170 and h3d.fps == 20.0
        assert "non-commercial" in h3d.license

        # stored positions match the source file within float16 precision (root-relative storage)
        source = load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_03.bvh")
        stored = library.get_motion(hop.clip_id)
        assert stored.positions.shape == (hop.frames, 31, 3)
        np.testing.assert_allclose(stored.positions, source.positions[::4], atol=2e-3)
        assert stored.metadata["captions"][0] == "Start Hop Stop"
        assert library.thumbnail(hop.clip_id).startswith(b"\x89PNG\r\n\x1a\n")


def test_reimport_is_idempotent_and_stats_add_up(library_url, small_bvh_tree):
    with open_library(library_url) as library:
        first = import_paths(library, [small_bvh_tree], ImportOptions(workers=2, batch_size=8))  # parallel parsing
        before = library.stats()
        again = import_paths(library, [small_bvh_tree, small_bvh_tree / "cmu"])
        after = library.stats()
    assert first.imported == 27 and again.imported == 0 and again.skipped_existing == 27
    assert before == after
    assert after["clips"] == 27 and after["by_skeleton"] == {"bandai22": 24, "cmu31": 3}
    assert after["by_license"]["CC BY-NC 4.0"] == 24 and after["captioned_clips"] == 27
    assert after["thumbnails"] == 27 and after["storage_bytes"] > 0
    assert after["frames"] == sum(c.frames for c in open_library(library_url).clips())
    json.dumps(after)


def test_bad_files_are_reported_and_skipped(library_url, tmp_path, small_bvh_tree):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0\n")
    (bad / "empty.bvh").write_text("")
    (bad / "notes.txt").write_text("not a motion")
    with open_library(library_url) as library:
        report = import_paths(library, [bad, small_bvh_tree / "cmu"])
        assert report.imported == 3 and report.files == 5
        assert sorted(Path(f["path"]).name for f in report.failed) == ["broken.bvh", "empty.bvh"]
        assert library.stats()["clips"] == 3
        with pytest.raises(FileNotFoundError, match="not found"):
            import_paths(library, [tmp_path / "missing"])


def test_a_failing_batch_is_written_not_at_all(library_url):
    def clip(i: int, dim: int) -> NewClip:
        return NewClip(content_hash=f"hash{i}", name=f"c{i}", source_path="/x", source_kind="bvh", skeleton="s",
                       fps=30.0, frames=3, license="MIT", captions=[], tags=[], motion_blob=b"x",
                       embeddings={"m@1": np.ones(dim, np.float32) / np.sqrt(dim)})  # fmt: skip

    with open_library(library_url) as library:
        library.store.add_clips([clip(0, 4)])
        generation = library.store.generation()
        with pytest.raises(ValueError, match="4-d"):  # the second clip's embedding has the wrong size
            library.store.add_clips([clip(1, 4), clip(2, 5)])
        assert library.stats()["clips"] == 1
        assert library.store.existing_hashes(["hash0", "hash1", "hash2"]) == {"hash0"}
        assert library.store.generation() == generation
        with pytest.raises(KeyError):
            library.get_motion(12345)


def test_embeddings_round_trip_per_model(library_url, small_bvh_tree, feature_embedder):
    with open_library(library_url) as library:
        import_paths(library, [small_bvh_tree / "cmu"], embedder=feature_embedder)
        ids, vectors = library.store.embeddings(feature_embedder.model_key)
        assert ids.tolist() == [c.clip_id for c in library.clips()]
        expected = feature_embedder.embed_motion([library.get_motion(int(i)) for i in ids])
        np.testing.assert_allclose(vectors, expected, atol=1e-6)
        assert library.store.ids_missing_embedding(feature_embedder.model_key) == []
        assert library.store.ids_missing_embedding("other@2") == ids.tolist()
        assert library.stats()["embeddings"] == {feature_embedder.model_key: {"dim": 96, "clips": 3}}
        some, some_vectors = library.store.embeddings(feature_embedder.model_key, [int(ids[2]), int(ids[0]), 10**9])
        assert some.tolist() == [ids[0], ids[2]]  # by id; unknown ids are skipped
        np.testing.assert_array_equal(some_vectors, vectors[[0, 2]])
        assert library.store.embeddings(feature_embedder.model_key, [])[0].tolist() == []


def test_open_library_urls(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("BATON_LIBRARY", raising=False)
    with open_library(None) as library:
        assert library.url == f"sqlite:///{tmp_path / 'data' / 'baton' / 'library.sqlite'}"
    with open_library(f"sqlite:///{tmp_path / 'a.sqlite'}") as library:
        assert library.store.path == tmp_path / "a.sqlite"
    with pytest.raises(ValueError, match="unknown library URL"):
        open_library("mysql://localhost/x")
