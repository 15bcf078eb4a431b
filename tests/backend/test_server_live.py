"""End to end through the real server and the standard-library client: conduct on real music, retarget, cancel."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from backend.server_process import start_server
from backend.wire_motion import motion_from_payload, motion_to_payload
from blender_addon.client import BatonClient, BatonClientError, JobCancelled
from blender_addon.wire import decode_array, decode_motion
from models.motion import Motion, get_skeleton, load_bvh
from models.motion.retarget import TargetRig

BRAHMS = "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"  # 45.8 s string orchestra
TRUMPET = "sorohanro_-_solo-trumpet-06.ogg"  # 5.3 s: the shortest real music the conductor accepts (>= 5 s)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    live = start_server(tmp_path_factory.mktemp("live"), "--root", str(shared_data / "librosa_example_audio"),
                        "--root", str(shared_data / "cmu_mocap_subject131_bvh"), "--workers", "2")  # fmt: skip
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server) -> BatonClient:
    return BatonClient(server.url, token_file=server.config_dir / "token", timeout=60)


def test_conduct_uploaded_brahms_with_progress(client: BatonClient, shared_data: Path):
    caps = client.capabilities()
    assert caps["models"]["conductor:procedural"]["available"] is True
    seen: list[dict] = []
    job_id = client.submit_conduct(shared_data / "librosa_example_audio" / BRAHMS, model="procedural", seed=3)
    result = client.wait(job_id, on_progress=seen.append, timeout=300, poll_interval=0.05)
    fractions = [s["progress"] for s in seen]
    assert fractions == sorted(fractions) and seen[-1]["state"] == "succeeded"
    assert {s["stage"] for s in seen} - {"queued", "starting", "done"}, "stages of the pipeline must be visible"
    assert any(0 < f < 1 for f in fractions)
    motion = motion_from_payload(result["motion"])
    assert isinstance(motion, Motion) and motion.skeleton.name == "coco13" and motion.fps == 30
    music = result["music"]
    assert 45 < music["duration_s"] < 47 and music["meter"] in (2, 3, 4) and len(music["beat_times"]) > 40
    assert motion.num_frames == round(music["duration_s"] * 30)
    assert motion.positions.shape[1:] == (13, 2) and 0 <= motion.positions.min() and motion.positions.max() <= 1
    assert np.abs(np.diff(motion.positions[:, 10], axis=0)).sum() > 1.0  # the baton hand moves
    # the upload was handed to the job and deleted with it
    assert client.status(job_id)["eta_s"] == 0.0


def test_conduct_server_path_retargeted_onto_a_client_rig(client: BatonClient):
    rig = TargetRig.from_skeleton(get_skeleton("smpl24")).to_dict()
    job_id = client.submit_conduct(audio_path=TRUMPET, model="procedural", seed=1, target=rig, foot_lock=False)
    result = client.wait(job_id, timeout=300)
    solution = result["retarget"]
    target = decode_motion(solution["motion"])
    frames = decode_motion(result["motion"]).num_frames
    assert solution["bone_names"] == rig["joint_names"] and target.num_frames == frames
    rotations = decode_array(solution["bone_rotations"])
    assert rotations.shape == (frames, 24, 4) and np.allclose(np.linalg.norm(rotations, axis=-1), 1, atol=1e-3)
    assert target.root_translation.shape == (frames, 3)
    assert solution["mapping"]["left_wrist"] == "left_wrist"


def test_cancel_a_running_conduct_job(client: BatonClient):
    job_id = client.submit_conduct(audio_path=BRAHMS, model="procedural", seed=2)
    client.cancel(job_id)
    with pytest.raises(JobCancelled):
        client.wait(job_id, timeout=120)
    status = client.status(job_id)
    assert status["state"] == "cancelled" and status["finished_at"] is not None
    with pytest.raises(BatonClientError) as info:
        client.result(job_id)
    assert info.value.status == 409 and info.value.error == "job_cancelled"


def test_retarget_bvh_from_server_and_inline(client: BatonClient, shared_data: Path):
    job_id = client.submit_retarget(source_path="131_03.bvh", target="kit21", root="height")
    solution = client.wait(job_id, timeout=120)
    source = load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_03.bvh")
    target = motion_from_payload(solution["motion"])
    assert target.skeleton.name == "kit21" and target.num_frames == source.num_frames
    root = target.root_translation  # root="height": only the vertical motion is kept
    assert np.allclose(root[:, [0, 2]], root[0, [0, 2]], atol=1e-5) and np.ptp(root[:, 1]) > 0.01
    clip = Motion(source.skeleton, source.fps, source.positions[:120], source.rotations[:120],
                  source.root_translation[:120])  # fmt: skip
    inline = client.wait(client.submit_retarget(motion_to_payload(clip), target="smpl22"), timeout=120)
    assert decode_motion(inline["motion"]).num_frames == 120


def test_job_survives_its_client_disconnecting(server, client: BatonClient):
    """Submit over a raw socket and hang up before reading the answer; the job still runs to the end."""
    body = json.dumps({"audio_path": TRUMPET, "model": "procedural", "seed": 4}).encode()
    before = {job["id"] for job in client.jobs()}
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"POST /jobs/conduct HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    deadline = time.monotonic() + 30
    new: list[str] = []
    while not new and time.monotonic() < deadline:
        new = [job["id"] for job in client.jobs() if job["id"] not in before]
        time.sleep(0.05)
    assert len(new) == 1
    result = client.wait(new[0], timeout=300)
    assert motion_from_payload(result["motion"]).num_frames == round(result["music"]["duration_s"] * 30) > 150


def test_failed_job_reports_a_structured_error(client: BatonClient, shared_data: Path):
    """The robin call is real audio but too short to conduct: the job fails with the conductor's reason."""
    status = client.status(client.submit_conduct(audio_path="456440__inspectorj__bird-whistling-robin-single-13.ogg"))
    while status["state"] in ("queued", "running"):
        time.sleep(0.05)
        status = client.status(status["id"])
    assert status["state"] == "failed"
    assert status["error"]["error"] == "bad_input" and "at least 5 s" in status["error"]["detail"]
    with pytest.raises(BatonClientError) as info:
        client.result(status["id"])
    assert info.value.status == 409 and info.value.error == "job_failed"


