"""Audio front end: the ConductorMotion100 mel recipe, formats, beats/meter, and refusal of bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile

from backend.conductor.synth import synthesize_demo_piece
from models.conductor.audio import (
    SAMPLE_RATE,
    analyze_audio,
    analyze_signal,
    audio_duration,
    conductor_mel,
    estimate_meter,
    resize_time_linear,
)

SR = SAMPLE_RATE


@pytest.fixture(scope="module")
def waltz() -> np.ndarray:
    """10 s of the synthesised demo piece: 3/4 at 112 BPM, downbeats at multiples of 3 beats from t = 0."""
    return synthesize_demo_piece(seconds=10.0, bpm=112.0, meter=3)


def test_mel_recipe_shape_range_and_3_to_1_ratio(waltz):
    features = analyze_signal(waltz, SR)
    t30 = round(10.0 * 30)
    assert features.loudness.shape == (t30,)
    assert features.mel.shape == (3 * t30, 128)  # 90 Hz : 30 Hz exactly 3:1
    assert features.mel.dtype == np.float32
    assert 0.0 <= features.mel.min() and features.mel.max() <= 1.0
    assert features.mel.max() == pytest.approx(1.0, abs=1e-3)  # power_to_db(ref=max) -> the loudest bin is 1


def test_mel_frequency_axis_is_flipped():
    t = np.arange(int(6 * SR)) / SR
    low = conductor_mel((0.5 * np.sin(2 * np.pi * 110 * t)).astype(np.float32))
    high = conductor_mel((0.5 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32))
    # Flipped: bin 0 is the highest frequency, bin 127 the lowest.
    assert np.argmax(low.mean(0)) > 100
    assert np.argmax(high.mean(0)) < 40


def test_time_resize_matches_opencv_linear_formula():
    source = np.arange(10, dtype=np.float32)[None, :]
    resized = resize_time_linear(source, 25)[0]
    x = np.clip((np.arange(25) + 0.5) * 10 / 25 - 0.5, 0, 9)  # half-pixel centres, clamped at the edges
    np.testing.assert_allclose(resized, x, atol=1e-6)
    assert resize_time_linear(source, 10)[0].tolist() == source[0].tolist()


def test_any_rate_stereo_flac_and_mp3_match_mono_wav(tmp_path, waltz):
    import librosa

    mono = tmp_path / "mono.wav"
    soundfile.write(mono, waltz, SR)
    stereo44 = librosa.resample(waltz, orig_sr=SR, target_sr=44100)
    flac = tmp_path / "stereo.flac"
    soundfile.write(flac, np.stack([stereo44, stereo44], axis=1), 44100)
    mp3 = tmp_path / "music.mp3"
    soundfile.write(mp3, waltz, SR, format="MP3")
    reference = analyze_audio(mono)
    for path in (flac, mp3):
        other = analyze_audio(path)
        assert abs(other.duration_s - reference.duration_s) < 0.06
        frames = min(len(other.mel), len(reference.mel))
        assert np.abs(other.mel[:frames] - reference.mel[:frames]).mean() < 0.05
        assert abs(other.tempo_bpm - reference.tempo_bpm) < 3.0


def test_beats_tempo_meter_and_downbeats_of_a_known_piece(waltz):
    features = analyze_signal(waltz, SR)
    assert features.tempo_bpm == pytest.approx(112.0, rel=0.03)
    assert features.meter == 3
    period = 60.0 / 112.0
    true_downbeats = np.arange(0, 10.0, 3 * period)
    error = np.abs(features.downbeat_times[:, None] - true_downbeats[None, :]).min(axis=1)
    assert np.median(error) < 0.1
    assert set(np.round(features.downbeat_times, 6)) <= set(np.round(features.beat_times, 6))


@pytest.mark.parametrize("meter", [2, 3, 4])
def test_estimate_meter_from_accents(meter):
    rng = np.random.default_rng(meter)
    accents = np.where(np.arange(48) % meter == 1, 1.0, 0.3) + rng.normal(0, 0.05, 48)
    assert estimate_meter(accents) == (meter, 1)


def test_loudness_follows_a_crescendo():
    t = np.arange(int(8 * SR)) / SR
    ramp = 0.6 * 10.0 ** (-2.0 + 2.0 * t / 8) * np.sin(2 * np.pi * 330 * t)  # -40 dB -> 0 dB over 8 s
    loudness = analyze_signal(ramp.astype(np.float32), SR).loudness
    assert loudness[30:90].mean() < loudness[-90:-30].mean() - 0.5
    assert np.all(np.diff(loudness[15:-15]) > -0.01)  # rises steadily
    assert 0.0 <= loudness.min() and loudness.max() <= 1.0


def _write_wav_header(path: Path, seconds: float, rate: int = 8000) -> None:
    """A 16-bit mono WAV whose header claims ``seconds`` (a sparse file: no disk space is used)."""
    data_bytes = int(seconds * rate) * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + data_bytes)


def test_bad_inputs_give_clear_errors(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 100)
    with pytest.raises(ValueError, match="not a readable audio file"):
        analyze_audio(text)

    corrupt = tmp_path / "corrupt.wav"
    soundfile.write(corrupt, np.zeros(SR * 6, np.float32) + 0.1, SR)
    raw = bytearray(corrupt.read_bytes())
    raw[8:16] = b"JUNKJUNK"  # break "WAVEfmt " in the RIFF header
    corrupt.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="not a readable audio file"):
        analyze_audio(corrupt)

    silence = tmp_path / "silence.wav"
    soundfile.write(silence, np.zeros(SR * 6, np.float32), SR)
    with pytest.raises(ValueError, match="silent"):
        analyze_audio(silence)

    short = tmp_path / "short.wav"
    soundfile.write(short, np.sin(np.arange(SR // 2) * 0.05).astype(np.float32), SR)
    with pytest.raises(ValueError, match=r"0\.50 s long; .*at least 5 s"):
        analyze_audio(short)

    two_hours = tmp_path / "two_hours.wav"
    _write_wav_header(two_hours, 7200.0)
    assert audio_duration(two_hours) == pytest.approx(7200.0)
    with pytest.raises(ValueError, match=r"120\.0 min long; .*at most 20 min"):
        analyze_audio(two_hours)  # refused from the header, before decoding

    with pytest.raises(FileNotFoundError):
        analyze_audio(tmp_path / "missing.ogg")
