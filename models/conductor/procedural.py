"""A rule-based conductor: textbook 2/3/4 beat patterns timed to the music's beats, no weights.

The baton (right) hand traces the standard patterns (2: down-up; 3: down-right-up; 4: down-left-right-up, seen
from the conductor), landing on each pattern's ictus point exactly at the detected beat with zero velocity (so the
motion's speed minima fall on the beats), rebounding between beats. Pattern size follows the loudness contour; the
left hand mirrors the pattern softly and rises in a palm-up cue during crescendi; the head nods on downbeats.
Seeded variation (ictus scatter, rebound height, slow drift) keeps repeats from looking mechanical.

Output: COCO-13 keypoints ``(T30, 13, 2)`` at 30 fps in ConductorMotion100 image coordinates (y down, shoulder
width 0.2, hip midpoint (0.5, 0.75)). The conductor faces the camera, so the subject's right side is image left.

:class:`ProceduralStyle` holds every knob; :meth:`ProceduralStyle.random` draws a plausible style, which the
synthetic training corpus uses to vary its teacher.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from models.conductor.audio import MOTION_FPS, MusicFeatures

#: Rest pose, COCO-13 order, ConductorMotion100 image coordinates (y down); close to the mean pose of the official
#: M2S-GAN's output (trained on ConductorMotion100), made left/right symmetric.
REST_POSE = np.array(
    [
        [0.500, 0.390], [0.522, 0.370], [0.478, 0.370], [0.548, 0.375], [0.452, 0.375],  # nose, eyes, ears
        [0.598, 0.470], [0.402, 0.470],  # left / right shoulder
        [0.640, 0.600], [0.360, 0.600],  # left / right elbow
        [0.630, 0.640], [0.370, 0.640],  # left / right wrist
        [0.560, 0.750], [0.440, 0.750],  # left / right hip
    ],
    dtype=np.float64,
)  # fmt: skip
UPPER_ARM = 0.13  # 2D (foreshortened) arm lengths in image units
FOREARM = 0.12

#: Ictus points per meter in pattern units (u: towards the conductor's right, v: up). Beat 1 is always "down".
PATTERNS: dict[int, np.ndarray] = {
    2: np.array([[0.0, -1.0], [0.35, -0.55]]),
    3: np.array([[0.0, -1.0], [0.85, -0.75], [0.45, -0.35]]),
    4: np.array([[0.0, -1.0], [-0.75, -0.75], [0.85, -0.75], [0.35, -0.40]]),
}
#: Rebound height after each beat (pattern units); the last beat of the bar rebounds highest (preparation).
REBOUNDS: dict[int, np.ndarray] = {2: np.array([0.55, 0.95]), 3: np.array([0.45, 0.45, 0.85]),
                                   4: np.array([0.45, 0.40, 0.40, 0.80])}  # fmt: skip


@dataclass
class ProceduralStyle:
    """Knobs of the procedural conductor. Units: image coordinates (shoulder width = 0.2), seconds.

    The defaults were chosen against the official M2S-Net (trained on real ConductorMotion100 conductors): larger
    patterns, an active left hand and visible sway raise its music-motion sync score on Brahms from 0.20 to 0.38 and
    lower the FGD to M2S-GAN's motion from 57 to 38, with beat consistency unchanged.

    Attributes:
        size: pattern half-height at full loudness (image units).
        quiet_size: fraction of ``size`` used at zero loudness (0..1).
        rebound: multiplier of the rebound heights between beats.
        sharpness: exponent > 0 of the approach into each ictus (>1 arrives later and faster, "staccato").
        center_x, center_y: baton-hand pattern centre (image coordinates).
        left_hand: amplitude (0..1) of the left hand's mirrored pattern.
        cue_gain: height of the left-hand crescendo cue (image units).
        head_nod: nose dip at downbeats (image units).
        sway: amplitude of slow upper-body sway (image units).
        ictus_jitter: random scatter of ictus points (pattern units).
        rebound_jitter: relative random variation of rebound heights.
        timing_jitter_s: random offset of each ictus from its beat (s, standard deviation).
        lead_s: constant anticipation: ictus this many seconds before the beat (negative: behind).
        drift: amplitude of slow random drift of the pattern centre (image units).
    """

    size: float = 0.16
    quiet_size: float = 0.45
    rebound: float = 1.0
    sharpness: float = 1.0
    center_x: float = 0.35
    center_y: float = 0.54
    left_hand: float = 0.8
    cue_gain: float = 0.12
    head_nod: float = 0.02
    sway: float = 0.02
    ictus_jitter: float = 0.06
    rebound_jitter: float = 0.15
    timing_jitter_s: float = 0.008
    lead_s: float = 0.0
    drift: float = 0.03

    #: (low, high) ranges :meth:`random` draws from.
    RANGES = {
        "size": (0.09, 0.20), "quiet_size": (0.3, 0.7), "rebound": (0.6, 1.4), "sharpness": (0.85, 1.25),
        "center_x": (0.32, 0.39), "center_y": (0.49, 0.59), "left_hand": (0.2, 1.0), "cue_gain": (0.04, 0.16),
        "head_nod": (0.0, 0.03), "sway": (0.0, 0.03), "ictus_jitter": (0.0, 0.12), "rebound_jitter": (0.0, 0.3),
        "timing_jitter_s": (0.0, 0.015), "lead_s": (-0.02, 0.03), "drift": (0.0, 0.04),
    }  # fmt: skip

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value):
                raise ValueError(f"ProceduralStyle.{f.name} must be finite, got {value!r}")
        if self.size <= 0 or self.sharpness <= 0 or self.rebound < 0:
            raise ValueError("ProceduralStyle: size and sharpness must be > 0 and rebound >= 0")

    @classmethod
    def random(cls, rng: np.random.Generator | int | None = None) -> ProceduralStyle:
        """A style with every field drawn uniformly from :attr:`RANGES` (seeded by ``rng``)."""
        rng = np.random.default_rng(rng)
        return cls(**{name: float(rng.uniform(lo, hi)) for name, (lo, hi) in cls.RANGES.items()})

    def to_dict(self) -> dict[str, float]:
        """JSON-serialisable field values."""
        return asdict(self)


def beat_grid(features: MusicFeatures) -> tuple[np.ndarray, np.ndarray]:
    """Beat times extended at the tempo to cover the whole piece, and each beat's position in its bar.

    Returns:
        ``(times (B,) float64 seconds, bar_positions (B,) int in 0..meter-1)``; the first time is <= 0 and the last
        >= ``duration_s``, so every frame lies between two beats. Beat 0 of the bar is a downbeat.
    """
    meter = int(features.meter)
    beats = np.asarray(features.beat_times, dtype=np.float64)
    period = 60.0 / features.tempo_bpm if features.tempo_bpm > 0 else 0.5
    if beats.size < 2:
        beats = np.arange(0.0, features.duration_s + period, period)
    first_down = 0
    if len(features.downbeat_times):
        first_down = int(np.argmin(np.abs(beats - features.downbeat_times[0])))
    positions = (np.arange(beats.size) - first_down) % meter
    before = int(np.ceil(beats[0] / period)) + 1
    after = int(np.ceil((features.duration_s - beats[-1]) / period)) + 1
    head = beats[0] - period * np.arange(before, 0, -1)
    tail = beats[-1] + period * np.arange(1, after + 1)
    times = np.concatenate([head, beats, tail])
    bar = np.concatenate([(positions[0] - np.arange(before, 0, -1)) % meter, positions,
                          (positions[-1] + np.arange(1, after + 1)) % meter])  # fmt: skip
    return times, bar.astype(np.int64)


def _smooth_noise(rng: np.random.Generator, frames: int, seconds: float) -> np.ndarray:
    """Zero-mean noise in about [-1, 1] varying over ``seconds`` (cubic interpolation of random knots)."""
    from scipy.interpolate import CubicSpline

    step = max(2, int(seconds * MOTION_FPS))
    knots = np.arange(0, frames + 2 * step, step)
    spline = CubicSpline(knots, rng.uniform(-1, 1, knots.size))
    return spline(np.arange(frames))


def _crescendo(loudness: np.ndarray) -> np.ndarray:
    """Crescendo strength per frame in [0, 1]: positive slope of the loudness over about one second."""
    width = MOTION_FPS
    padded = np.pad(loudness, (width, width), mode="edge")
    slope = padded[2 * width:] - padded[:-2 * width]
    kernel = np.ones(width // 2) / (width // 2)
    return np.clip(np.convolve(slope, kernel, mode="same") * 2.5, 0.0, 1.0)


def _elbow(shoulder: np.ndarray, wrist: np.ndarray, outward: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone 2D IK: elbow positions ``(T, 2)`` for the given shoulder/wrist tracks (wrist pulled in if out of
    reach). The elbow always bends to the same side of the shoulder-wrist line (outward, image x sign ``outward``,
    when the hand hangs below the shoulder), so it never flips between frames. Returns (elbow, wrist)."""
    delta = wrist - shoulder
    dist = np.linalg.norm(delta, axis=1, keepdims=True)
    reach = UPPER_ARM + FOREARM - 1e-3
    wrist = np.where(dist > reach, shoulder + delta * (reach / np.maximum(dist, 1e-9)), wrist)
    delta = wrist - shoulder
    dist = np.maximum(np.linalg.norm(delta, axis=1, keepdims=True), 1e-6)
    along = (UPPER_ARM**2 - FOREARM**2 + dist**2) / (2 * dist)
    height = np.sqrt(np.maximum(UPPER_ARM**2 - along**2, 0.0))
    unit = delta / dist
    normal = np.stack([-unit[:, 1], unit[:, 0]], axis=1) * -np.sign(outward)
    return shoulder + unit * along + normal * height, wrist


