"""Spoken-instruction audio checks: every kind of bad audio is refused with a message naming what was wrong;
good audio comes back as 16 kHz mono float32 (resampled, channels averaged)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from models.speech.audio import AudioError, check_instruction, level_dbfs, load_instruction

RATE = 16000


def _tone(seconds: float, rate: int = RATE, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_good_audio_is_resampled_to_16k_mono(tmp_path):
    stereo = np.stack([_tone(2.0, 44100), _tone(2.0, 44100)], axis=1)
    sf.write(tmp_path / "a.wav", stereo, 44100)
    audio = load_instruction(tmp_path / "a.wav")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 2 * RATE) <= 2
    assert abs(level_dbfs(audio) - level_dbfs(_tone(2.0))) < 0.5
    telephone = check_instruction(_tone(1.0, 8000), 8000)
    assert abs(len(telephone) - RATE) <= 2


@pytest.mark.parametrize(
    "audio, rate, message",
    [
        (np.zeros(2 * RATE, np.float32), RATE, "silent"),
        (_tone(0.3), RATE, "too short"),
        (_tone(600.0, 8000), 8000, "too long"),
        (_tone(2.0, 4000), 4000, "sample rate 4000 Hz"),
        (np.full(RATE, np.nan, np.float32), RATE, "NaN"),
    ],
    ids=["silence", "0.3s", "10min", "4kHz", "nan"],
)
def test_bad_audio_is_refused_with_the_reason(audio, rate, message):
    with pytest.raises(AudioError, match=message):
        check_instruction(audio, rate, name="clip.wav")


def test_unreadable_and_missing_files(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not audio")
    with pytest.raises(AudioError, match="corrupt.wav: not a readable audio file"):
        load_instruction(corrupt)
    with pytest.raises(FileNotFoundError):
        load_instruction(tmp_path / "missing.wav")
    # a truncated real file: the header promises more data than there is
    sf.write(tmp_path / "full.wav", _tone(2.0), RATE)
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:40])
    with pytest.raises(AudioError):
        load_instruction(tmp_path / "cut.wav")
