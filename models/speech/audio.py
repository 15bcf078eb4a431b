"""Reading and checking a spoken-instruction recording.

Every path that takes speech (cascaded and end-to-end) reads it through :func:`load_instruction`, so bad audio is
refused the same way everywhere, before any model runs: a file that is not audio, a sample rate outside
:data:`MIN_RATE`..:data:`MAX_RATE`, a clip shorter than :data:`MIN_SECONDS` or longer than :data:`MAX_SECONDS`, and
a (near-)silent clip each raise :class:`AudioError` naming what was wrong. Whether the sound is *speech* (and not
music) is decided later, by the recogniser's confidence (:class:`NotUnderstoodError`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: Sample rate every speech model here works at (Hz).
SAMPLE_RATE = 16000
#: Accepted input sample rates (Hz); anything in between is resampled to 16 kHz (8 kHz telephone audio included).
MIN_RATE, MAX_RATE = 8000, 192000
#: Accepted instruction length (seconds).
MIN_SECONDS, MAX_SECONDS = 0.5, 10.0
#: RMS level (dBFS) below which a clip counts as silent.
SILENCE_DBFS = -55.0


class AudioError(ValueError):
    """The audio cannot be used as a spoken instruction (unreadable, wrong rate, too short / long, silent)."""


class NotUnderstoodError(ValueError):
    """The recogniser is not confident the audio holds a motion instruction ("I did not understand")."""


def level_dbfs(audio: np.ndarray) -> float:
    """RMS level of ``audio`` (float, full scale 1.0) in dBFS (``-inf`` for all zeros)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def check_instruction(audio: np.ndarray, rate: int, name: str = "audio") -> np.ndarray:
    """Check and convert a recording to a spoken instruction: ``(N,)`` float32 mono at :data:`SAMPLE_RATE`.

    Args:
        audio: ``(N,)`` or ``(N, channels)`` samples (float in [-1, 1] or integer PCM); channels are averaged.
        rate: its sample rate in Hz.
        name: how the audio is named in error messages.

    Raises:
        AudioError: rate outside ``MIN_RATE..MAX_RATE``, length outside ``MIN_SECONDS..MAX_SECONDS``, silence, or
            non-finite samples.
    """
    audio = np.asarray(audio)
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max)
    audio = audio.astype(np.float32, copy=False)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.ndim != 1:
        raise AudioError(f"{name}: expected mono or (samples, channels) audio, got shape {audio.shape}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{name}: sample rate {rate} Hz is not supported (use {MIN_RATE}-{MAX_RATE} Hz; "
                         f"16 kHz is best)")  # fmt: skip
    seconds = audio.shape[0] / rate
    if seconds < MIN_SECONDS:
        raise AudioError(f"{name}: {seconds:.2f} s is too short for an instruction (at least {MIN_SECONDS} s)")
    if seconds > MAX_SECONDS:
        raise AudioError(f"{name}: {seconds:.1f} s is too long for an instruction (at most {MAX_SECONDS:.0f} s; "
                         f"speak one instruction per recording)")  # fmt: skip
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{name}: the audio holds NaN or infinite samples")
    level = level_dbfs(audio)
    if level < SILENCE_DBFS:
        raise AudioError(f"{name}: the recording is silent (level {level:.0f} dBFS; is the microphone muted?)")
    if rate != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


def load_instruction(path: str | os.PathLike) -> np.ndarray:
    """Read an audio file (WAV / FLAC / OGG ..., anything libsndfile reads) as a checked spoken instruction.

    Returns:
        ``(N,)`` float32 mono at 16 kHz (:func:`check_instruction`).

    Raises:
        FileNotFoundError: the file does not exist.
        AudioError: the file is not readable audio, or fails :func:`check_instruction`.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:  # libsndfile raises LibsndfileError / RuntimeError for foreign or truncated files
        raise AudioError(f"{path.name}: not a readable audio file ({exc})") from exc
    return check_instruction(audio, int(rate), name=path.name)
