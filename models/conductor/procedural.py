"""A rule-based conductor that conducts as the craft teaches: ictus and rebound, preparation, cut-off, fermatas,
dynamics, phrasing and a left hand with its own job. No weights.

What it does, in the terms of a conducting manual (e.g. Max Rudolf, *The Grammar of Conducting*, ch. 1-3 and 12-16;
Elizabeth Green, *The Modern Conductor*, ch. 2-6):

- **Beat patterns** per meter (2, 3, 4 and 6; compound 6/8 at a quick tempo is conducted in 2, as the front end
  hears it). Every beat has an *ictus* (the point of the beat, where the baton arrives exactly on the music's beat)
  and a *rebound* (the bounce off it, up to an apex, and the fall into the next ictus). Beat 1 drops from the
  highest point to the lowest; the last beat of the bar rebounds highest, as the preparation of the next bar.
- **Articulation** (``legato``): staccato beats fall fast into a crisp ictus, bounce off sharply and pause at the
  apex; legato beats flow with round, even speed. The hand never stops dead except on the ictus, so the speed
  minima — what a viewer (and the beat-consistency metric) reads as the beat — sit on the beats.
- **Preparatory beat and cut-off**: the conductor waits at attention until one beat before the first sound, gives
  the preparatory beat into the first ictus, and ends with a cut-off (a small loop closing downwards on the release
  of the last sound) before lowering both hands.
- **Fermatas and held notes**: where the sound holds for two beats or more without a new onset, the beating stops;
  the baton rises slowly and sustains, the left hand holds palm up, and a new preparation leads out of the hold.
- **Tempo**: the ictus follows the beat tracker's beats, which follow tempo changes and rubato (the grid between
  beats is at the local beat period, never a global one).
- **Dynamics**: pattern size, rebound height and the height of the pattern follow the loudness (soft = small,
  low and close to the body; loud = big and high).
- **Phrasing**: the music's structure (librosa agglomerative segmentation of its mel) splits the piece into
  phrases; the pattern breathes (shrinks on the last beat of a phrase), the left hand cues each new phrase's
  entry one beat early, and each phrase has its own seeded placement.
- **Left hand**: rests near the body in quiet passages, mirrors the baton in loud ones, rises palm up in
  crescendi and calms palm down in diminuendi, and cues entries.
- **Head and torso** follow the baton arm, dip into each ictus with ``energy`` and nod on downbeats.

Three named controls a user can set (the add-on's sliders): ``energy``, ``size``, ``legato``; every other knob of
:class:`ProceduralStyle` is a detail the synthetic training corpus randomises to vary its teacher.

Output: COCO-13 keypoints ``(T30, 13, 2)`` at 30 fps in ConductorMotion100 image coordinates (y down, shoulder
width 0.2, hip midpoint (0.5, 0.75)). The conductor faces the camera, so the subject's right side is image left.
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
#: 6 is the "German" six (down, two small beats to the left, across to the right, a small one further right, up).
PATTERNS: dict[int, np.ndarray] = {
    2: np.array([[0.0, -1.0], [0.35, -0.55]]),
    3: np.array([[0.0, -1.0], [0.85, -0.75], [0.45, -0.35]]),
    4: np.array([[0.0, -1.0], [-0.75, -0.75], [0.85, -0.75], [0.35, -0.40]]),
    6: np.array([[0.0, -1.0], [-0.35, -0.85], [-0.70, -0.75], [0.75, -0.80], [0.95, -0.65], [0.35, -0.40]]),
}
#: Rebound height after each beat (pattern units); the last beat of the bar rebounds highest (preparation).
REBOUNDS: dict[int, np.ndarray] = {2: np.array([0.55, 0.95]), 3: np.array([0.45, 0.45, 0.85]),
                                   4: np.array([0.45, 0.40, 0.40, 0.80]),
                                   6: np.array([0.35, 0.30, 0.35, 0.35, 0.30, 0.75])}  # fmt: skip

#: Loudness (0..1) above which the music counts as sounding (first note, last note, held notes).
SOUNDING = 0.2
#: A held note / fermata: at least this many beat periods without an onset while the sound holds.
HOLD_BEATS = 2.0


@dataclass
class ProceduralStyle:
    """Knobs of the procedural conductor. Units: image coordinates (shoulder width = 0.2), seconds.

    The named controls (``energy``, ``size``, ``legato``) are what a user sets; the rest are details.

    Attributes:
        energy: 0..1, how much the conductor puts in: scales pattern size, rebound height, the body's follow of the
            baton and its dip into each ictus (0.5 = neutral).
        size: > 0, multiplier of the pattern size (1 = a pattern about a forearm high at full loudness).
        legato: 0..1, articulation: 0 staccato (fast fall into a crisp ictus, sharp bounce, pause at the apex),
            1 legato (round, flowing beats).
        base_size: pattern half-height at full loudness, size = 1, energy = 0.5 (image units).
        quiet_size: fraction of the pattern size used at zero loudness (0..1).
        dynamics_height: how much the pattern rises with the (slow) loudness (image units per unit loudness).
        rebound: multiplier of the rebound heights between beats.
        subdivision: 0..1, how much the wrist marks the half-beat where the music sounds it (divided beats).
        center_x, center_y: baton-hand pattern centre (image coordinates).
        left_hand: 0..1, how much the left hand mirrors the baton in loud passages.
        cue_gain: height of the left hand's crescendo and entry cues (image units).
        body_follow: fraction of the baton's excursion the head and shoulders follow.
        head_nod: nose dip at downbeats (image units).
        sway: amplitude of slow upper-body sway (image units).
        phrase_variation: random shift of the pattern centre per phrase (image units).
        ictus_jitter: random scatter of ictus points (pattern units).
        rebound_jitter: relative random variation of rebound heights.
        timing_jitter_s: random offset of each ictus from its beat (s, standard deviation).
        lead_s: constant anticipation: ictus this many seconds before the beat (negative: behind).
        drift: amplitude of slow random drift of the pattern centre (image units).
    """

    energy: float = 0.5
    size: float = 1.0
    legato: float = 0.5
    base_size: float = 0.24
    quiet_size: float = 0.3
    dynamics_height: float = 0.08
    rebound: float = 1.0
    subdivision: float = 1.0
    center_x: float = 0.35
    center_y: float = 0.54
    left_hand: float = 0.1
    cue_gain: float = 0.12
    body_follow: float = 0.15
    head_nod: float = 0.02
    sway: float = 0.02
    phrase_variation: float = 0.02
    ictus_jitter: float = 0.06
    rebound_jitter: float = 0.15
    timing_jitter_s: float = 0.008
    lead_s: float = 0.0
    drift: float = 0.03

    #: (low, high) ranges :meth:`random` draws from.
    RANGES = {
        "energy": (0.2, 0.9), "size": (0.75, 1.25), "legato": (0.1, 0.9), "base_size": (0.13, 0.23),
        "quiet_size": (0.3, 0.7), "dynamics_height": (0.0, 0.15), "rebound": (0.6, 1.4),
        "subdivision": (0.0, 1.0),
        "center_x": (0.32, 0.39), "center_y": (0.49, 0.59), "left_hand": (0.0, 0.4), "cue_gain": (0.04, 0.16),
        "body_follow": (0.0, 0.3), "head_nod": (0.0, 0.03), "sway": (0.0, 0.03), "phrase_variation": (0.0, 0.04),
        "ictus_jitter": (0.0, 0.12), "rebound_jitter": (0.0, 0.3), "timing_jitter_s": (0.0, 0.015),
        "lead_s": (-0.02, 0.03), "drift": (0.0, 0.04),
    }  # fmt: skip
    #: The named controls and their allowed ranges (the add-on's sliders, the CLI's --energy/--size/--legato).
    CONTROLS = {"energy": (0.0, 1.0), "size": (0.25, 2.0), "legato": (0.0, 1.0)}

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
        for name, (low, high) in self.CONTROLS.items():
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be a number in [{low:g}, {high:g}], got {getattr(self, name)!r}")
        if self.base_size <= 0 or self.rebound < 0:
            raise ValueError("ProceduralStyle: base_size must be > 0 and rebound >= 0")

    @classmethod
    def random(cls, rng: np.random.Generator | int | None = None) -> ProceduralStyle:
        """A style with every field drawn uniformly from :attr:`RANGES` (seeded by ``rng``)."""
        rng = np.random.default_rng(rng)
        return cls(**{name: float(rng.uniform(lo, hi)) for name, (lo, hi) in cls.RANGES.items()})

    def to_dict(self) -> dict[str, float]:
        """JSON-serialisable field values."""
        return asdict(self)


def beat_grid(features: MusicFeatures) -> tuple[np.ndarray, np.ndarray]:
    """Beat times extended at the local beat period to cover the whole piece, and each beat's position in its bar.

    Returns:
        ``(times (B,) float64 seconds, bar_positions (B,) int in 0..meter-1)``; the first time is <= 0 and the last
        >= ``duration_s``, so every frame lies between two beats. Beat 0 of the bar is a downbeat.
    """
    meter = _meter(features)
    beats = np.asarray(features.beat_times, dtype=np.float64)
    period = 60.0 / features.tempo_bpm if features.tempo_bpm > 0 else 0.5
    if beats.size < 2:
        beats = np.arange(0.0, features.duration_s + period, period)
    first_down = 0
    if len(features.downbeat_times):
        first_down = int(np.argmin(np.abs(beats - features.downbeat_times[0])))
    positions = (np.arange(beats.size) - first_down) % meter
    head_period = float(np.median(np.diff(beats[:5]))) if beats.size >= 3 else period
    tail_period = float(np.median(np.diff(beats[-5:]))) if beats.size >= 3 else period
    before = int(np.ceil(beats[0] / head_period)) + 1
    after = int(np.ceil((features.duration_s - beats[-1]) / tail_period)) + 1
    head = beats[0] - head_period * np.arange(before, 0, -1)
    tail = beats[-1] + tail_period * np.arange(1, after + 1)
    times = np.concatenate([head, beats, tail])
    bar = np.concatenate([(positions[0] - np.arange(before, 0, -1)) % meter, positions,
                          (positions[-1] + np.arange(1, after + 1)) % meter])  # fmt: skip
    return times, bar.astype(np.int64)


def _meter(features: MusicFeatures) -> int:
    meter = int(features.meter)
    return meter if meter in PATTERNS else 4


def _smooth_noise(rng: np.random.Generator, frames: int, seconds: float) -> np.ndarray:
    """Zero-mean noise in about [-1, 1] varying over ``seconds`` (cubic interpolation of random knots)."""
    from scipy.interpolate import CubicSpline

    step = max(2, int(seconds * MOTION_FPS))
    knots = np.arange(0, frames + 2 * step, step)
    spline = CubicSpline(knots, rng.uniform(-1, 1, knots.size))
    return spline(np.arange(frames))


def _slope(loudness: np.ndarray) -> np.ndarray:
    """Loudness slope per frame (units per ~second): the change over ±1 s, averaged over 0.5 s."""
    width = MOTION_FPS
    padded = np.pad(loudness, (width, width), mode="edge")
    slope = padded[2 * width :] - padded[: -2 * width]
    kernel = np.ones(width // 2) / (width // 2)
    return np.convolve(slope, kernel, mode="same")


def _crescendo(loudness: np.ndarray) -> np.ndarray:
    """Crescendo strength per frame in [0, 1]: positive slope of the loudness over about one second."""
    return np.clip(_slope(loudness) * 2.5, 0.0, 1.0)


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


def articulation(legato: float) -> dict[str, float]:
    """The beat's speed profile for an articulation (0 staccato … 1 legato), as Beta-CDF shape parameters.

    Within a beat (phase ``w`` from 0 at an ictus to 1 at the next), the hand rises to the rebound's apex at
    ``w = apex`` along ``I(w/apex; rise_a, rise_b)`` and falls into the next ictus along
    ``1 − I((w − apex)/(1 − apex); fall_a, fall_b)`` (``I`` = regularised incomplete Beta function, so the speed
    is zero only at the ictus and the apex and peaks early in the rise and late in the fall: a bounce). Staccato
    pushes the peaks to the ends (crisp ictus) and the apex earlier (a pause at the top); legato makes both
    halves round. The horizontal travel between ictus points follows ``I(w; across, across)``.
    """
    d = float(np.clip(legato, 0.0, 1.0)) - 0.5  # -0.5 staccato … 0.5 legato around the default articulation
    return {
        "apex": 0.41 + 0.2 * d,
        "rise_a": 1.6 + 0.8 * d, "rise_b": 2.8 - 2.4 * d,
        "fall_a": 3.4 - 3.0 * d, "fall_b": 2.8 + 0.4 * d,
        "across": 1.55 - 0.5 * d,
    }  # fmt: skip


@dataclass
class _Beats:
    """The conducted events: times (s), ictus points (pattern units), rebound heights, bar positions and the kind
    of the segment that *starts* at each event: 0 beat (bounce), 1 glide (attention, hold, release: no bounce)."""

    times: np.ndarray
    points: np.ndarray
    heights: np.ndarray
    bar: np.ndarray
    kind: np.ndarray


def _onsets(features: MusicFeatures, frames: int) -> np.ndarray:
    """Onset strength per motion frame ``(T30,)`` in [0, 1] (mel spectral flux / its 95th percentile)."""
    from models.conductor.rhythm import _onset_envelope

    mel = np.asarray(features.mel[: 3 * frames], dtype=np.float32)
    env = _onset_envelope(mel)
    env = np.pad(env, (0, max(0, 3 * frames - env.size)))[: 3 * frames].reshape(frames, 3).max(axis=1)
    return np.clip(env / (np.percentile(env, 95) + 1e-9), 0.0, 1.0)


def held_spans(features: MusicFeatures, onsets: np.ndarray | None = None) -> list[tuple[float, float]]:
    """Fermatas and held notes: ``[(start_s, end_s), ...]`` where the sound holds (loudness ≥ ``SOUNDING``) for at
    least ``HOLD_BEATS`` beat periods with no onset above 0.25 of the piece's strong onsets."""
    frames = features.num_motion_frames
    onsets = _onsets(features, frames) if onsets is None else onsets
    period = 60.0 / features.tempo_bpm if features.tempo_bpm > 0 else 0.5
    quiet = (onsets < 0.25) & (np.asarray(features.loudness) >= SOUNDING)
    spans, start = [], None
    for i, q in enumerate(np.append(quiet, False)):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if (i - start) / MOTION_FPS >= HOLD_BEATS * period:
                spans.append((start / MOTION_FPS, i / MOTION_FPS))
            start = None
    return spans