def test_release_models_frees_the_loaded_generator(client: BatonClient):
    client.wait(client.submit_conduct(audio_path=TRUMPET, model="procedural"), timeout=300)
    assert client.capabilities()["models"]["conductor:procedural"]["loaded"] is True
    answer = client.release_models(["conductor:procedural"])
    assert answer["released"] == ["conductor:procedural"] and "conductor:procedural" not in answer["loaded"]


def test_long_poll_answers_when_the_job_finishes(client: BatonClient, tmp_path: Path):
    job_id = client.submit_conduct(audio_path=TRUMPET, model="procedural", seed=5)
    started = time.monotonic()
    status = client.status(job_id, wait_s=30)
    assert status["state"] == "succeeded" and time.monotonic() - started < 29
    # Five minutes of music take many seconds to analyse, so the 0.5 s long poll times out first even on a loaded
    # machine (a real file the server has never seen: nothing can be cached).
    import soundfile

    rate, seconds = 22050, 300
    t = np.arange(rate * seconds) / rate
    clicks = (np.mod(t, 0.5) < 0.02) * np.sin(2 * np.pi * 880 * t)
    music = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.25 * t)) + 0.5 * clicks
    long_piece = tmp_path / "long_piece.wav"
    soundfile.write(long_piece, music.astype(np.float32), rate, subtype="PCM_16")
    slow = client.submit_conduct(long_piece, model="procedural", seed=6)
    started = time.monotonic()
    status = client.status(slow, wait_s=0.5)
    assert status["state"] in ("queued", "running") and 0.4 < time.monotonic() - started < 10
    client.cancel(slow)


def test_an_upload_feeds_one_job_and_is_deleted_with_it(server, client: BatonClient, shared_data: Path):
    upload = client.upload_audio(shared_data / "librosa_example_audio" / TRUMPET)
    assert 5.0 < upload["duration_s"] < 6.0 and upload["content_type"] == "audio/ogg"
    files = list((server.work_dir / "uploads").glob(f"{upload['upload_id']}.*"))
    assert len(files) == 1 and files[0].stat().st_size == upload["bytes"]
    body = {"upload_id": upload["upload_id"], "model": "procedural"}
    job = client._request("POST", "/jobs/conduct", body)
    client.wait(job["id"], timeout=300)
    assert not files[0].exists()
    with pytest.raises(BatonClientError) as info:
        client._request("POST", "/jobs/conduct", body)
    assert info.value.status == 404 and info.value.error == "upload_not_found"
