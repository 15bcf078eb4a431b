"""Beat consistency (BC) between music and motion, on a seconds clock and in the seed-compatible variant.

BC (DanceFormer's "beat consistency", used by Diffusion-Conductor): the mean over music beats of
``exp(-d² / 2σ²)`` where ``d`` is the distance from the music beat to the nearest motion beat and σ = 3 motion
frames. Motion beats are the local minima (``scipy.signal.argrelextrema``, order 10) of the summed joint speed.
Music beats come from librosa's beat tracker run on the ConductorMotion100 mel (90 frames per second).

The reference evaluation compared 90 Hz music beat indices with 30 Hz motion beat indices; :func:`bc_seed`
reproduces that (to compare with published numbers), :func:`bc_seconds` puts both on one clock (seconds, σ = 0.1 s).
"""

from __future__ import annotations

import numpy as np

MEL_FPS = 90
MOTION_FPS = 30
#: BC's σ in motion frames (30 fps) -> 0.1 s.
SIGMA_FRAMES = 3.0


def motion_speed(positions: np.ndarray) -> np.ndarray:
    """Summed joint speed per frame ``(T,)`` float64 (image units per frame); frame 0 is 0.

    Args:
        positions: ``(T, J, D)`` joint positions.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[0] < 2:
        raise ValueError(f"positions must be (T>=2, J, D), got {positions.shape}")
    velocity = np.zeros_like(positions)
    velocity[1:] = positions[1:] - positions[:-1]
    return np.linalg.norm(velocity, axis=2).sum(axis=1)


def motion_beat_frames(positions: np.ndarray, order: int = 10) -> np.ndarray:
    """Motion beats: frame indices of local minima (strict, ``order`` frames each side) of the summed joint speed."""
    from scipy.signal import argrelextrema

    return argrelextrema(motion_speed(positions), np.less, order=order)[0].astype(np.int64)


def mel_beat_frames(mel: np.ndarray) -> np.ndarray:
    """Music beats as mel frame indices (90 Hz): librosa onset strength of the mel as a spectrogram, then its
    beat tracker with tightness 100 (the Diffusion-Conductor evaluation's recipe).

    Args:
        mel: ``(T90, 128)`` ConductorMotion100 mel.
    """
    import librosa

    hop = 512
    sr = MEL_FPS * hop
    envelope = librosa.onset.onset_strength(S=np.asarray(mel, dtype=np.float32).T, sr=sr)
    _, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=sr, hop_length=hop, tightness=100)
    return np.asarray(beats, dtype=np.int64)


def beat_consistency(music_beats: np.ndarray, motion_beats: np.ndarray, sigma: float) -> float:
    """Mean over ``music_beats`` of ``exp(-d² / 2σ²)``, ``d`` = distance to the nearest of ``motion_beats`` (same
    unit as ``sigma``). 0 when either list is empty."""
    music_beats = np.asarray(music_beats, dtype=np.float64)
    motion_beats = np.asarray(motion_beats, dtype=np.float64)
    if music_beats.size == 0 or motion_beats.size == 0:
        return 0.0
    d = np.abs(music_beats[:, None] - motion_beats[None, :]).min(axis=1)
    return float(np.mean(np.exp(-(d**2) / (2.0 * sigma**2))))


def bc_seconds(music_beat_times: np.ndarray, positions: np.ndarray, fps: float = MOTION_FPS) -> float:
    """BC on one clock: music beat times (s) against motion beat times (motion frame / fps), σ = 3 frames / fps."""
    motion_times = motion_beat_frames(positions) / float(fps)
    return beat_consistency(music_beat_times, motion_times, SIGMA_FRAMES / float(fps))


def bc_seed(mel: np.ndarray, positions: np.ndarray) -> float:
    """The seed-compatible BC: 90 Hz mel beat indices against 30 Hz motion beat indices, σ = 3 (index units).

    Kept only to compare with numbers published with the reference code; it mixes clocks, so prefer
    :func:`bc_seconds`.
    """
    return beat_consistency(mel_beat_frames(mel), motion_beat_frames(positions), SIGMA_FRAMES)