def phrase_boundaries(features: MusicFeatures, seconds_per_phrase: float = 12.0) -> np.ndarray:
    """Phrase starts (s, excluding 0) from librosa's agglomerative segmentation of the mel at 3 frames/s, about one
    phrase per ``seconds_per_phrase``; empty for pieces shorter than two phrases."""
    import librosa

    n = int(features.duration_s // seconds_per_phrase)
    if n < 2:
        return np.zeros(0)
    mel = np.asarray(features.mel, dtype=np.float32)
    step = 30  # 90 Hz -> 3 Hz
    coarse = mel[: mel.shape[0] // step * step].reshape(-1, step, mel.shape[1]).mean(axis=1).T  # (128, T3)
    bounds = librosa.segment.agglomerative(coarse, n)
    return np.asarray(bounds[1:], dtype=np.float64) / 3.0


def conducted_beats(features: MusicFeatures, style: ProceduralStyle, rng: np.random.Generator) -> _Beats:
    """The events the baton conducts: attention, the preparatory beat, the music's beats (minus those inside held
    notes, which become sustained glides with a new preparation before the next beat), the cut-off and the release."""
    meter = _meter(features)
    pattern, rebounds = PATTERNS[meter], REBOUNDS[meter]
    times, bar = beat_grid(features)
    times = times - style.lead_s + rng.normal(0.0, style.timing_jitter_s, times.size)
    times = np.maximum.accumulate(times + np.arange(times.size) * 1e-6)
    points = pattern[bar] + rng.normal(0.0, style.ictus_jitter, (times.size, 2))
    heights = rebounds[bar] * style.rebound * (0.8 + 0.4 * style.energy)
    heights = heights * (1.0 + rng.normal(0.0, style.rebound_jitter, times.size)).clip(0.3)
    kind = np.zeros(times.size, dtype=np.int64)

    loud = np.asarray(features.loudness)
    sounding = np.flatnonzero(loud >= SOUNDING)
    duration = features.duration_s
    first = sounding[0] / MOTION_FPS if sounding.size else 0.0
    last = (sounding[-1] + 1) / MOTION_FPS if sounding.size else duration
    keep = (times >= first - 0.05) & (times <= last + 0.05)
    for start, end in held_spans(features):
        # the beat that starts the hold is conducted; the ones inside it are not
        inside = (times > start + 0.1) & (times < end - 0.05)
        keep &= ~inside
    if keep.sum() < 2:  # too little music to shape (or none sounding): conduct the whole grid
        return _Beats(times, points, heights, bar, kind)
    idx = np.flatnonzero(keep)
    t, p, h, b = times[idx], points[idx], heights[idx], bar[idx]

    # Holds: a glide from the ictus that starts the hold up to a sustain point, a preparation into the next beat.
    ev_t, ev_p, ev_h, ev_b, ev_k = [], [], [], [], []
    for i in range(t.size):
        ev_t.append(t[i]), ev_p.append(p[i]), ev_h.append(h[i]), ev_b.append(b[i]), ev_k.append(0)
        if i + 1 < t.size:
            local = float(np.median(np.diff(t[max(0, i - 4) : i + 1]))) if i >= 2 else t[i + 1] - t[i]
            if t[i + 1] - t[i] > 1.8 * local:  # beats were removed: a held note
                ev_k[-1] = 1
                prep_t = t[i + 1] - local
                ev_t.append(prep_t), ev_b.append(-1), ev_k.append(0)
                ev_p.append(pattern[(b[i + 1] - 1) % meter] + np.array([0.0, 0.6]))
                ev_h.append(rebounds[(b[i + 1] - 1) % meter] * style.rebound)
    ev_t, ev_p, ev_h = np.array(ev_t), np.array(ev_p), np.array(ev_h)
    ev_b, ev_k = np.array(ev_b), np.array(ev_k)

    # Attention and the preparatory beat: still at the top of the previous bar's last beat, then one beat into it.
    period0 = float(np.median(np.diff(ev_t[:5]))) if ev_t.size >= 3 else 0.5
    prep_point = pattern[(ev_b[0] - 1) % meter] + np.array([0.0, rebounds[-1] * 0.5])
    head_t = [min(-1.0, ev_t[0] - 2 * period0), ev_t[0] - period0]
    head_p = [prep_point, prep_point]
    head_h = [0.0, rebounds[(ev_b[0] - 1) % meter] * style.rebound]
    # Cut-off: a small loop upwards after the last beat, closing down on the release, then the hands drop.
    period1 = float(np.median(np.diff(ev_t[-5:]))) if ev_t.size >= 3 else 0.5
    cut_t = max(last, ev_t[-1] + 0.8 * period1)
    ev_k[-1] = 1
    tail_t = [cut_t - 0.6 * period1, cut_t, cut_t + 0.9, max(cut_t + 1.0, duration + 1.0)]
    tail_p = [ev_p[-1] + np.array([0.25, 0.75]), np.array([0.35, -0.45]), np.array([0.1, -2.2]), np.array([0.1, -2.2])]
    tail_h = [0.35, 0.0, 0.0, 0.0]
    tail_k = [0, 1, 1, 1]
    return _Beats(
        times=np.concatenate([head_t, ev_t, tail_t]),
        points=np.concatenate([np.array(head_p), ev_p, np.array(tail_p)]),
        heights=np.concatenate([head_h, ev_h, tail_h]),
        bar=np.concatenate([[-1, -1], ev_b, [-1] * 4]).astype(np.int64),
        kind=np.concatenate([[1, 0], ev_k, tail_k]).astype(np.int64),
    )


def subdivision_strength(beats: _Beats, onsets: np.ndarray) -> np.ndarray:
    """Per event ``(E,)`` in [0, 1]: how strongly the music sounds the half-beat ("and") after each conducted beat,
    relative to the beat itself (the strongest onset within ±10 % of the beat's middle over the onset at its start);
    0 for glides."""
    frames = onsets.size
    strength = np.zeros(beats.times.size)
    for i in range(beats.times.size - 1):
        if beats.kind[i] != 0:
            continue
        a, b = beats.times[i], beats.times[i + 1]
        mid = slice(int((a + 0.4 * (b - a)) * MOTION_FPS), int((a + 0.6 * (b - a)) * MOTION_FPS) + 1)
        on = slice(int(a * MOTION_FPS) - 1, int(a * MOTION_FPS) + 2)
        if mid.start < 0 or mid.stop > frames or on.start < 0:
            continue
        strength[i] = np.clip(onsets[mid].max() / (onsets[on].max() + 0.2), 0.0, 1.0)
    return strength


def _baton_path(beats: _Beats, t: np.ndarray, legato: float,
                subdivision: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Baton position in pattern units ``(T, 2)`` and the bounce height fraction ``(T,)`` (0 at an ictus, 1 at the
    apex) at times ``t``, following :func:`articulation`; ``subdivision`` (per event, 0..1) adds a small flick of
    the wrist on the half-beat (a divided beat) where the music sounds it."""
    from scipy.special import betainc

    shape = articulation(legato)
    times = np.maximum.accumulate(beats.times + np.arange(beats.times.size) * 1e-6)
    k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, times.size - 2)
    w = np.clip((t - times[k]) / (times[k + 1] - times[k]), 0.0, 1.0)
    glide = beats.kind[k] == 1
    across = np.where(glide, betainc(2.0, 2.0, w), betainc(shape["across"], shape["across"], w))
    uv = beats.points[k] * (1.0 - across)[:, None] + beats.points[k + 1] * across[:, None]
    apex = shape["apex"]
    rise = betainc(shape["rise_a"], shape["rise_b"], np.clip(w / apex, 0.0, 1.0))
    fall = 1.0 - betainc(shape["fall_a"], shape["fall_b"], np.clip((w - apex) / (1.0 - apex), 0.0, 1.0))
    bounce = np.where(w < apex, rise, fall)
    bounce = np.where(glide, np.sin(np.pi * w) ** 2 * 0.5, bounce)  # a held note breathes instead of bouncing
    if subdivision is not None:
        bounce = bounce - 0.3 * subdivision[k] * np.exp(-0.5 * ((w - 0.5) / 0.07) ** 2) * (~glide)
    uv[:, 1] += beats.heights[k] * bounce
    return uv, bounce


def procedural_motion(features: MusicFeatures, style: ProceduralStyle | None = None, seed: int = 0) -> np.ndarray:
    """Conduct ``features`` with the rule-based conductor (module docstring: what the craft rules are).

    Args:
        features: the analysed music (beats, meter, downbeats, loudness, mel).
        style: the knobs; default :class:`ProceduralStyle()`.
        seed: seeds the natural variation (same seed and style -> identical output).

    Returns:
        ``(T30, 13, 2)`` float32 COCO-13 keypoints at 30 fps in [0, 1] image coordinates (y down),
        ``T30 = features.num_motion_frames``.
    """
    from scipy.ndimage import gaussian_filter1d

    style = style or ProceduralStyle()
    rng = np.random.default_rng(seed)
    frames = features.num_motion_frames
    t = np.arange(frames) / MOTION_FPS
    energy = float(style.energy)
    beats = conducted_beats(features, style, rng)
    subdivision = style.subdivision * subdivision_strength(beats, _onsets(features, frames))
    uv, bounce = _baton_path(beats, t, style.legato, subdivision)

    loud = np.asarray(features.loudness, dtype=np.float64)
    slow = gaussian_filter1d(loud, MOTION_FPS)
    size = style.base_size * style.size * (0.7 + 0.6 * energy)
    scale = size * (style.quiet_size + (1.0 - style.quiet_size) * loud)
    drift = style.drift * np.stack([_smooth_noise(rng, frames, 3.0), _smooth_noise(rng, frames, 3.5)], 1)
    sway = style.sway * _smooth_noise(rng, frames, 4.0)

    # Phrases: each gets its own placement; the pattern breathes in (smaller) over the last beat of a phrase.
    bounds = phrase_boundaries(features)
    phrase = np.searchsorted(bounds, t, side="right")
    offsets = rng.normal(0.0, style.phrase_variation, (bounds.size + 1, 2))
    place = gaussian_filter1d(offsets[phrase], 0.5 * MOTION_FPS, axis=0)
    period = 60.0 / features.tempo_bpm if features.tempo_bpm > 0 else 0.5
    breath = np.ones(frames)
    for b in bounds:
        breath -= 0.25 * np.exp(-0.5 * ((t - (b - 0.5 * period)) / (0.6 * period)) ** 2)
    scale = scale * breath

    center = np.array([style.center_x, style.center_y]) + drift + place
    center[:, 1] -= style.dynamics_height * (slow - slow.mean())
    # Pattern space (u to the conductor's right = image left, v up) -> image (x right, y down).
    offset = np.stack([-uv[:, 0], -uv[:, 1]], 1) * scale[:, None]
    baton = center + offset

    # Left hand: rest near the body; mirror in loud passages; palm up in crescendi, calming in diminuendi; cues.
    slope = _slope(loud)
    cresc, dim = np.clip(slope * 2.5, 0.0, 1.0), np.clip(-slope * 2.5, 0.0, 1.0)
    mirror_amount = style.left_hand * np.clip(0.35 + 0.9 * (slow - 0.4), 0.15, 1.0)
    mirror = np.stack([uv[:, 0], -uv[:, 1]], 1) * (scale * mirror_amount)[:, None]
    left_rest = np.array([1.0 - style.center_x + 0.03, style.center_y + 0.06])
    cue = np.zeros(frames)
    for b in bounds:  # entry cue: raised one beat before the new phrase, given on it
        cue += np.exp(-0.5 * ((t - (b - 0.5 * period)) / (0.7 * period)) ** 2)
    cue = np.clip(cue, 0.0, 1.0)
    left = left_rest + mirror + drift * 0.5
    left[:, 1] -= style.cue_gain * (cresc + 0.8 * cue) - 0.04 * dim
    left[:, 0] += 0.02 * cresc - 0.03 * dim + 0.03 * cue
    left[:, 1] -= style.dynamics_height * 0.8 * (slow - slow.mean())

    # Before the first and after the last sound both hands are held still / lowered with the baton.
    # (at attention the left hand is raised, ready; it joins in over the preparatory beat)
    prep_period = max(beats.times[2] - beats.times[1], 1e-3)
    joined = np.clip((t - beats.times[1]) / prep_period, 0.0, 1.0)[:, None]
    left = left * joined + (left_rest + np.array([0.0, -0.12])) * (1.0 - joined)
    lowered = np.clip((t - beats.times[-3]) / 0.9, 0.0, 1.0)
    lowered = (lowered * lowered * (3.0 - 2.0 * lowered))[:, None]
    left = left * (1.0 - lowered) + (REST_POSE[9] + np.array([0.0, 0.10])) * lowered
    baton = baton * (1.0 - lowered) + (REST_POSE[10] + np.array([0.0, 0.10])) * lowered
    lowered = lowered[:, 0]

    pose = np.repeat(REST_POSE[None], frames, axis=0)
    # Head and torso follow the baton arm (smoothed) and dip into each ictus; sway; nod on downbeats.
    follow = style.body_follow * (0.5 + energy) * gaussian_filter1d(offset - offset.mean(axis=0), 2.0, axis=0)
    weights = np.array([1.0] * 5 + [0.7] * 2 + [0.5] * 4 + [0.15] * 2)[:, None]
    pose += follow[:, None, :] * weights[None] * np.array([1.0, 0.6])
    dip = 0.01 * (0.5 + energy) * (1.0 - bounce) * (1.0 - lowered)
    pose[:, :7, 1] += dip[:, None]
    pose[:, :, 0] += sway[:, None]
    pose[:, 11:13, 0] -= sway[:, None] * 0.7
    # Shoulders lift slightly with the hands' height and with loudness.
    pose[:, 6, 1] -= 0.15 * np.clip(center[:, 1] - baton[:, 1], 0, None) + 0.006 * loud
    pose[:, 5, 1] -= 0.10 * np.clip(left_rest[1] - left[:, 1], 0, None) + 0.006 * loud
    downs = beats.times[beats.bar == 0]
    nod = np.zeros(frames)
    for d in downs[(downs > -1.0) & (downs < features.duration_s + 1.0)]:
        nod += np.exp(-0.5 * ((t - d) / 0.09) ** 2)
    head_shift = np.stack([sway * 1.3 - 0.01 * uv[:, 0] * scale + 0.01 * cue, style.head_nod * np.minimum(nod, 1.0)], 1)
    pose[:, 0:5] += head_shift[:, None, :]

    pose[:, 8], pose[:, 10] = _elbow(pose[:, 6], baton, outward=-1.0)
    pose[:, 7], pose[:, 9] = _elbow(pose[:, 5], left, outward=1.0)
    return np.clip(pose, 0.0, 1.0).astype(np.float32)