def procedural_motion(features: MusicFeatures, style: ProceduralStyle | None = None, seed: int = 0) -> np.ndarray:
    """Conduct ``features`` with the rule-based conductor.

    Args:
        features: the analysed music (beats, meter, downbeats, loudness).
        style: the knobs; default :class:`ProceduralStyle()`.
        seed: seeds the natural variation (same seed and style -> identical output).

    Returns:
        ``(T30, 13, 2)`` float32 COCO-13 keypoints at 30 fps in [0, 1] image coordinates (y down),
        ``T30 = features.num_motion_frames``.
    """
    style = style or ProceduralStyle()
    rng = np.random.default_rng(seed)
    frames = features.num_motion_frames
    meter = int(features.meter) if int(features.meter) in PATTERNS else 4
    pattern, rebounds = PATTERNS[meter], REBOUNDS[meter]
    times, bar = beat_grid(features)
    times = times - style.lead_s + rng.normal(0.0, style.timing_jitter_s, times.size)
    times = np.maximum.accumulate(times + np.arange(times.size) * 1e-6)
    ictus = pattern[bar] + rng.normal(0.0, style.ictus_jitter, (times.size, 2))
    heights = rebounds[bar] * style.rebound * (1.0 + rng.normal(0.0, style.rebound_jitter, times.size)).clip(0.3)

    t = np.arange(frames) / MOTION_FPS
    k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, times.size - 2)
    s = np.clip((t - times[k]) / (times[k + 1] - times[k]), 0.0, 1.0)
    warped = s**style.sharpness
    # Path parameter with a single-hump speed profile (u' = 2 sin²(π w)): the hand stops only at the ictus points,
    # and leaves each ictus in a sharp bounce (the rebound arc sin(π u) starts steeply).
    u = warped - np.sin(2.0 * np.pi * warped) / (2.0 * np.pi)
    uv = ictus[k] * (1.0 - u)[:, None] + ictus[k + 1] * u[:, None]
    uv[:, 1] += heights[k] * np.sin(np.pi * u)

    loud = np.asarray(features.loudness, dtype=np.float64)
    scale = style.size * (style.quiet_size + (1.0 - style.quiet_size) * loud)
    drift = style.drift * np.stack([_smooth_noise(rng, frames, 3.0), _smooth_noise(rng, frames, 3.5)], 1)
    sway = style.sway * _smooth_noise(rng, frames, 4.0)
    center = np.array([style.center_x, style.center_y]) + drift
    # Pattern space (u to the conductor's right = image left, v up) -> image (x right, y down).
    baton = center + np.stack([-uv[:, 0], -uv[:, 1]], 1) * scale[:, None]

    cue = _crescendo(loud)
    mirror = np.stack([uv[:, 0], -uv[:, 1]], 1) * (scale * style.left_hand)[:, None]
    left_rest = np.array([1.0 - style.center_x + 0.03, style.center_y + 0.06])
    left = left_rest + mirror + drift * 0.5
    left[:, 1] -= style.cue_gain * cue
    left[:, 0] += 0.02 * cue

    pose = np.repeat(REST_POSE[None], frames, axis=0)
    pose[:, :, 0] += sway[:, None]
    pose[:, 11:13, 0] -= sway[:, None] * 0.7
    # Shoulders lift slightly with the baton hand's height and with loudness.
    pose[:, 6, 1] -= 0.15 * np.clip(center[:, 1] - baton[:, 1], 0, None) + 0.006 * loud
    pose[:, 5, 1] -= 0.10 * np.clip(left_rest[1] - left[:, 1], 0, None) + 0.006 * loud
    # Head: nod down at each downbeat (a Gaussian dip, lowest on the beat), slight tilt towards the baton.
    downs = times[bar == 0]
    nod = np.zeros(frames)
    for d in downs[(downs > -1.0) & (downs < features.duration_s + 1.0)]:
        nod += np.exp(-0.5 * ((t - d) / 0.09) ** 2)
    head_shift = np.stack([sway * 1.3 - 0.01 * uv[:, 0] * scale, style.head_nod * np.minimum(nod, 1.0)], 1)
    pose[:, 0:5] += head_shift[:, None, :]

    pose[:, 8], pose[:, 10] = _elbow(pose[:, 6], baton, outward=-1.0)
    pose[:, 7], pose[:, 9] = _elbow(pose[:, 5], left, outward=1.0)
    return np.clip(pose, 0.0, 1.0).astype(np.float32)
