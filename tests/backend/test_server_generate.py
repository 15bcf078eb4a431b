"""The ``generate`` job (text -> motion -> rig) through the real server and the standard-library client: bad input
answers at once with what was wrong and creates no job; a real generation with the real text-to-motion model lands on
a client's rig with progress; cancel stops it."""

from __future__ import annotations

import json
import math
import urllib.request

import numpy as np
import pytest

from backend.server_process import start_server
from blender_addon.client import MAX_PROMPT_CHARS, BatonClient, BatonClientError, JobCancelled
from blender_addon.wire import decode_array, decode_motion
from models.motion import get_skeleton
from models.motion.retarget import TargetRig

PROMPT = "a person waves with the right hand"


@pytest.fixture(scope="module")
def t2m_run_dir():
    """The text-to-motion weights the server generates with: the shipped default weights."""
    from models.instruct.generator import DEFAULT_WEIGHTS, RUN_FILES

    assert all((DEFAULT_WEIGHTS / name).is_file() for name in RUN_FILES), f"no shipped weights in {DEFAULT_WEIGHTS}"
    return DEFAULT_WEIGHTS


@pytest.fixture(scope="module")
def server(tmp_path_factory, t2m_run_dir):
    live = start_server(tmp_path_factory.mktemp("generate"), "--workers", "2", "--checkpoint", f"t2m={t2m_run_dir}")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server) -> BatonClient:
    return BatonClient(server.url, token=server.token, timeout=120)


def _post_raw(server, body: bytes) -> tuple[int, dict]:
    """POST /jobs/generate with a raw JSON body (NaN is not JSON, so the client cannot be made to send it)."""
    request = urllib.request.Request(server.url + "/jobs/generate", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {server.token}",
                                              "Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_bad_input_is_refused_at_once_with_the_reason_and_no_job(client, server):
    from models.instruct import MAX_SECONDS, MIN_SECONDS

    before = client.jobs()
    cases = [
        ({"prompt": ""}, 400, "prompt is empty"),
        ({"prompt": "   "}, 400, "prompt is empty"),
        ({"prompt": "w" * 10_000}, 422, f"at most {MAX_PROMPT_CHARS} characters"),
        ({"prompt": PROMPT, "seconds": 0}, 400, f"seconds must be between {MIN_SECONDS:g} and {MAX_SECONDS:g} s"),
        ({"prompt": PROMPT, "seconds": 3600}, 400, f"seconds must be between {MIN_SECONDS:g} and {MAX_SECONDS:g} s"),
        ({"prompt": PROMPT, "samples": 0}, 422, "samples"),
        ({"prompt": PROMPT, "target": "no_such_rig"}, 400, "unknown target skeleton"),
        ({"prompt": PROMPT, "timeline": [{"text": PROMPT, "start_s": 0, "end_s": 2}]}, 422, "exactly one of"),
        ({"timeline": [{"text": "a person walks", "start_s": 0, "end_s": 3},
                       {"text": PROMPT, "start_s": 2, "end_s": 4}]}, 400, "must not overlap"),  # fmt: skip
    ]
    for body, status, message in cases:
        with pytest.raises(BatonClientError) as info:
            client.submit_generate(**body)
        assert info.value.status == status and message in info.value.detail, (body, info.value)
    for value in ("NaN", "Infinity"):
        status, error = _post_raw(server, f'{{"prompt": "{PROMPT}", "guidance": {value}}}'.encode())
        assert status == 422 and "guidance" in error["detail"] and "finite" in error["detail"], error
    assert client.jobs() == before, "refused requests create no job"


def test_generate_onto_a_client_rig_with_variations_and_progress(client):
    rig = TargetRig.from_skeleton(get_skeleton("smpl24")).to_dict()
    seen: list[dict] = []
    job_id = client.submit_generate(PROMPT, seconds=3.0, seed=7, samples=2, guidance=4.0, target=rig)
    result = client.wait(job_id, on_progress=seen.append, timeout=600, poll_interval=0.05)
    fractions = [s["progress"] for s in seen]
    assert fractions == sorted(fractions) and any(0 < f < 1 for f in fractions)
    assert {s["stage"] for s in seen} - {"queued", "starting", "done"}, "stages of the pipeline must be visible"
    assert result["prompt"] == PROMPT and result["seed"] == 7 and len(result["samples"]) == 2
    assert result["fps"] == 20 and math.isclose(result["seconds"], 3.0, abs_tol=0.05)
    first, second = (decode_motion(sample["motion"]) for sample in result["samples"])
    frames = round(3.0 * 20)
    for sample, motion in zip(result["samples"], (first, second), strict=True):
        assert sample["bone_names"] == rig["joint_names"] and motion.joint_names == rig["joint_names"]
        assert motion.num_frames == frames and motion.rotations.shape == (frames, 24, 4)
        assert np.allclose(np.linalg.norm(motion.rotations, axis=-1), 1, atol=1e-3)
        rotations = decode_array(sample["bone_rotations"])
        assert rotations.shape == (frames, 24, 4) and np.isfinite(rotations).all()
        assert sample["foot_skate_after_cm"] >= 0
        wrist = motion.positions[:, rig["joint_names"].index("right_wrist")]
        assert np.linalg.norm(wrist - wrist.mean(0), axis=1).max() > 0.02, "the body moves"
    assert not np.allclose(first.positions, second.positions), "two variations differ"
    again = client.wait(client.submit_generate(PROMPT, seconds=3.0, seed=7, samples=2, guidance=4.0, target=rig),
                        timeout=600)
    assert np.array_equal(decode_motion(again["samples"][0]["motion"]).positions, first.positions), "seeded"


def test_a_timeline_of_two_prompts_is_one_motion_of_their_length(client):
    timeline = [{"text": "a person walks forward", "start_s": 0.0, "end_s": 2.0},
                {"text": PROMPT, "start_s": 2.0, "end_s": 4.0}]  # fmt: skip
    result = client.wait(client.submit_generate(timeline=timeline, seed=3, target="smpl24"), timeout=600)
    assert result["timeline"] == timeline and result["prompt"] == f"a person walks forward / {PROMPT}"
    motion = decode_motion(result["samples"][0]["motion"])
    assert math.isclose(result["seconds"], 4.0) and motion.num_frames == 80 and np.isfinite(motion.positions).all()


def test_cancel_a_running_generate_job(client):
    job_id = client.submit_generate(PROMPT, seconds=9.0, samples=4, target="smpl24")
    client.cancel(job_id)
    with pytest.raises(JobCancelled):
        client.wait(job_id, timeout=300)
    status = client.status(job_id)
    assert status["state"] == "cancelled" and status["finished_at"] is not None
    with pytest.raises(BatonClientError):
        client.result(job_id)


def test_capabilities_list_the_job_and_the_model(client, t2m_run_dir):
    caps = client.capabilities()
    assert "generate" in caps["job_kinds"]
    assert caps["models"]["t2m"]["available"] is True and str(t2m_run_dir) in caps["models"]["t2m"]["detail"]
