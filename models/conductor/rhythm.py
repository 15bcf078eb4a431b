"""Explicit rhythm condition for the Diffusion-Conductor: beat phase, bar phase, meter, onsets, level — from the mel.

Why: the denoiser's only per-frame view of the music is the M2S music encoder's 64-d features, whose receptive
field is a fraction of a second, and its attention is *linear* (global averages over the window), so it cannot
tell where a frame lies between two beats. A conductor's pattern is a function of exactly that: the ictus falls on
the beat, the bar position picks the direction. Dance-generation models condition on the same kind of explicit
rhythm descriptors (FACT / AIST++, Li et al. 2021: onset envelope and beat one-hot from librosa next to MFCC and
chroma); here they are turned into continuous phases that a per-frame network can use.

Onsets and level come from the ConductorMotion100 mel ``(T90, 128)``; the beat grid (beats, meter, downbeats) is
the one the motion was made to when it is known — the audio front end's (:class:`MusicFeatures`) at inference, the
teacher's in a synthetic corpus (``beats.json`` beside ``mel.npy``) — and is otherwise estimated from the mel
(ConductorMotion100 ships no audio):

- beats: librosa's dynamic-programming beat tracker on the mel's onset strength (as in
  :func:`models.metrics.beats.mel_beat_frames`), with the envelope delayed by ``ENVELOPE_DELAY_FRAMES`` so that its
  clock matches the audio front end's tracker (librosa centres an onset envelope by ``lag + n_fft // (2·hop)`` = 3
  frames of *its* hop: 70 ms at the audio path's 512-sample hop, 33 ms on the 90 Hz mel; the extra 3 mel frames
  close the gap — on Brahms the median offset between the two trackers' beats drops from −37 ms to −4 ms);
- meter (2, 3, 4) and downbeats: :func:`models.conductor.audio.estimate_meter` on per-beat accents (broadband onset
  strength + onset strength of the bands below ~300 Hz, the last rows of the flipped mel), as the audio front end
  does on the waveform;
- per 30 fps frame (``RHYTHM_DIM`` = 9 channels):

  ======  =========================================================================================
  0       onset strength, max over the frame's three mel frames, divided by the piece's 99th percentile, clipped
  1, 2    sin, cos of 2π · beat phase (0 on a beat, rising linearly to 1 at the next one)
  3, 4    sin, cos of 2π · bar phase ((beat index in bar + beat phase) / meter; 0 on a downbeat)
  5       level: mean mel value, 0 at the piece's 5th percentile, 1 at its 95th, clipped
  6-8     meter one-hot (2, 3, 4)
  ======  =========================================================================================

The beat grid is extended at the local beat period before the first and after the last detected beat, so every
frame has a phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEL_FPS = 90
MOTION_FPS = 30
#: Rhythm channels per motion frame (see the module docstring).
RHYTHM_DIM = 9
#: Rows of the flipped ConductorMotion100 mel below ~300 Hz (128 Slaney mel bands over 0-11025 Hz).
LOW_BAND_ROWS = 12
METERS = (2, 3, 4)
#: Delay (90 Hz frames) of the mel onset envelope that puts mel beats on the audio beat tracker's clock.
ENVELOPE_DELAY_FRAMES = 3


@dataclass(frozen=True)
class BeatGrid:
    """Beats, meter and downbeats of a piece, seconds.

    Attributes:
        beat_times: (B,) float64 beat times in seconds, increasing.
        meter: beats per bar (2, 3 or 4).
        first_downbeat: index into ``beat_times`` of the first downbeat (< meter).
    """

    beat_times: np.ndarray
    meter: int
    first_downbeat: int

    def __post_init__(self) -> None:
        times = np.asarray(self.beat_times, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "beat_times", times)
        if not np.isfinite(times).all() or (times.size > 1 and (np.diff(times) <= 0).any()):
            raise ValueError("beat_times must be finite and strictly increasing")
        if self.meter not in METERS:
            raise ValueError(f"meter must be one of {METERS}, got {self.meter!r}")
        if not 0 <= int(self.first_downbeat) < max(1, self.meter):
            raise ValueError(f"first_downbeat must be in [0, meter), got {self.first_downbeat!r}")

    @property
    def downbeat_times(self) -> np.ndarray:
        """(D,) float64 times of the first beat of every bar."""
        return self.beat_times[self.first_downbeat::self.meter]

    @classmethod
    def from_features(cls, features) -> BeatGrid:
        """The grid of :class:`models.conductor.audio.MusicFeatures` (the audio front end's beats and meter)."""
        beats = np.asarray(features.beat_times, dtype=np.float64)
        downbeats = np.asarray(features.downbeat_times, dtype=np.float64)
        first = int(np.abs(beats - downbeats[0]).argmin()) % int(features.meter) if beats.size and downbeats.size else 0
        return cls(beats, int(features.meter), first)

    def shifted(self, offset_s: float) -> BeatGrid:
        """The same grid on a clock that starts ``offset_s`` seconds later (for a clip cut out of a piece)."""
        return BeatGrid(self.beat_times - float(offset_s), self.meter, self.first_downbeat)

    def to_dict(self) -> dict:
        return {"beat_times": [round(float(t), 6) for t in self.beat_times], "meter": int(self.meter),
                "first_downbeat": int(self.first_downbeat)}

    @classmethod
    def from_dict(cls, data: dict) -> BeatGrid:
        """Raises ValueError on missing keys or bad values."""
        try:
            return cls(np.asarray(data["beat_times"], dtype=np.float64), int(data["meter"]),
                       int(data["first_downbeat"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a beat grid ({exc!r}); need beat_times, meter, first_downbeat") from None


#: Optional file in a ConductorMotion100-layout sample folder: the beat grid the motion was made to (synthetic
#: corpora write it; ConductorMotion100 has none, and its grid is estimated from the mel).
BEATS_FILE = "beats.json"


def read_sample_grid(sample_dir) -> BeatGrid | None:
    """The :data:`BEATS_FILE` grid of a sample folder, or ``None`` when it has none.

    Raises:
        ValueError: the file exists but is not a valid grid (the message names it).
    """
    import json
    from pathlib import Path

    if sample_dir is None:
        return None
    path = Path(sample_dir) / BEATS_FILE
    if not path.is_file():
        return None
    try:
        return BeatGrid.from_dict(json.loads(path.read_text()))
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def _validate_mel(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or mel.shape[1] != 128 or mel.shape[0] < 3:
        raise ValueError(f"mel must be (T90 >= 3, 128), got {mel.shape}")
    if not np.isfinite(mel).all():
        raise ValueError("mel holds NaN or infinity")
    return mel


def _onset_envelope(spectrogram: np.ndarray) -> np.ndarray:
    """Onset strength at 90 Hz, (T90,) float32: librosa spectral flux of a (T90, bands) slice of the mel."""
    import librosa

    return librosa.onset.onset_strength(S=spectrogram.T, sr=MEL_FPS * 512)[: spectrogram.shape[0]].astype(np.float32)


def beat_grid_from_mel(mel: np.ndarray) -> BeatGrid:
    """Beat times, meter and first downbeat of a ConductorMotion100 mel.

    Args:
        mel: (T90, 128) float32 mel at 90 Hz (frequency axis flipped, as the recipe writes it).

    Returns:
        :class:`BeatGrid`; an empty ``beat_times`` when the tracker finds no beat (e.g. a drone).

    Raises:
        ValueError: wrong shape or non-finite values.
    """
    mel = _validate_mel(mel)
    return _grid_from_envelope(mel, _onset_envelope(mel))


def _grid_from_envelope(mel: np.ndarray, full: np.ndarray) -> BeatGrid:
    """:func:`beat_grid_from_mel` given the mel's (validated) broadband onset envelope."""
    import librosa

    from models.conductor.audio import estimate_meter

    delayed = np.concatenate([np.zeros(ENVELOPE_DELAY_FRAMES, np.float32), full])[: len(full)]
    _, frames = librosa.beat.beat_track(onset_envelope=delayed, sr=MEL_FPS * 512, hop_length=512)
    frames = np.asarray(frames, dtype=np.int64)
    beat_times = frames.astype(np.float64) / MEL_FPS
    if frames.size == 0:
        return BeatGrid(beat_times, 4, 0)
    low = _onset_envelope(mel[:, -LOW_BAND_ROWS:])
    accents = []
    for f in frames - ENVELOPE_DELAY_FRAMES:  # back on the envelopes' own clock
        lo, hi = max(0, f - 4), max(1, min(len(full), f + 5))
        accents.append(full[lo:hi].max() / (full.max() + 1e-9) + low[lo:hi].max() / (low.max() + 1e-9))
    meter, first = estimate_meter(np.asarray(accents))
    return BeatGrid(beat_times, int(meter), int(first))


def beat_phase(beat_times: np.ndarray, times: np.ndarray, default_period: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Beat phase and beat index at ``times``.

    The grid is extended before the first and after the last beat at the period of the neighbouring beats
    (``default_period`` seconds when there are fewer than two beats).

    Args:
        beat_times: (B,) increasing beat times, seconds.
        times: (N,) query times, seconds.

    Returns:
        ``(phase (N,) float64 in [0, 1), index (N,) int64)``: index of the beat at or before each time (negative
        before the first beat) and the fraction of the way to the next one.
    """
    beats = np.asarray(beat_times, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if beats.size < 2:
        period = default_period
        origin = beats[0] if beats.size else 0.0
        pos = (times - origin) / period
    else:
        first_period = beats[1] - beats[0]
        last_period = beats[-1] - beats[-2]
        pos = np.interp(times, beats, np.arange(beats.size, dtype=np.float64))
        before = times < beats[0]
        after = times > beats[-1]
        pos[before] = (times[before] - beats[0]) / first_period
        pos[after] = beats.size - 1 + (times[after] - beats[-1]) / last_period
    index = np.floor(pos).astype(np.int64)
    return pos - index, index


def rhythm_features(mel: np.ndarray, frames: int | None = None, grid: BeatGrid | None = None) -> np.ndarray:
    """Per-frame rhythm condition at 30 fps (see the module docstring for the channels).

    Args:
        mel: (T90, 128) float32 ConductorMotion100 mel at 90 Hz.
        frames: motion frames wanted (default ``T90 // 3``); features past the mel's end repeat its last values
            for onset and level and continue the beat grid.
        grid: a precomputed :class:`BeatGrid` (default :func:`beat_grid_from_mel` of ``mel``).

    Returns:
        (frames, RHYTHM_DIM) float32.

    Raises:
        ValueError: a malformed mel or ``frames < 1``.
    """
    mel = _validate_mel(mel)
    frames = mel.shape[0] // 3 if frames is None else int(frames)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    full = _onset_envelope(mel)
    grid = _grid_from_envelope(mel, full) if grid is None else grid

    def per_frame(signal90: np.ndarray, reduce) -> np.ndarray:
        """90 Hz -> 30 Hz over the frames the mel covers (normalised there, so padding changes nothing)."""
        usable = max(3, (len(signal90) // 3) * 3)
        return reduce(signal90[:usable].reshape(-1, 3), axis=1)

    def hold(values: np.ndarray) -> np.ndarray:
        if values.size < frames:
            values = np.concatenate([values, np.repeat(values[-1:], frames - values.size)])
        return values[:frames]

    onset = per_frame(full, np.max)
    onset = hold(np.clip(onset / (np.percentile(onset, 99) + 1e-6), 0.0, 1.0))
    level = per_frame(mel.mean(axis=1), np.mean)
    lo, hi = np.percentile(level, 5), np.percentile(level, 95)
    level = hold(np.clip((level - lo) / max(hi - lo, 1e-6), 0.0, 1.0))
    times = (np.arange(frames, dtype=np.float64) + 0.5) / MOTION_FPS
    phase, index = beat_phase(grid.beat_times, times)
    in_bar = np.mod(index - grid.first_downbeat, grid.meter)
    bar = (in_bar + phase) / grid.meter
    out = np.zeros((frames, RHYTHM_DIM), dtype=np.float32)
    out[:, 0] = onset
    out[:, 1], out[:, 2] = np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase)
    out[:, 3], out[:, 4] = np.sin(2 * np.pi * bar), np.cos(2 * np.pi * bar)
    out[:, 5] = level
    out[:, 6 + METERS.index(grid.meter)] = 1.0
    return out
