"""The conductor's audio front end: load music, the ConductorMotion100 mel recipe, beats, meter and loudness.

Facts implemented (../shared/DESIGN.md §4): ConductorMotion100 pairs a ``(T90, 128)`` mel at 90 Hz with a
``(T30, 13, 2)`` motion at 30 Hz, ratio exactly 3:1. The mel recipe of the reference data: ``librosa.load`` at
22050 Hz (mono) -> ``melspectrogram(n_mels=128, hop_length=256)`` -> ``power_to_db(ref=max)`` -> ``|dB + 80| / 80``
-> flip the frequency axis -> resize the time axis to ``duration * 90`` frames (bilinear, half-pixel centres, as
OpenCV's ``cv2.resize`` does) -> transpose to ``(T90, 128)``.

We fix ``T30 = round(duration_s * 30)`` and ``T90 = 3 * T30`` so that mel and motion frames always line up exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.paths import user_cache_dir
from models.progress import Progress

#: Sample rate of the mel recipe (librosa's default).
SAMPLE_RATE = 22050
#: Mel frames per second and motion frames per second (ratio 3:1).
MEL_FPS = 90
MOTION_FPS = 30
N_MELS = 128
HOP_LENGTH = 256
#: Accepted music length, seconds.
MIN_DURATION_S = 5.0
MAX_DURATION_S = 20 * 60.0
#: Peak amplitude (full scale 1.0) below which a file counts as silence (-80 dBFS).
SILENCE_PEAK = 1e-4
#: File endings the front end accepts.
AUDIO_SUFFIXES = (".wav", ".ogg", ".oga", ".flac", ".mp3")


@dataclass(eq=False)
class MusicFeatures:
    """Everything the conductor generators need to know about a piece of music.

    Attributes:
        mel: ``(T90, 128)`` float32 in [0, 1], ConductorMotion100 recipe, 90 frames per second, high frequencies
            first (the recipe flips the frequency axis).
        duration_s: length of the music in seconds.
        beat_times: ``(B,)`` float64 beat times in seconds (librosa's dynamic-programming beat tracker).
        tempo_bpm: global tempo, beats per minute.
        meter: beats per bar, 2, 3 or 4 (estimated from accents on the beats).
        downbeat_times: ``(D,)`` float64 times of the first beat of each bar, seconds (a subset of ``beat_times``).
        loudness: ``(T30,)`` float32 loudness contour in [0, 1] at 30 frames per second (RMS level in dB mapped
            from 40 dB below the piece's loud passages (0) to its loud passages (1), smoothed over 0.25 s).
        sample_rate: sample rate of the analysed signal (22050 Hz).
        path: the file analysed (``""`` for in-memory signals).
    """

    mel: np.ndarray
    duration_s: float
    beat_times: np.ndarray
    tempo_bpm: float
    meter: int
    downbeat_times: np.ndarray
    loudness: np.ndarray
    sample_rate: int = SAMPLE_RATE
    path: str = ""

    @property
    def num_motion_frames(self) -> int:
        """``T30``: motion frames at 30 fps for this music (``mel`` has exactly three times as many)."""
        return int(self.loudness.shape[0])


def _prepare_numba() -> None:
    """Point numba's cache at a writable per-user folder before librosa compiles its beat tracker (unless set)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(user_cache_dir() / "numba"))


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds read from the file header (no decoding).

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when the file is not audio in a format we read (wav/ogg/flac/mp3) or its header is corrupt.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a readable audio file ({exc}); expected WAV, OGG, FLAC or MP3 music"
        ) from None
    if info.samplerate <= 0 or info.frames <= 0:
        raise ValueError(f"{path}: audio header reports no samples (corrupt or empty file)")
    return float(info.frames) / float(info.samplerate)


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode ``path`` as mono float32 at 22050 Hz (``librosa.load`` defaults), after checking the header.

    Returns:
        ``(samples (N,) float32 in [-1, 1], 22050)``.

    Raises:
        FileNotFoundError: missing file.
        ValueError: non-audio or corrupt file; shorter than 5 s or longer than 20 min (checked from the header
            before decoding); silence (peak below -80 dBFS).
    """
    duration = audio_duration(path)
    _check_duration(duration, str(path))
    import librosa

    try:
        samples, sr = librosa.load(str(path), sr=SAMPLE_RATE, mono=True)
    except Exception as exc:  # decoder errors come in many types (soundfile, audioread, EOFError)
        raise ValueError(f"{path}: audio could not be decoded ({type(exc).__name__}: {exc})") from None
    _check_signal(samples, str(path))
    return samples.astype(np.float32), int(sr)


def _check_duration(duration: float, where: str) -> None:
    if duration < MIN_DURATION_S:
        raise ValueError(
            f"{where}: music is {duration:.2f} s long; the conductor needs at least {MIN_DURATION_S:g} s"
        )
    if duration > MAX_DURATION_S:
        raise ValueError(
            f"{where}: music is {duration / 60:.1f} min long; the conductor accepts at most "
            f"{MAX_DURATION_S / 60:g} min (cut the piece into movements)"
        )


def _check_signal(samples: np.ndarray, where: str) -> None:
    if samples.size == 0 or not np.isfinite(samples).all():
        raise ValueError(f"{where}: decoded audio is empty or holds NaN/infinity")
    peak = float(np.abs(samples).max())
    if peak < SILENCE_PEAK:
        raise ValueError(f"{where}: audio is silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS); need music")


def resize_time_linear(array: np.ndarray, frames: int) -> np.ndarray:
    """Resize ``(F, T)`` to ``(F, frames)`` along time, bilinear with half-pixel centres and edge clamping.

    This is what ``cv2.resize(array, (frames, F))`` (INTER_LINEAR) does to the time axis when the frequency axis
    keeps its size, used by the ConductorMotion100 mel recipe.
    """
    source = array.shape[1]
    x = (np.arange(frames, dtype=np.float64) + 0.5) * (source / frames) - 0.5
    x = np.clip(x, 0.0, source - 1)
    left = np.floor(x).astype(np.int64)
    right = np.minimum(left + 1, source - 1)
    frac = (x - left).astype(np.float32)
    return array[:, left] * (1.0 - frac) + array[:, right] * frac


def conductor_mel(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, frames_90: int | None = None) -> np.ndarray:
    """The ConductorMotion100 mel spectrogram of a mono 22050 Hz signal.

    Args:
        samples: ``(N,)`` float mono signal at ``sample_rate``.
        sample_rate: must be 22050 (the recipe's rate).
        frames_90: output frames; default ``3 * round(N / sample_rate * 30)``.

    Returns:
        ``(frames_90, 128)`` float32 in [0, 1].
    """
    import librosa

    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"the ConductorMotion100 mel recipe needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    if frames_90 is None:
        frames_90 = 3 * int(round(len(samples) / sample_rate * MOTION_FPS))
    mel = librosa.feature.melspectrogram(y=samples, sr=sample_rate, n_mels=N_MELS, hop_length=HOP_LENGTH)
    mel_db = librosa.power_to_db(mel, ref=np.max)
    norm = np.flip(np.abs(mel_db + 80.0) / 80.0, axis=0).astype(np.float32)
    return np.ascontiguousarray(resize_time_linear(norm, frames_90).T, dtype=np.float32)


def estimate_meter(accents: np.ndarray) -> tuple[int, int]:
    """Beats per bar and the index of the first downbeat from per-beat accent strengths.

    For each meter ``m`` in (2, 3, 4) and phase ``p`` the contrast is the mean accent on beats ``p, p+m, ...`` minus
    the mean on the other beats, in units of the accents' standard deviation; the best (m, p) wins. A regular
    accent every ``m`` beats scores highest at that ``m`` (a 4-pattern scores half as much as 2, a 2-pattern
    scores two thirds as much as 4). Fewer than 8 beats or flat accents give (4, 0).

    Args:
        accents: ``(B,)`` accent strength per beat (any non-negative scale).

    Returns:
        ``(meter, first_downbeat_index)`` with ``first_downbeat_index < meter``.
    """
    accents = np.asarray(accents, dtype=np.float64)
    if accents.size < 8 or accents.std() < 1e-9:
        return 4, 0
    z = (accents - accents.mean()) / accents.std()
    best = (-np.inf, 4, 0)
    for meter in (4, 3, 2):  # ties resolve to the larger meter
        for phase in range(meter):
            mask = np.zeros(z.size, dtype=bool)
            mask[phase::meter] = True
            score = z[mask].mean() - z[~mask].mean()
            if score > best[0] + 1e-9:
                best = (score, meter, phase)
    return best[1], best[2]


def loudness_contour(samples: np.ndarray, sample_rate: int, frames_30: int) -> np.ndarray:
    """``(frames_30,)`` float32 loudness in [0, 1] at 30 fps: RMS dB, 0 at 40 dB below the 95th percentile, 1 at it,
    smoothed with a 0.25 s moving average."""
    import librosa

    hop = sample_rate / MOTION_FPS
    rms = librosa.feature.rms(y=samples, frame_length=2048, hop_length=int(round(hop)), center=True)[0]
    db = 20.0 * np.log10(np.maximum(rms, 1e-10))
    top = np.percentile(db, 95)
    level = np.clip((db - (top - 40.0)) / 40.0, 0.0, 1.0)
    width = max(1, int(round(0.25 * MOTION_FPS)))
    level = np.convolve(np.pad(level, (width, width), mode="edge"), np.ones(width) / width, mode="same")[width:-width]
    level = resize_time_linear(level[None, :].astype(np.float32), frames_30)[0]
    return np.clip(level, 0.0, 1.0).astype(np.float32)


def analyze_signal(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, *, path: str = "",
                   progress: Progress | None = None) -> MusicFeatures:
    """:func:`analyze_audio` for an in-memory mono signal at 22050 Hz (same checks on length and silence)."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected a mono signal (N,), got shape {samples.shape}")
    where = path or "signal"
    _check_duration(len(samples) / sample_rate, where)
    _check_signal(samples, where)
    _prepare_numba()
    import librosa

    duration = len(samples) / sample_rate
    frames_30 = int(round(duration * MOTION_FPS))
    if progress:
        progress.update(0.2, "mel spectrogram")
    mel = conductor_mel(samples, sample_rate, 3 * frames_30)
    if progress:
        progress.update(0.45, "beat tracking")
    hop = 512
    onset = librosa.onset.onset_strength(y=samples, sr=sample_rate, hop_length=hop)
    tempo, beats = librosa.beat.beat_track(onset_envelope=onset, sr=sample_rate, hop_length=hop, units="frames")
    tempo = float(np.atleast_1d(tempo)[0])
    beat_times = librosa.frames_to_time(beats, sr=sample_rate, hop_length=hop).astype(np.float64)
    if progress:
        progress.update(0.75, "meter and loudness")
    # Accent per beat: broadband onset strength plus low-band (< 300 Hz) onset strength near the beat (bass notes
    # and kick drums mark downbeats), each scaled to its maximum.
    low_mel = librosa.feature.melspectrogram(y=samples, sr=sample_rate, n_mels=24, hop_length=hop, fmax=300.0)
    low = librosa.onset.onset_strength(S=librosa.power_to_db(low_mel, ref=np.max), sr=sample_rate, hop_length=hop)
    accents = []
    for frame in beats:
        lo, hi = max(0, frame - 2), min(len(onset), frame + 3)
        accents.append(onset[lo:hi].max() / (onset.max() + 1e-9) + low[lo:hi].max() / (low.max() + 1e-9))
    meter, first = estimate_meter(np.asarray(accents))
    downbeats = beat_times[first::meter]
    loudness = loudness_contour(samples, sample_rate, frames_30)
    if progress:
        progress.update(1.0, "music analysed")
    return MusicFeatures(
        mel=mel, duration_s=float(duration), beat_times=beat_times, tempo_bpm=tempo, meter=int(meter),
        downbeat_times=downbeats.astype(np.float64), loudness=loudness, sample_rate=sample_rate, path=path,
    )


def analyze_audio(path: str | os.PathLike, progress: Progress | None = None) -> MusicFeatures:
    """Load a music file and compute the conductor's :class:`MusicFeatures`.

    Accepts WAV, OGG, FLAC and MP3 at any sample rate, mono or stereo (mixed down), 5 s to 20 min.

    Raises:
        FileNotFoundError: missing file.
        ValueError: not audio / corrupt header, shorter than 5 s, longer than 20 min (from the header, before
            decoding), or silence. The message names the file and the limit.
    """
    if progress:
        progress.update(0.0, "loading audio")
    samples, sr = load_audio(path)
    return analyze_signal(samples, sr, path=str(path), progress=progress)
