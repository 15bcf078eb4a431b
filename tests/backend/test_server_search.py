"""Search jobs through the live server agree with the library searched in-process (CMU subject 131 clips)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.server_process import start_server
from backend.wire_motion import motion_to_payload
from blender_addon.client import BatonClient, BatonClientError
from models.motion import load_bvh


@pytest.fixture(scope="module")
def search_setup(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    """A SQLite library of the three CMU clips embedded by a small seeded retrieval model, and a server using both."""
    import torch

    from backend.library import import_paths, load_embedder, open_library
    from models.retrieval.encoders import TMRConfig
    from models.retrieval.model import RetrievalConfig, RetrievalModel

    tmp = tmp_path_factory.mktemp("search")
    torch.manual_seed(0)
    config = RetrievalConfig(encoder="tmr", tmr=TMRConfig(d_model=64, layers=1, heads=2, feedforward=128,
                                                          max_frames=120))  # fmt: skip
    model_dir = RetrievalModel(config).save(tmp / "model")
    url = f"sqlite:///{tmp / 'library.sqlite'}"
    cmu = shared_data / "cmu_mocap_subject131_bvh"
    with open_library(url, load_embedder(model_dir)) as library:
        import_paths(library, [cmu])
    server = start_server(tmp / "server", "--library", url, "--retrieval-model", str(model_dir), "--root", str(cmu))
    yield {"server": server, "url": url, "model": model_dir, "cmu": cmu}
    server.stop()


def _in_process(setup, request: dict) -> list[tuple[int, float]]:
    from backend.library import load_embedder, open_library
    from backend.library.jobs import run_search

    with open_library(setup["url"], load_embedder(setup["model"])) as library:
        return [(h["clip_id"], round(h["score"], 5)) for h in run_search(request, library)["hits"]]


def test_search_jobs_match_the_in_process_library(search_setup):
    server = search_setup["server"]
    client = BatonClient(server.url, token=server.token, timeout=120)
    assert client.capabilities()["models"]["library"]["available"] is True
    text = client.wait(client.submit_search("a person hops on one leg", k=3), timeout=300)
    assert text["query_kind"] == "text" and len(text["hits"]) == 3
    scores = [h["score"] for h in text["hits"]]
    assert scores == sorted(scores, reverse=True) and {h["skeleton"] for h in text["hits"]} == {"cmu31"}
    remote = [(h["clip_id"], round(h["score"], 5)) for h in text["hits"]]
    assert remote == _in_process(search_setup, {"text": "a person hops on one leg", "k": 3})

    by_path = client.wait(client.submit_search(motion_path="131_02.bvh", k=1, filters={"skeleton": "cmu31"}))
    assert by_path["hits"][0]["name"] == "131_02"
    inline = load_bvh(search_setup["cmu"] / "131_03.bvh")
    by_motion = client.wait(client.submit_search(motion=motion_to_payload(inline), k=1, exact=True))
    assert by_motion["query_kind"] == "motion" and by_motion["hits"][0]["name"] == "131_03"
    clip = by_path["hits"][0]["clip_id"]
    like = client.wait(client.submit_search(clip_id=clip, k=3))
    assert clip not in {h["clip_id"] for h in like["hits"]} and len(like["hits"]) == 2


def test_search_bad_input_answers_at_once(search_setup):
    server = search_setup["server"]
    client = BatonClient(server.url, token=server.token)
    for kwargs, status in (({"motion_path": "../../etc/passwd"}, 400), ({"motion_path": "nope.bvh"}, 404),
                           ({"text": "x", "filters": {"min_duration_s": 5, "max_duration_s": 1}}, 400),
                           ({"text": "x", "filters": {"color": "red"}}, 422)):  # fmt: skip
        with pytest.raises(BatonClientError) as info:
            client.submit_search(**kwargs)
        assert info.value.status == status, (kwargs, info.value)


@pytest.mark.slow
def test_thumbnails_job_renders_once_and_refuses_unknown_clips(search_setup):
    """The thumbnails job renders the mannequin contact sheets in Blender, keeps them in the library, answers
    from there the second time, and refuses ids that are not clips before queueing anything."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    server = search_setup["server"]
    client = BatonClient(server.url, token=server.token, timeout=120)
    hits = client.wait(client.submit_search("a person walks", k=3), timeout=300)["hits"]
    ids = [h["clip_id"] for h in hits]
    first = client.wait(client.submit_thumbnails(ids), timeout=600)
    assert first["rendered_now"] == 3 and first["note"] == ""
    assert [t["clip_id"] for t in first["thumbnails"]] == ids and all(t["rendered"] for t in first["thumbnails"])
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(first["thumbnails"][0]["png_base64"]))).convert("RGB"))
    assert image.shape == (256, 256, 3)
    cells = [image[r : r + 128, c : c + 128].astype(float) for r in (0, 128) for c in (0, 128)]
    assert all(cell.std(axis=(0, 1)).max() > 10 for cell in cells), "each cell shows the mannequin"
    assert np.abs(cells[0] - cells[3]).mean() > 1, "the four cells are different moments of the clip"
    again = client.wait(client.submit_thumbnails(ids[:1], render=True), timeout=120)
    assert again["rendered_now"] == 0 and again["thumbnails"][0]["png_base64"] == first["thumbnails"][0]["png_base64"]
    with pytest.raises(BatonClientError) as info:
        client.submit_thumbnails([ids[0], 987654])
    assert info.value.status == 404 and "987654" in str(info.value)
    with pytest.raises(BatonClientError) as info:
        client.submit_thumbnails([])
    assert info.value.status == 422


def test_thumbnails_of_a_missing_library_say_so(tmp_path):
    server = start_server(tmp_path / "server", "--library", f"sqlite:///{tmp_path / 'missing.sqlite'}")
    try:
        client = BatonClient(server.url, token=server.token)
        with pytest.raises(BatonClientError) as info:
            client.submit_thumbnails([1])
        assert info.value.status == 404 and "no motion library" in str(info.value)
        assert not (tmp_path / "missing.sqlite").exists(), "asking did not create an empty library"
    finally:
        server.stop()
