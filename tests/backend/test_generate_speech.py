"""``baton generate --speech``: a spoken instruction through the end-to-end and the cascaded path onto a rig (real
Whisper tiny.en, the shipped speech-condition weights, a small text-to-motion run built here), and every kind of
bad audio refused with a clear message, exit 1 and nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from backend.cli import main
from models.speech.voices import all_voices, synthesize

RATE = 16000


@pytest.fixture(scope="module")
def t2m_run(tmp_path_factory, shared_data):
    """A small text-to-motion run (untrained networks, real HumanML3D statistics): the plumbing, not the quality."""
    from models.instruct import networks as nets

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("t2m")
    vq = nets.RVQVAE(nets.VQConfig(width=32, code_dim=16, codebook_size=32, num_quantizers=2, depth=1))
    vq.train()
    vq(torch.randn(4, 32, 263))  # k-means initialises the codebooks on the first training batch
    stats = shared_data / "humanml3d_sample"
    mean = torch.from_numpy(np.load(next(stats.rglob("Mean.npy"))).astype(np.float32))
    std = torch.from_numpy(np.load(next(stats.rglob("Std.npy"))).astype(np.float32))
    nets.save_network(run / "vq.pt", "vq", vq.eval(), {"mean": mean, "std": std})
    tc = nets.TransformerConfig(codebook_size=32, num_quantizers=2, d_model=32, layers=1, heads=2, feedforward=64,
                           max_tokens=20)  # fmt: skip
    nets.save_network(run / "mask.pt", "mask", nets.MaskedTransformer(tc))
    nets.save_network(run / "residual.pt", "residual", nets.ResidualTransformer(tc))
    nets.save_network(run / "length.pt", "length", nets.LengthEstimator(nets.LengthConfig(hidden=32, max_tokens=20)))
    return run


@pytest.fixture(scope="module")
def instruction(tmp_path_factory):
    voice = next(v for v in all_voices() if v.name == "flite:rms")
    return synthesize(voice, "could you make him walk forward", tmp_path_factory.mktemp("voice") / "instr.wav")


@pytest.mark.parametrize("path", ["end2end", "cascaded"])
def test_speech_onto_a_rig(path, t2m_run, instruction, tmp_path, capsys):
    out = tmp_path / "out.bvh"
    code = main(["generate", "--speech", str(instruction), "--path", path, "--seconds", "4", "--rig", "smpl24",
                 "--weights", str(t2m_run), "-o", str(out), "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert out.is_file() and report["outputs"] == [str(out)] and report["frames"] == 80 and report["rig"] == "smpl24"
    speech = report["speech"]
    assert speech["path"] == path
    if path == "cascaded":
        assert "walk" in speech["transcript"].lower() and speech["engine"] == "whisper"
    else:
        assert speech["transcript"] is None and "walk" in speech["nearest_caption"]
    from models.motion.bvh import load_bvh

    motion = load_bvh(out)
    assert motion.num_frames == 80 and np.isfinite(motion.positions).all()


def _write(path, audio, rate=RATE):
    sf.write(path, audio, rate)
    return path


def _bad_files(tmp_path, shared_data):
    t = np.arange(int(2.0 * RATE)) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    music, rate = sf.read(next((shared_data / "librosa_example_audio").glob("Hungarian_Dance*.ogg")),
                          dtype="float32")  # fmt: skip
    music = music.mean(axis=1) if music.ndim == 2 else music
    return {
        "silence": (_write(tmp_path / "silence.wav", np.zeros(2 * RATE, np.float32)), "silent"),
        "short": (_write(tmp_path / "short.wav", tone[: int(0.3 * RATE)]), "too short"),
        "long": (_write(tmp_path / "long.wav", np.tile(tone, 300)), "too long"),
        "rate": (_write(tmp_path / "rate.wav", tone[::4], 4000), "sample rate 4000 Hz"),
        "corrupt": (corrupt, "not a readable audio file"),
        "music": (_write(tmp_path / "music.wav", music[10 * rate : 18 * rate], rate), "I did not understand"),
    }


@pytest.mark.parametrize("path", ["end2end", "cascaded"])
def test_bad_audio_is_refused_clearly(path, t2m_run, tmp_path, shared_data, capsys):
    for name, (audio, message) in _bad_files(tmp_path, shared_data).items():
        out = tmp_path / f"{name}.bvh"
        code = main(["generate", "--speech", str(audio), "--path", path, "--seconds", "4", "--weights", str(t2m_run),
                     "-o", str(out)])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 1, (name, err)
        assert message in err, (name, err)
        assert not out.exists(), name


def test_speech_and_text_are_exclusive(t2m_run, instruction, tmp_path, capsys):
    code = main(["generate", "walk", "--speech", str(instruction), "-o", str(tmp_path / "x.bvh")])
    assert code == 1 and "either TEXT, --timeline or --speech" in capsys.readouterr().err
