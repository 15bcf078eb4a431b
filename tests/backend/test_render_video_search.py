"""Video search end to end: ``baton search --video`` and the server's ``search_video`` job on real footage, and the
refusals of bad videos with their reasons (exit 1 / HTTP 4xx before any job is queued)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.server_process import start_server
from blender_addon.client import BatonClient, BatonClientError

REPO = Path(__file__).resolve().parents[2]
ASL = "intel_sample_videos/asl_gestures"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    """The three CMU 131 clips in a SQLite library embedded by a small seeded retrieval model."""
    import torch

    from backend.library import import_paths, load_embedder, open_library
    from models.retrieval.encoders import TMRConfig
    from models.retrieval.model import RetrievalConfig, RetrievalModel

    tmp = tmp_path_factory.mktemp("video_search")
    torch.manual_seed(0)
    config = RetrievalConfig(encoder="tmr", tmr=TMRConfig(d_model=64, layers=1, heads=2, feedforward=128,
                                                          max_frames=48))  # fmt: skip
    model_dir = RetrievalModel(config).save(tmp / "model")
    url = f"sqlite:///{tmp / 'library.sqlite'}"
    with open_library(url, load_embedder(model_dir)) as library:
        import_paths(library, [shared_data / "cmu_mocap_subject131_bvh"])
    videos = tmp / "videos"
    videos.mkdir()
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    return {"url": url, "model": model_dir, "videos": videos, "walk": shared_data / ASL / "walk.mkv"}


def _baton(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=600)  # fmt: skip


@pytest.mark.slow
def test_cli_searches_by_video(setup):
    done = _baton("search", "--video", str(setup["walk"]), "-k", "2", "--db", setup["url"],
                  "--model", str(setup["model"]), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["query_kind"] == "video" and len(result["hits"]) == 2
    assert result["video"]["codec"] == "h264"
    assert result["query"]["window_frames"] >= 10 and result["query"]["windows"] >= 1
    assert result["hits"][0]["score"] >= result["hits"][1]["score"]


def test_cli_refuses_bad_videos(setup, tmp_path):
    common = ("--db", setup["url"], "--model", str(setup["model"]), "--json")
    broken = _baton("search", "--video", str(setup["videos"] / "broken.mp4"), *common)
    assert broken.returncode == 1 and "not a readable video" in broken.stderr and broken.stdout == ""
    missing = _baton("search", "--video", str(tmp_path / "nope.mp4"), *common)
    assert missing.returncode == 1 and "no video file" in missing.stderr
    both = _baton("search", "a person walks", "--video", str(setup["walk"]), *common)
    assert both.returncode == 1 and "one query" in both.stderr


@pytest.mark.slow
def test_server_search_video_job(setup):
    server = start_server(setup["videos"].parent / "server", "--library", setup["url"], "--retrieval-model",
                          str(setup["model"]), "--root", str(setup["videos"]), "--root",
                          str(setup["walk"].parent))  # fmt: skip
    try:
        client = BatonClient(server.url, token=server.token, timeout=120)
        job = client._request("POST", "/jobs/search_video", {"video_path": "walk.mkv", "k": 3})["id"]
        result = client.wait(job, timeout=600)
        assert result["query_kind"] == "video" and len(result["hits"]) == 3
        with pytest.raises(BatonClientError) as bad:
            client._request("POST", "/jobs/search_video", {"video_path": "broken.mp4"})
        assert bad.value.status in (400, 422) and "not a readable video" in bad.value.detail
        with pytest.raises(BatonClientError) as outside:
            client._request("POST", "/jobs/search_video", {"video_path": "/etc/passwd"})
        assert outside.value.status in (400, 403, 404, 422)
    finally:
        server.stop()


def test_video_hits_score_their_mean_cosine_over_the_windows(setup, monkeypatch):
    """Mean pooling: a clip's score is its mean cosine over the video's windows (not its best window's, which let
    one window of noisy landmarks decide the ranking), and ``video_start_s`` is the window closest to it."""
    import numpy as np

    import models.video.pose as pose_module
    from backend.library import load_embedder, open_library
    from backend.video_search import run_video_search
    from tests.models.test_video_pose import _pitched_pose

    walk, still = _pitched_pose(30.0, frames=60, speed=1.0), _pitched_pose(30.0, frames=60, speed=0.0)
    pose = {k: np.concatenate([walk[k], still[k]]) if np.ndim(walk[k]) else walk[k] for k in walk}
    monkeypatch.setattr(pose_module, "extract_pose", lambda *args, **kwargs: pose)
    with open_library(setup["url"], load_embedder(setup["model"])) as library:
        result = run_video_search({"video_path": str(setup["walk"]), "k": 3, "exact": True}, library)
        windows = pose_module.pose_to_windows(pose)
        queries = library.embedder.embed_motion(windows)
        ids, vectors = library.store.embeddings(library.embedder.model_key)
    cosines = vectors @ queries.T  # (clips, windows)
    assert result["query"]["windows"] == len(windows) >= 5
    expected = sorted(zip(cosines.mean(1), ids.tolist(), strict=True), reverse=True)
    assert [h["clip_id"] for h in result["hits"]] == [i for _, i in expected]
    for hit in result["hits"]:
        row = ids.tolist().index(hit["clip_id"])
        assert hit["score"] == pytest.approx(cosines[row].mean(), abs=1e-4)
        assert hit["video_start_s"] == windows[int(np.argmax(cosines[row]))].metadata["start_s"]
