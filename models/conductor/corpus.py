"""A synthetic-teacher training corpus for the Diffusion-Conductor, in the ConductorMotion100 layout.

The layout (../shared/DESIGN.md §4) is read and written by :mod:`models.motion.conductor_dataset`:
``<root>/{train,val,test}/<i>/mel.npy`` ``(T90, 128)`` float32 at 90 Hz and ``motion.npy`` ``(T30, 13, 2)`` float32
at 30 Hz in [0, 1], exactly three mel frames per motion frame. ConductorMotion100 itself has 60 s clips; synthetic
samples are whole pieces (or their training / validation parts) of any length; each also gets a ``meta.json``
(source file, tempo stretch, style, seed) and a ``beats.json`` (the beat grid the teacher conducted to, on the
clip's clock: :data:`models.conductor.rhythm.BEATS_FILE`).

The synthetic corpus pairs real music with the procedural conductor
(:func:`models.conductor.procedural.procedural_motion`) under randomised :class:`ProceduralStyle` parameters: a
"synthetic teacher" for users without ConductorMotion100. MIDI files are rendered to audio with fluidsynth and a
General MIDI soundfont (Debian ``fluidsynth`` + ``fluid-soundfont-gm``). The last ``val_fraction`` of every piece
(in time) goes to ``val/`` so validation music is never seen in training.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.motion.conductor_dataset import write_conductor_sample
from models.progress import Progress

SOUNDFONT_CANDIDATES = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
MIDI_SUFFIXES = (".mid", ".midi")


def find_soundfont() -> Path:
    """The General MIDI soundfont installed by Debian ``fluid-soundfont-gm``.

    Raises:
        FileNotFoundError: none installed (install ``fluid-soundfont-gm``, see scripts/apt/conductor.txt).
    """
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("no General MIDI soundfont found; install Debian fluid-soundfont-gm "
                            f"(looked for {', '.join(SOUNDFONT_CANDIDATES)})")


def render_midi(midi: str | os.PathLike, out_wav: str | os.PathLike, *, sample_rate: int = 22050,
                gain: float = 0.3, soundfont: str | os.PathLike | None = None) -> Path:
    """Render a MIDI file to a WAV with fluidsynth (gain 0.3 avoids clipping on orchestral files).

    Raises:
        FileNotFoundError: the MIDI file, fluidsynth or the soundfont is missing.
        RuntimeError: fluidsynth failed or wrote no audio.
    """
    midi, out_wav = Path(midi), Path(out_wav)
    if not midi.is_file():
        raise FileNotFoundError(f"MIDI file not found: {midi}")
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise FileNotFoundError("fluidsynth not installed (Debian package fluidsynth, see scripts/apt/conductor.txt)")
    font = Path(soundfont) if soundfont else find_soundfont()
    cmd = [exe, "-ni", "-g", str(gain), "-F", str(out_wav), "-r", str(sample_rate), str(font), str(midi)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not out_wav.is_file() or out_wav.stat().st_size < 1000:
        raise RuntimeError(f"fluidsynth failed on {midi}: {result.stderr.strip()[-500:]}")
    return out_wav


def build_synthetic_corpus(
    sources: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    styles_per_piece: int = 8,
    stretch_rates: Sequence[float] = (1.0,),
    val_fraction: float = 0.15,
    seed: int = 0,
    compose: int = 0,
    compose_styles: int | None = None,
    meter_augment: float = 0.0,
    progress: Progress | None = None,
) -> dict:
    """Pair music with the procedural conductor under randomised styles, in the ConductorMotion100 layout.

    Args:
        sources: audio files (wav/ogg/flac/mp3) or MIDI files (rendered with fluidsynth). Their licenses must
            allow what you do with the trained weights (see the model card).
        out_dir: output root; ``train/`` and ``val/`` are (re)written.
        styles_per_piece: random :class:`ProceduralStyle` draws per piece and tempo (each with its own seed).
        stretch_rates: tempo variants of every piece (``librosa.effects.time_stretch`` rates; 1.0 = original),
            so the teacher conducts the same music at several tempi.
        val_fraction: the trailing fraction of every piece held out into ``val/`` (0 disables; needs >= 5 s left).
        seed: master seed for styles and variation (and for the composed pieces).
        compose: also compose this many MIDI pieces (:func:`models.conductor.compose.compose_set`: an equal share
            of 2/4, 3/4, 4/4 and 6/8, tempi 60-150 pulses/min, steady / rit / accel / sudden / rubato tempo maps),
            written to ``<out_dir>/composed/`` and rendered with fluidsynth. They are not time-stretched (their
            tempi already vary). ``sources`` may then be empty.
        compose_styles: styles per composed piece (default ``styles_per_piece``).
        meter_augment: share of performances (0..1) conducted in a meter other than the one the audio front end
            estimated (drawn from the other meters, downbeat phase random): every meter's pattern, one-hot and bar
            phase then occurs in training on every kind of music, so a student conditioned on the beat grid
            learns to follow the grid it is given rather than the meter the music's accents suggest.

    Returns:
        A manifest dict (also written to ``<out_dir>/manifest.json``): sources with durations, counts, seconds.

    Raises:
        ValueError: no sources, or a source that :func:`analyze_audio` refuses.
    """
    import librosa

    from models.conductor.audio import analyze_signal, load_audio
    from models.conductor.procedural import ProceduralStyle, procedural_motion

    if not sources and compose < 1:
        raise ValueError("build_synthetic_corpus needs at least one audio or MIDI file (or compose > 0)")
    if compose < 0:
        raise ValueError(f"compose must be >= 0, got {compose}")
    if not 0.0 <= meter_augment <= 1.0:
        raise ValueError(f"meter_augment must be in [0, 1], got {meter_augment}")
    compose_styles = styles_per_piece if compose_styles is None else int(compose_styles)
    if compose_styles < 1:
        raise ValueError(f"compose_styles must be >= 1, got {compose_styles}")
    if styles_per_piece < 1:
        raise ValueError(f"styles_per_piece must be >= 1, got {styles_per_piece}")
    if not stretch_rates or any(not 0.25 <= float(r) <= 4.0 for r in stretch_rates):
        raise ValueError(f"stretch_rates must be non-empty with every rate in [0.25, 4], got {list(stretch_rates)}")
    if not 0.0 <= val_fraction < 0.5:
        raise ValueError(f"val_fraction must be in [0, 0.5), got {val_fraction}")
    out = Path(out_dir)
    for split in ("train", "val"):
        if (out / split).exists():
            shutil.rmtree(out / split)
    rng = np.random.default_rng(seed)
    manifest: dict = {"sources": [], "styles_per_piece": styles_per_piece, "seed": seed, "val_fraction": val_fraction,
                      "stretch_rates": [float(r) for r in stretch_rates], "skipped": []}
    counts = {"train": 0, "val": 0}
    seconds = {"train": 0.0, "val": 0.0}
    manifest.update({"compose": compose, "compose_styles": compose_styles, "meter_augment": meter_augment})
    jobs: list[tuple[Path, tuple[float, ...], int, dict]] = [
        (Path(s), tuple(float(r) for r in stretch_rates), styles_per_piece, {}) for s in sources]
    if compose:
        from models.conductor.compose import compose_piece, compose_set

        folder = out / "composed"
        folder.mkdir(parents=True, exist_ok=True)
        for spec in compose_set(compose, seed=seed):
            piece = compose_piece(spec)
            path = piece.save(folder / f"{spec.name}.mid")
            jobs.append((path, (1.0,), compose_styles, {"time_signature": spec.time_signature, "bpm": spec.bpm,
                                                        "tempo_curve": spec.tempo_curve, "true_meter": piece.meter}))
    augment = {"rng": rng, "share": float(meter_augment)}
    with tempfile.TemporaryDirectory(prefix="baton-midi-") as tmp:
        for index, (source, rates, styles, info) in enumerate(jobs):
            if progress is not None:
                progress.update(index / len(jobs), f"teacher motion for {Path(source).name}")
            audio = Path(source)
            if audio.suffix.lower() in MIDI_SUFFIXES:
                audio = render_midi(audio, Path(tmp) / f"{index}.wav")
            samples, sr = load_audio(audio)
            for rate in rates:
                if float(rate) != 1.0 and len(samples) / sr / float(rate) < 5.0:
                    manifest["skipped"].append(f"{source}@x{float(rate):g} (shorter than 5 s)")
                    continue
                signal = samples if float(rate) == 1.0 else librosa.effects.time_stretch(samples, rate=float(rate))
                features = analyze_signal(signal, sr, path=f"{source}@x{float(rate):g}")
                _teacher_pairs(features, source, float(rate), out, rng, styles, val_fraction, counts,
                               seconds, manifest, ProceduralStyle, procedural_motion, augment, info)
    manifest.update({"counts": counts, "seconds": seconds})
    _write_json(out / "manifest.json", manifest)
    if progress is not None:
        progress.update(1.0, "synthetic corpus")
    return manifest


def with_meter(features, meter: int, first_downbeat: int):
    """``features`` with another meter: the same beats, downbeats every ``meter`` beats from beat
    ``first_downbeat`` (a copy; the input is unchanged)."""
    import dataclasses

    beats = np.asarray(features.beat_times, dtype=np.float64)
    return dataclasses.replace(features, meter=int(meter), downbeat_times=beats[int(first_downbeat)::int(meter)])


def _teacher_pairs(features, source, rate, out, rng, styles_per_piece, val_fraction, counts, seconds, manifest,
                   style_cls, teacher, augment=None, info=None) -> None:
    """Write ``styles_per_piece`` teacher motions of one (piece, tempo) into train/ and val/ (a share
    ``augment["share"]`` of them in another meter, see :func:`build_synthetic_corpus`)."""
    from models.conductor.rhythm import BEATS_FILE, METERS, BeatGrid

    frames = features.num_motion_frames
    split_at = int(round(frames * (1 - val_fraction))) if val_fraction > 0 else frames
    if frames - split_at < 150:  # less than 5 s left: keep the whole piece for training
        split_at = frames
    manifest["sources"].append({"path": str(source), "stretch": rate, "duration_s": features.duration_s,
                                "tempo_bpm": features.tempo_bpm, "meter": features.meter,
                                "val_from_s": split_at / 30.0, **(info or {})})
    share = float(augment["share"]) if augment else 0.0
    for _ in range(styles_per_piece):
        style = style_cls.random(rng)
        motion_seed = int(rng.integers(2**31))
        conducted = features
        if share > 0 and augment["rng"].random() < share and len(features.beat_times) >= 2:
            meter = int(augment["rng"].choice([m for m in METERS if m != int(features.meter)]))
            conducted = with_meter(features, meter, int(augment["rng"].integers(meter)))
        grid = BeatGrid.from_features(conducted)
        motion = teacher(conducted, style, seed=motion_seed).astype(np.float32)
        meta = {"source": str(source), "stretch": rate, "style": style.to_dict(), "seed": motion_seed,
                "meter": int(conducted.meter), "meter_estimated": int(features.meter)}
        manifest.setdefault("meters", {}).setdefault(str(conducted.meter), 0)
        manifest["meters"][str(conducted.meter)] += 1
        for split, a, b in (("train", 0, split_at), ("val", split_at, frames)):
            if b - a < 1:
                continue
            folder = write_conductor_sample(out, split, counts[split], features.mel[3 * a:3 * b], motion[a:b],
                                            overwrite=True)
            _write_json(folder / "meta.json", {**meta, "frames": [a, b]})
            # The beats the teacher conducted to, on the clip's clock: the rhythm condition of training.
            _write_json(folder / BEATS_FILE, grid.shifted(a / 30.0).to_dict())
            counts[split] += 1
            seconds[split] += (b - a) / 30.0


def _write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file + os.replace)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
