"""The ``generate_speech`` job (a spoken instruction -> motion -> rig) through the real loopback server and the
standard-library client, on the shipped text-to-motion and speech weights: bad audio answers 400 at submit with the
reason and creates no job; an espeak-ng instruction lands on a client's rig by both paths with what was heard beside
the samples; noise ends the job as ``not_understood`` with no motion."""

from __future__ import annotations

import math
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from backend.server_process import start_server
from blender_addon.client import BatonClient, BatonClientError, JobFailed
from blender_addon.wire import decode_motion
from models.motion import get_skeleton
from models.motion.retarget import TargetRig

INSTRUCTION = "could you make him walk forward"


def _write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return path


def speak(text: str, path: Path) -> Path:
    """``text`` spoken by espeak-ng (en-us, 150 wpm) into a WAV, as the corpus builder calls it."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (Debian package espeak-ng, scripts/apt/speech.txt): it synthesises the "
                    "spoken instruction of this test")  # fmt: skip
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def audio_root(tmp_path_factory) -> Path:
    """The server's allowed root (``--root``), where the spoken instruction lies."""
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="module")
def server(tmp_path_factory, audio_root):
    from models.instruct.generator import DEFAULT_WEIGHTS, RUN_FILES

    assert all((DEFAULT_WEIGHTS / name).is_file() for name in RUN_FILES), f"no shipped weights in {DEFAULT_WEIGHTS}"
    live = start_server(tmp_path_factory.mktemp("speech"), "--workers", "1", "--root", str(audio_root))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server) -> BatonClient:
    return BatonClient(server.url, token=server.token, timeout=120)


@pytest.fixture(scope="module")
def spoken(audio_root) -> Path:
    return speak(INSTRUCTION, audio_root / "instruction.wav")


def test_bad_audio_is_refused_at_submit_with_the_reason_and_no_job(client, tmp_path, spoken):
    rng = np.random.default_rng(0)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(40))
    cases = [
        (_write_wav(tmp_path / "silence.wav", np.zeros(32000)), "silent"),
        (_write_wav(tmp_path / "short.wav", 0.3 * rng.standard_normal(4800)), "too short"),
        (_write_wav(tmp_path / "long.wav", 0.3 * rng.standard_normal(16000 * 12)), "too long"),
        (_write_wav(tmp_path / "rate.wav", 0.3 * rng.standard_normal(8000), rate=4000), "4000 Hz is not supported"),
        (corrupt, "not a readable audio file"),
    ]
    before = client.jobs()
    for path, message in cases:
        with pytest.raises(BatonClientError) as info:
            client.submit_generate_speech(path, seconds=2.0)
        assert info.value.status == 400 and message in info.value.detail, (path.name, info.value)
    with pytest.raises(BatonClientError) as info:
        client.submit_generate_speech(spoken, path="phonetic")
    assert info.value.status == 422 and "path" in info.value.detail
    with pytest.raises(BatonClientError) as info:
        client.submit_generate_speech(spoken, seconds=3600)
    assert info.value.status == 400 and "seconds must be between" in info.value.detail
    assert client.jobs() == before, "refused requests create no job"


@pytest.mark.parametrize("path", ["end2end", "cascaded"])
def test_a_spoken_instruction_lands_on_a_client_rig_with_what_was_heard(client, spoken, path):
    rig = TargetRig.from_skeleton(get_skeleton("smpl24")).to_dict()
    seen: list[dict] = []
    job_id = client.submit_generate_speech(spoken, path=path, seconds=3.0, seed=2, samples=2, target=rig)
    result = client.wait(job_id, on_progress=seen.append, timeout=600, poll_interval=0.05)
    assert "understanding the instruction" in " ".join(s["stage"] for s in seen)
    speech = result["speech"]
    assert speech["path"] == path and set(speech) >= {"transcript", "nearest_caption", "confidence", "engine"}
    if path == "cascaded":
        assert "walk" in speech["transcript"].lower() and speech["nearest_caption"] is None
        assert result["prompt"] == speech["transcript"]
    else:
        assert speech["transcript"] is None and speech["engine"] == "memory-retrieval"
        assert speech["nearest_caption"] and result["prompt"] == speech["nearest_caption"]
        assert speech["confidence"]["caption_cosine"] >= 0.53
    assert result["fps"] == 20 and math.isclose(result["seconds"], 3.0, abs_tol=0.05) and len(result["samples"]) == 2
    first, second = (decode_motion(s["motion"]) for s in result["samples"])
    for sample, motion in zip(result["samples"], (first, second), strict=True):
        assert sample["bone_names"] == rig["joint_names"] and motion.rotations.shape == (60, 24, 4)
        pelvis = motion.positions[:, 0]
        assert np.isfinite(motion.positions).all()
        assert np.linalg.norm(motion.positions - motion.positions.mean(0), axis=2).max() > 0.05, "the body moves"
        assert pelvis.shape == (60, 3)
    assert not np.allclose(first.positions, second.positions), "two variations differ"


def test_noise_is_not_understood_and_makes_no_motion(client, tmp_path):
    noise = _write_wav(tmp_path / "noise.wav", 0.2 * np.random.default_rng(1).standard_normal(16000 * 3))
    job_id = client.submit_generate_speech(noise, path="end2end", seconds=2.0)
    with pytest.raises(JobFailed) as info:
        client.wait(job_id, timeout=300)
    status = client.status(job_id)
    assert status["state"] == "failed" and status["error"]["error"] == "not_understood", status
    assert "I did not understand" in status["error"]["detail"] and "I did not understand" in info.value.detail
    with pytest.raises(BatonClientError):
        client.result(job_id)


def test_capabilities_list_the_job_and_the_speech_model(client):
    caps = client.capabilities()
    assert "generate_speech" in caps["job_kinds"]
    assert caps["models"]["speech"]["available"] is True and "end-to-end weights" in caps["models"]["speech"]["detail"]


def test_recording_without_a_microphone_is_refused_with_a_clear_message_and_no_job(client):
    before = client.jobs()
    with pytest.raises(BatonClientError) as info:
        client.submit_record_speech(20.0)
    assert info.value.status == 400 and "between 0.5 and 10 s" in info.value.detail, info.value
    with pytest.raises(BatonClientError) as info:
        client.submit_record_speech(3.0)  # this machine has no input device (PortAudio lists none)
    assert info.value.status == 409 and info.value.error == "no_input_device", info.value
    assert "no input device" in info.value.detail or "PortAudio is not installed" in info.value.detail
    assert client.jobs() == before


def test_a_server_path_under_the_allowed_roots_is_read_in_place_and_one_outside_is_refused(client, spoken, tmp_path):
    result = client.wait(client.submit_generate_speech(audio_path=str(spoken), seconds=2.0, target="smpl24"),
                         timeout=600)  # fmt: skip
    assert result["speech"]["path"] == "end2end" and len(result["samples"]) == 1 and spoken.is_file()
    assert decode_motion(result["samples"][0]["motion"]).num_frames == 40
    outside = tmp_path / "outside.wav"
    outside.write_bytes(spoken.read_bytes())
    before = client.jobs()
    with pytest.raises(BatonClientError) as info:
        client.submit_generate_speech(audio_path=str(outside))
    assert info.value.status in (400, 403) and "allowed roots" in info.value.detail, info.value
    assert client.jobs() == before
