"""M2S-Net and M2S-GAN on our modules with the official VirtualConductor checkpoints (strict loading)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from models.conductor import analyze_audio, generate
from models.conductor.audio import SAMPLE_RATE, conductor_mel
from models.conductor.m2s import M2SGenerator, M2SNet, MusicEncoder
from models.conductor.stgcn import coco13_adjacency
from models.conductor.virtualconductor import (
    convert_official_m2sgan,
    import_virtualconductor,
    load_m2sgan,
    load_m2snet,
)
from models.metrics.beats import bc_seconds
from models.metrics.conductor import evaluate_motion, sync_score

BRAHMS = "librosa_example_audio/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"


@pytest.fixture(scope="module")
def checkpoints(shared_data):
    folder = shared_data / "virtualconductor_checkpoints"
    return folder / "M2SNet_official_pretrained.pt", folder / "M2SGAN_official_pretrained.pt"


@pytest.fixture(scope="module")
def brahms(shared_data):
    return analyze_audio(shared_data / BRAHMS)


@pytest.fixture(scope="module")
def shuffled_mels(shared_data, brahms):
    """Mels of Brahms cut into 1 s pieces put back in three random orders (same sound, beats destroyed)."""
    import librosa

    samples, _ = librosa.load(shared_data / BRAHMS, sr=SAMPLE_RATE)
    pieces = np.array_split(samples, int(len(samples) / SAMPLE_RATE))
    mels = []
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(pieces))
        mels.append(conductor_mel(np.concatenate([pieces[i] for i in order]), SAMPLE_RATE, len(brahms.mel)))
    return mels


def _official(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_official_checkpoints_load_strict(checkpoints):
    net_path, gan_path = checkpoints
    official_net = _official(net_path)
    net = M2SNet()
    net.load_state_dict(official_net, strict=True)  # same names: no conversion
    np.testing.assert_allclose(official_net["motion_encoder.st_gcn.A"].numpy(), coco13_adjacency(), atol=1e-7)
    gan = M2SGenerator()
    gan.load_state_dict(convert_official_m2sgan(_official(gan_path)), strict=True)
    # The converted weight-norm parameters reproduce the official effective weights g * v / |v|.
    official = _official(gan_path)
    g = official["tcn.TCN.tcn.tcn.network.3.conv2.weight_g"]
    v = official["tcn.TCN.tcn.tcn.network.3.conv2.weight_v"]
    expected = g * v / v.norm(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(gan.decoder.blocks[3].conv2.weight, expected)


def test_music_encoder_maps_90hz_mel_to_30hz_features():
    encoder = MusicEncoder().eval()
    with torch.no_grad():
        out = encoder(torch.rand(2, 270, 128))
    assert out.shape == (2, 90, 64)


def test_conversion_refuses_inconsistent_duplicates(checkpoints):
    state = dict(_official(checkpoints[1]))
    state["tcn.TCN.tcn.tcn.network.0.net.2.weight"] = state["tcn.TCN.tcn.tcn.network.0.net.2.weight"] + 1
    with pytest.raises(ValueError, match="does not duplicate"):
        convert_official_m2sgan(state)


def test_import_roundtrip_and_bad_files(checkpoints, tmp_path):
    kind, saved = import_virtualconductor(checkpoints[1], tmp_path / "gan.pt")
    assert kind == "m2sgan"
    a, b = load_m2sgan(saved), load_m2sgan(checkpoints[1])
    mel, noise = torch.rand(1, 450, 128), torch.randn(1, 5, 8)
    with torch.no_grad():
        torch.testing.assert_close(a(mel, noise), b(mel, noise))
    kind, saved = import_virtualconductor(checkpoints[0], tmp_path / "net.pt")
    assert kind == "m2snet" and load_m2snet(saved) is not None
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        import_virtualconductor(junk, tmp_path / "out.pt")
    with pytest.raises(ValueError, match="expected m2sgan"):
        load_m2sgan(checkpoints[0])
    assert not (tmp_path / "out.pt").exists()


def test_m2sgan_motion_beats_follow_the_music_better_than_shuffled_music(checkpoints, brahms, shuffled_mels):
    gan = str(checkpoints[1])
    motion = generate(brahms, "m2sgan", seed=0, checkpoint=gan)
    assert motion.positions.shape == (round(brahms.duration_s * 30), 13, 2)
    own = bc_seconds(brahms.beat_times, motion.positions)
    shuffled = [generate(dataclasses.replace(brahms, mel=mel), "m2sgan", seed=0, checkpoint=gan).positions
                for mel in shuffled_mels]  # fmt: skip
    assert own > np.mean([bc_seconds(brahms.beat_times, p) for p in shuffled]) + 0.03
    # ... and with the music's own beats better than with the beats moved half a beat.
    half_period = 30.0 / brahms.tempo_bpm
    assert own > bc_seconds(brahms.beat_times + half_period, motion.positions) + 0.03


def test_m2snet_prefers_matched_music_and_motion(checkpoints, brahms, shuffled_mels):
    net = load_m2snet(checkpoints[0])
    motion = torch.from_numpy(generate(brahms, "m2sgan", seed=0, checkpoint=str(checkpoints[1])).positions)[None]
    with torch.no_grad():
        matched = net(torch.from_numpy(brahms.mel)[None], motion).mean()
        mismatched = [net(torch.from_numpy(mel)[None], motion).mean() for mel in shuffled_mels]
    assert matched > max(mismatched) + 0.1


def test_sync_control_separates_following_this_music_from_looking_like_conducting(checkpoints, brahms):
    """M2S-Net also rates a motion for looking like real conducting, whatever the music: the control (the motion
    shifted against its music) measures that part, the gain the part that follows the music."""
    net = load_m2snet(checkpoints[0])
    motion = generate(brahms, "m2sgan", seed=0, checkpoint=str(checkpoints[1])).positions
    values = evaluate_motion(motion, beat_times=brahms.beat_times, mel=brahms.mel, m2snet=net)
    frames = len(motion)
    shifted = [sync_score(net, brahms.mel, np.roll(motion, round(frames * s), axis=0)) for s in (0.25, 0.5, 0.75)]
    assert values["sync_control"] == pytest.approx(np.mean(shifted), abs=1e-6)
    assert values["sync_gain"] == pytest.approx(values["sync"] - values["sync_control"])
    assert values["sync_control"] > 0.15  # shifted, it still looks like conducting to M2S-Net (measured 0.31)
    assert values["sync_gain"] > 0.2  # ... but much less so than with its own music (measured 0.84 - 0.31)
    # A motion that cannot follow the music (a held pose) gains nothing from its own music.
    still = np.repeat(motion.mean(axis=0, keepdims=True), frames, axis=0)
    held = evaluate_motion(still, beat_times=brahms.beat_times, mel=brahms.mel, m2snet=net)
    assert held["sync_gain"] == pytest.approx(0.0, abs=1e-6)
