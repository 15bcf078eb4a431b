"""The shipped default retrieval weights (models/retrieval/weights/default): licensed in their own folder, loaded when
the user has trained no default of their own, and useful with no training step: text search finds waving clips and
CMU walks (31 joints, 120 fps) should find walks among Bandai Namco clips by motion (issue 11, items 3 and 4; the
latter is not met yet and marked as an expected failure).

The gallery is the held-out split of Bandai Namco dataset-1 and dataset-2 (clips the weights never saw in training).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend.library import ImportOptions, import_paths, open_library
from backend.library.embedding import MODEL_ENV, load_embedder
from models.motion.bvh import load_bvh
from models.retrieval.datasets import Clip, assign_split, bandai_labels
from models.retrieval.model import SHIPPED_MODEL_DIR, default_model_dir, installed_model_dir

REPO = Path(__file__).resolve().parents[2]
WAVES = {"wave-right-hand", "wave-left-hand", "wave-both-hands", "bye", "byebye"}


def content_of(name: str) -> str:
    """The Bandai Namco content label in a clip name (``dataset-2_walk_active_024`` -> ``walk``)."""
    match = re.match(r"^dataset-\d+_(.+?)_[^_]+_\d+$", name)
    assert match, name
    return match.group(1)


@pytest.fixture
def no_user_model(tmp_path, monkeypatch):
    """A data folder of our own with no trained default model, and no model named by the environment."""
    monkeypatch.setenv("BATON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(MODEL_ENV, raising=False)
    return tmp_path / "data"


def test_the_shipped_weights_carry_the_data_license_and_a_model_card():
    license_text = (SHIPPED_MODEL_DIR / "LICENSE").read_text()
    assert "Attribution-NonCommercial 4.0 International" in license_text
    assert "Bandai Namco Research Inc." in license_text and "Apache-2.0" in license_text
    card = (SHIPPED_MODEL_DIR / "MODEL_CARD.md").read_text()
    for needed in ("CC BY-NC 4.0", "baton train retrieval", "R@1", "held-out", "131_01"):
        assert needed in card, needed
    assert sum(p.stat().st_size for p in SHIPPED_MODEL_DIR.iterdir()) < 10 * 2**20
    config = json.loads((SHIPPED_MODEL_DIR / "config.json").read_text())
    assert config["training"]["views"] and set(config["training"]["sources"]) == {"bandai1", "bandai2", "cmu131"}


def test_the_shipped_weights_are_the_default_until_the_user_trains_one(no_user_model):
    assert installed_model_dir() == SHIPPED_MODEL_DIR
    shipped = load_embedder()
    assert shipped.model_key.startswith("default@") and shipped.dim == 256
    user = default_model_dir()
    assert user.is_relative_to(no_user_model)
    shutil.copytree(SHIPPED_MODEL_DIR, user)
    assert installed_model_dir() == user and load_embedder().model_key == shipped.model_key  # same weights, same key


@pytest.fixture(scope="module")
def heldout_library(shared_data, bandai_dataset2_dir, tmp_path_factory):
    """A library of the held-out Bandai Namco clips (both data sets) embedded with the shipped weights."""
    labelled = []
    for source, folder in (("bandai1", shared_data / "bandai_namco_motion_dataset1"), ("bandai2", bandai_dataset2_dir)):
        labelled += [(Clip(p.stem, source, c, s), p) for p, c, s in bandai_labels(folder)]
    assign_split([clip for clip, _ in labelled])
    paths = [path for clip, path in labelled if clip.split == "test"]
    assert len(paths) == 434
    url = str(tmp_path_factory.mktemp("heldout") / "library.sqlite")
    embedder = load_embedder(SHIPPED_MODEL_DIR)
    with open_library(url, embedder) as library:
        report = import_paths(library, paths, ImportOptions(thumbnails=False), embedder=embedder)
        assert report.imported == 434 and not report.failed
    return url


def test_text_search_finds_waving_clips_with_no_training_step(heldout_library, no_user_model):
    with open_library(heldout_library, create=False) as library:  # the default model: the shipped weights
        hits = library.search_text("a person waves", k=5)
    assert [content_of(h.name) in WAVES for h in hits] == [True] * 5, [h.name for h in hits]


@pytest.mark.xfail(strict=True, reason="issue 11.4, reported blocked: the CMU 'Start Walk Stop' clips return Bandai "
                   "dashes and runs; they are Michael-Jackson-styled dance steps (subject 131's title; KIT-ML: 'A "
                   "person is dancing'), not plain walks (model card, 'Known limitation'); strict, so a change shows")
@pytest.mark.parametrize("trial", ["131_01", "131_02"])
def test_cmu_walks_find_bandai_walks_by_motion(heldout_library, shared_data, no_user_model, trial):
    """CMU 'Start Walk Stop' (31 joints, 120 fps, another body) as the query; Bandai walks (22 joints, 30 fps) must
    make at least 3 of the top 5 (turns, runs, raised hands and waves are the other 390 clips)."""
    query = load_bvh(shared_data / "cmu_mocap_subject131_bvh" / f"{trial}.bvh")
    assert (query.skeleton.num_joints, query.fps) == (31, 120.0)
    with open_library(heldout_library, create=False) as library:
        hits = library.search_motion(query, k=5)
    contents = [content_of(h.name) for h in hits]
    assert contents.count("walk") >= 3, contents


@pytest.mark.slow
def test_the_real_walking_video_finds_a_walk(heldout_library, shared_data, no_user_model):
    """Issue 14: ../shared/data/intel_sample_videos/one-by-one-person-detection.mp4 (six people, one after another,
    walk in under a ceiling camera, stand at a table for 10-20 s and leave; 139 s) as a video query against the
    held-out Bandai clips: a walking clip in the top 5, ahead of any running one. Before the lifted bodies were
    stood upright (MediaPipe's landmarks lean with the camera) and the windows mean-pooled, 7 of the top 8 were runs
    (first walk at rank 13). Measured now: guide, bow, walk-right, bow, dash; the first plain walk is 11th here and
    5th in the full default library (docs/video-search.md)."""
    from backend.video_search import run_video_search

    video = shared_data / "intel_sample_videos" / "one-by-one-person-detection.mp4"
    with open_library(heldout_library, create=False) as library:
        result = run_video_search({"video_path": str(video), "k": 10}, library)
    contents = [content_of(hit["name"]) for hit in result["hits"]]
    walking = [i for i, c in enumerate(contents) if c.startswith("walk")]
    running = [i for i, c in enumerate(contents) if c in ("run", "dash")] or [len(contents)]
    assert result["query"]["windows"] >= 60, result["query"]
    assert walking and walking[0] < 5 and walking[0] < running[0], contents


def test_search_command_uses_the_shipped_weights(heldout_library, no_user_model):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "BATON_LIBRARY": heldout_library}
    done = subprocess.run([sys.executable, "-m", "backend.cli", "search", "a person waves", "-k", "5", "--json"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"].startswith("default@") and len(result["hits"]) == 5
    assert all(content_of(hit["name"]) in WAVES for hit in result["hits"]), result["hits"]


def test_the_same_motion_on_other_skeletons_finds_itself(shared_data):
    """What the cross-skeleton views buy: Bandai clips retargeted onto SMPL-24, KIT-21 and the CMU skeleton embed
    next to their own originals (cosine > 0.9) and closer to them than to clips of other contents."""
    from models.motion.retarget import retarget
    from models.retrieval.model import load_retrieval_model

    model = load_retrieval_model(SHIPPED_MODEL_DIR)
    names = ["walk_normal_001", "run_normal_001", "bow_normal_001", "bye_normal_001", "walk-back_normal_001",
             "dash_normal_001"]  # fmt: skip
    originals = [load_bvh(shared_data / f"bandai_namco_motion_dataset1/data/dataset-1_{n}.bvh") for n in names]
    gallery = model.embed_motion(originals)
    cmu = shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh"
    for target in ("smpl24", "kit21", str(cmu)):
        moved = model.embed_motion([retarget(m, target).motion for m in originals])
        similarity = moved @ gallery.T
        assert (similarity.argmax(axis=1) == range(len(names))).all(), target
        assert similarity.diagonal().min() > 0.9, (target, similarity.diagonal())  # without the views: 0.37-0.70
