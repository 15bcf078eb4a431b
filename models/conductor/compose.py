"""Composed training music for the synthetic-teacher corpus: seeded MIDI pieces in a given meter and tempo map.

Why: a conductor's pattern depends on the meter (2, 3, 4 beats; 6/8 is beaten in 2) and must follow tempo
changes, but the permissive recordings available are mostly in duple or quadruple time at a steady tempo. A
student trained only on them never sees a 3-beat bar (the Diffusion-Conductor's meter one-hot for 3 stays 0 in
training and its bar phase never wraps after three beats), and on a waltz it lost the beat (issue 11, item 6).
This module writes simple, idiomatic pieces with **mido** (Standard MIDI File, one track per instrument, General
MIDI programs), rendered to audio with fluidsynth by :func:`models.conductor.corpus.render_midi`:

- meters ``2/4`` (march: bass on 1, chord on 2), ``3/4`` (waltz: bass on 1, chords on 2 and 3), ``4/4`` (bass on
  1 and 3, chords on 2 and 4 or a pad with repeated eighths), ``6/8`` (two dotted-quarter pulses, eighth-note
  accompaniment accented on 1 and 4);
- one chord per bar from a common progression, a melody in rhythm cells of the meter with a long note at each
  phrase end (4 bars), optional drums (General MIDI channel 10) with the meter's kick/snare/hat pattern;
- downbeats accented in velocity; phrase-long crescendi and diminuendi;
- a tempo map: ``steady``, ``rit`` (the last quarter slows to 70 %), ``accel`` (the middle speeds up by 30 %),
  ``sudden`` (a tempo change at the half) or ``rubato`` (smooth ±6 % per bar), written as a ``set_tempo`` event
  on every pulse.

:func:`compose_piece` returns the MIDI file and its ground truth (pulse times in seconds, downbeats, meter), which
the tests and the meter benchmark use; the corpus itself is conducted on the audio front end's analysis of the
rendered audio, exactly what the conductor sees at inference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Time signatures :func:`compose_piece` writes: (numerator, denominator, conducted beats per bar).
TIME_SIGNATURES = {"2/4": (2, 4, 2), "3/4": (3, 4, 3), "4/4": (4, 4, 4), "6/8": (6, 8, 2)}
TEMPO_CURVES = ("steady", "rit", "accel", "sudden", "rubato")
TICKS_PER_QUARTER = 480

#: General MIDI programs (0-based) per role.
_BASS = (32, 33, 42, 43, 58, 0)  # acoustic / finger bass, cello, contrabass, tuba, piano
_ACCOMP = (0, 48, 46, 24, 21, 19, 4, 49)  # piano, strings, harp, guitar, accordion, organ, e-piano, slow strings
_MELODY = (73, 40, 68, 56, 71, 0, 11, 65, 60)  # flute, violin, oboe, trumpet, clarinet, piano, vibes, alto sax, horn
_PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3), (0, 3, 0, 4), (0, 5, 1, 4), (0, 2, 3, 4))
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
#: Melody rhythm cells per time signature, in pulses' fractions of a bar (each cell fills one bar).
_CELLS = {
    "2/4": ((0.5, 0.5), (0.25, 0.25, 0.5), (0.5, 0.25, 0.25), (1.0,)),
    "3/4": ((1 / 3, 1 / 3, 1 / 3), (2 / 3, 1 / 3), (1 / 3, 2 / 3), (1 / 2, 1 / 6, 1 / 3), (1.0,)),
    "4/4": ((0.25, 0.25, 0.25, 0.25), (0.5, 0.25, 0.25), (0.25, 0.25, 0.5), (0.375, 0.125, 0.5), (0.5, 0.5)),
    "6/8": ((1 / 3, 1 / 6, 1 / 3, 1 / 6), (0.5, 1 / 6, 1 / 6, 1 / 6), (1 / 6,) * 6, (0.5, 0.5), (1 / 3, 1 / 6, 0.5)),
}  # fmt: skip


@dataclass(frozen=True)
class PieceSpec:
    """What to compose.

    Attributes:
        time_signature: one of :data:`TIME_SIGNATURES` (``"2/4"``, ``"3/4"``, ``"4/4"``, ``"6/8"``).
        bpm: conducted pulses per minute at the start (quarter notes in x/4, dotted quarters in 6/8).
        bars: number of bars (>= 4).
        tempo_curve: one of :data:`TEMPO_CURVES`.
        drums: add a drum track.
        seed: seeds every choice (key, instruments, progression, melody, dynamics).
    """

    time_signature: str = "4/4"
    bpm: float = 100.0
    bars: int = 24
    tempo_curve: str = "steady"
    drums: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.time_signature not in TIME_SIGNATURES:
            raise ValueError(f"time_signature must be one of {sorted(TIME_SIGNATURES)}, got {self.time_signature!r}")
        if not 30.0 <= float(self.bpm) <= 240.0:
            raise ValueError(f"bpm must be in [30, 240], got {self.bpm!r}")
        if int(self.bars) < 4:
            raise ValueError(f"bars must be >= 4, got {self.bars!r}")
        if self.tempo_curve not in TEMPO_CURVES:
            raise ValueError(f"tempo_curve must be one of {TEMPO_CURVES}, got {self.tempo_curve!r}")

    @property
    def beats_per_bar(self) -> int:
        """Conducted beats per bar (6/8 is beaten in 2)."""
        return TIME_SIGNATURES[self.time_signature][2]

    @property
    def name(self) -> str:
        return (f"{self.time_signature.replace('/', '-')}_{round(self.bpm)}bpm_{self.tempo_curve}"
                f"{'_drums' if self.drums else ''}_s{self.seed}")

    @classmethod
    def random(cls, rng: np.random.Generator | int | None = None,
               time_signature: str | None = None) -> PieceSpec:
        """A plausible spec: tempo 60-150 pulses/min (6/8: 46-80 dotted quarters, i.e. 138-240 eighths), about
        35-60 s of music, every tempo curve equally likely, drums in a third of the pieces."""
        rng = np.random.default_rng(rng)
        ts = time_signature or str(rng.choice(list(TIME_SIGNATURES)))
        bpm = float(rng.uniform(46, 80) if ts == "6/8" else rng.uniform(60, 150))
        seconds = float(rng.uniform(35, 60))
        bars = max(8, int(round(seconds * bpm / 60.0 / TIME_SIGNATURES[ts][2])))
        return cls(ts, round(bpm, 1), bars, str(rng.choice(TEMPO_CURVES)), bool(rng.random() < 1 / 3),
                   int(rng.integers(2**31)))


@dataclass
class ComposedPiece:
    """A composed MIDI file and its ground truth.

    Attributes:
        spec: what was composed.
        midi: the ``mido.MidiFile``.
        beat_times: (B,) float64 seconds of every conducted pulse (quarter in x/4, dotted quarter in 6/8),
            including the first of the final bar.
        downbeat_times: (D,) float64 seconds of the first pulse of every bar.
    """

    spec: PieceSpec
    midi: object
    beat_times: np.ndarray
    downbeat_times: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def meter(self) -> int:
        """Conducted beats per bar."""
        return self.spec.beats_per_bar

    def save(self, path: str | os.PathLike) -> Path:
        """Write the Standard MIDI File atomically (temp file + rename). Returns the path."""
        from models.atomic import temp_beside

        path = Path(path)
        tmp = temp_beside(path, ".tmp.mid")
        try:
            self.midi.save(str(tmp))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


def _tempo_factors(spec: PieceSpec, pulses: int, rng: np.random.Generator) -> np.ndarray:
    """Tempo multiplier per pulse (1 = ``spec.bpm``)."""
    x = np.arange(pulses) / max(1, pulses - 1)
    if spec.tempo_curve == "rit":
        return 1.0 - 0.3 * (np.clip(x - 0.75, 0.0, None) / 0.25) ** 1.5
    if spec.tempo_curve == "accel":
        return 1.0 + 0.3 * np.clip(np.sin(np.pi * (x - 0.2) / 0.6), 0.0, None) * ((x > 0.2) & (x < 0.8))
    if spec.tempo_curve == "sudden":
        return np.where(x < 0.5, 1.0, float(rng.choice([0.75, 1.3])))
    if spec.tempo_curve == "rubato":
        bars = max(2, pulses // spec.beats_per_bar + 2)
        knots = 1.0 + rng.uniform(-0.06, 0.06, bars)
        return np.interp(np.arange(pulses) / spec.beats_per_bar, np.arange(bars), knots)
    return np.ones(pulses)


def compose_piece(spec: PieceSpec) -> ComposedPiece:
    """Compose ``spec`` (deterministic for a given spec).

    Returns:
        :class:`ComposedPiece` with the MIDI file and the pulse / downbeat times of its tempo map.

    Raises:
        ValueError: via :class:`PieceSpec` for an invalid spec.
    """
    import mido

    rng = np.random.default_rng(spec.seed)
    num, den, beats = TIME_SIGNATURES[spec.time_signature]
    bar_ticks = TICKS_PER_QUARTER * 4 * num // den
    pulse_ticks = bar_ticks // beats
    sub = 3 if spec.time_signature == "6/8" else 2  # subdivisions of a pulse for accompaniment figures
    pulses = spec.bars * beats
    factors = _tempo_factors(spec, pulses, rng)
    # set_tempo is microseconds per quarter note; a pulse is pulse_ticks / TICKS_PER_QUARTER quarters.
    quarter_us = 60e6 / (spec.bpm * factors) / (pulse_ticks / TICKS_PER_QUARTER)
    pulse_seconds = quarter_us * 1e-6 * pulse_ticks / TICKS_PER_QUARTER
    beat_times = np.concatenate([[0.0], np.cumsum(pulse_seconds)[:-1]])

    minor = bool(rng.random() < 0.35)
    scale = _MINOR if minor else _MAJOR
    tonic = int(rng.integers(50, 62))
    progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    bass_prog, acc_prog, mel_prog = (int(rng.choice(p)) for p in (_BASS, _ACCOMP, _MELODY))
    waltz_pad = bool(rng.random() < 0.5)
    # Dynamics: a velocity multiplier per bar, a crescendo or diminuendo over each 4-bar phrase.
    phrase_shape = np.repeat(rng.uniform(-1, 1, spec.bars // 4 + 1), 4)[: spec.bars]
    within = (np.arange(spec.bars) % 4) / 3.0
    dyn = np.clip(0.75 + 0.25 * phrase_shape * (within - 0.5) * 2 + rng.uniform(-0.05, 0.05, spec.bars), 0.4, 1.0)

    events: dict[str, list[tuple[int, object]]] = {"bass": [], "acc": [], "mel": [], "drums": []}

    def note(track: str, tick: int, length: int, pitch: int, velocity: float, channel: int) -> None:
        v = int(np.clip(round(velocity), 1, 127))
        pitch = int(np.clip(pitch, 21, 108))
        events[track].append((tick, mido.Message("note_on", note=pitch, velocity=v, channel=channel)))
        events[track].append((tick + max(1, length), mido.Message("note_off", note=pitch, velocity=0,
                                                                  channel=channel)))

    def degree(step: int, octave: int = 0) -> int:
        o, d = divmod(step, 7)
        return tonic + 12 * (o + octave) + scale[d]

    melody_step = int(rng.integers(2, 6)) + 7
    last_bar = spec.bars - 1
    for bar in range(spec.bars):
        start = bar * bar_ticks
        root_step = 0 if bar == last_bar else progression[bar % 4]
        triad = [degree(root_step + k) for k in (0, 2, 4)]
        d = dyn[bar]
        if bar == last_bar:  # final chord on the downbeat, held
            note("bass", start, bar_ticks, triad[0] - 24, 100 * d, 0)
            for p in triad:
                note("acc", start, bar_ticks, p, 75 * d, 1)
            note("mel", start, bar_ticks, degree(7), 90 * d, 2)
            if spec.drums:
                note("drums", start, pulse_ticks, 49, 100 * d, 9)  # crash
            break
        ts = spec.time_signature
        # Bass: the downbeat strongly; the mid-bar pulse of 4/4 and 6/8 more softly.
        note("bass", start, int(pulse_ticks * (1.6 if ts == "3/4" else 0.9)), triad[0] - 24, 105 * d, 0)
        if ts in ("4/4", "6/8"):
            mid = start + bar_ticks // 2
            note("bass", mid, int(bar_ticks / 2 * 0.9), degree(root_step + 4) - 24, 80 * d, 0)
        # Accompaniment.
        if ts == "3/4":
            if waltz_pad and bar % 2:
                for p in triad:
                    note("acc", start + pulse_ticks, 2 * pulse_ticks - 20, p, 50 * d, 1)
            else:
                for b in (1, 2):
                    for p in triad[1:] + [triad[0] + 12]:
                        note("acc", start + b * pulse_ticks, int(pulse_ticks * 0.6), p, 58 * d, 1)
        elif ts == "2/4":
            for b, off in ((0, 0.5), (1, 0.0), (1, 0.5)):
                tick = start + int((b + off) * pulse_ticks)
                for p in triad:
                    note("acc", tick, int(pulse_ticks * 0.4), p, (62 if off == 0 else 48) * d, 1)
        elif ts == "4/4":
            if waltz_pad:
                for p in triad:
                    note("acc", start, bar_ticks - 30, p, 42 * d, 1)
                for e in range(8):
                    note("acc", start + e * pulse_ticks // 2, pulse_ticks // 2 - 20, triad[e % 3] + 12,
                         (60 if e % 4 == 0 else 44) * d, 1)
            else:
                for b in (1, 3):
                    for p in triad:
                        note("acc", start + b * pulse_ticks, int(pulse_ticks * 0.7), p, 60 * d, 1)
        else:  # 6/8: eighth-note arpeggio, accented on 1 and 4
            arp = [triad[0], triad[1], triad[2], triad[0] + 12, triad[2], triad[1]]
            for e in range(6):
                note("acc", start + e * pulse_ticks // sub, pulse_ticks // sub - 15, arp[e] + 12,
                     (66 if e % 3 == 0 else 42) * d, 1)
        # Melody: a rhythm cell per bar, stepwise with leaps, a long note on the phrase's last bar.
        cell = (1.0,) if bar % 4 == 3 else _CELLS[ts][int(rng.integers(len(_CELLS[ts])))]
        tick = start
        for i, frac in enumerate(cell):
            length = int(round(frac * bar_ticks))
            melody_step = int(np.clip(melody_step + rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3]), 5, 14))
            if i == 0 and rng.random() < 0.5:  # land on a chord tone at the downbeat
                melody_step = root_step + 7 + int(rng.choice([0, 2, 4]))
            accent = 1.0 if tick == start else 0.8
            note("mel", tick, int(length * 0.9), degree(melody_step), 88 * d * accent, 2)
            tick += length
        if spec.drums:
            for b in range(beats):
                pt = start + b * pulse_ticks
                if b == 0:
                    note("drums", pt, 60, 36, 110 * d, 9)  # kick
                elif ts == "4/4" and b in (1, 3) or ts == "2/4" and b == 1:
                    note("drums", pt, 60, 38, 85 * d, 9)  # snare on the backbeat
                elif ts == "4/4" and b == 2:
                    note("drums", pt, 60, 36, 85 * d, 9)
                for s in range(sub if ts != "3/4" else 1):
                    note("drums", pt + s * pulse_ticks // sub, 30, 42, (70 if s == 0 else 45) * d, 9)  # hi-hat
                if ts == "3/4" and b > 0:
                    note("drums", pt, 60, 38 if rng.random() < 0.3 else 42, 60 * d, 9)

    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_QUARTER)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    tempo_events = [(p * pulse_ticks, mido.MetaMessage("set_tempo", tempo=int(round(quarter_us[p]))))
                    for p in range(pulses)]
    midi.tracks.append(_track(conductor, tempo_events))
    programs = {"bass": (0, bass_prog), "acc": (1, acc_prog), "mel": (2, mel_prog)}
    for name in ("bass", "acc", "mel", "drums"):
        if not events[name]:
            continue
        track = mido.MidiTrack()
        if name in programs:
            channel, program = programs[name]
            track.append(mido.Message("program_change", program=program, channel=channel, time=0))
        midi.tracks.append(_track(track, events[name]))
    downbeats = beat_times[::beats]
    return ComposedPiece(spec, midi, beat_times, downbeats)


def _track(track, timed: list[tuple[int, object]]):
    """Append absolute-tick events to ``track`` as delta times (note-offs before note-ons at equal ticks)."""
    import mido

    order = sorted(timed, key=lambda e: (e[0], 0 if e[1].type == "note_off" else 1))
    now = 0
    for tick, message in order:
        track.append(message.copy(time=int(tick - now)))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def compose_set(count: int, seed: int = 0) -> list[PieceSpec]:
    """``count`` specs cycling through the time signatures (an equal share each), tempi and curves drawn from
    ``seed``."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = np.random.default_rng(seed)
    order = list(TIME_SIGNATURES)
    return [PieceSpec.random(rng, order[i % len(order)]) for i in range(count)]
