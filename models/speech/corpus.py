"""The spoken-instruction corpus (``baton data speech build`` / ``encode``): oral rephrasings of training captions
spoken by many TTS voices, 16 kHz, augmented with sox, with the held-out voice and phrasing for evaluation.

Layout of a corpus folder::

    manifest.jsonl     one utterance a line (fields below), written last, atomically
    voices.json        every voice used: engine, settings, speaker, licence; engines that were missing and why
    wav/<id>.wav       16 kHz mono 16-bit
    states.npy         (N, WINDOW_STATES / POOL, 384) float16 frozen Whisper encoder states (``encode``)
    states.json        {"ids": [...], "lengths": [...], "model_dir": ..., "pool": POOL}

Utterance fields: ``id, split, wav, voice, speaker, engine, licence, content, style, caption, oral, phrasing,
augment`` (sox / noise steps applied), ``snr_db`` (``null`` when clean), ``seconds``.

Splits:

* ``train`` — every voice except the held-out speaker :data:`HELD_OUT_SPEAKER`, every phrasing except
  :data:`models.speech.oral.HELD_OUT_PHRASING`; each utterance augmented at random (pink/white/brown noise at
  5-30 dB SNR, sox ``reverb``, sox ``speed`` 0.9-1.1, telephone band: sox ``sinc 300-3400`` at 8 kHz and back).
* ``test_voice`` — the held-out speaker (flite ``rms``), clean; ``test_voice_snr10`` — the same utterances with
  pink noise at 10 dB SNR.
* ``test_phrasing`` — training voices, the held-out phrasing, clean.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np

from models.atomic import atomic_write
from models.progress import Progress
from models.speech.audio import MAX_SECONDS, SAMPLE_RATE
from models.speech.oral import HELD_OUT_PHRASING, PHRASINGS, make_instruction
from models.speech.voices import Voice, available_voices, synthesize

log = logging.getLogger("baton.data.speech")

HELD_OUT_SPEAKER = "rms"
#: Styles used (dataset-1 / dataset-2 aliases collapsed: masculinity, old, tired appear as their twins).
STYLES = ("normal", "happy", "sad", "angry", "proud", "not-confident", "masculine", "feminine", "childish",
          "elderly", "exhausted", "active", "musical", "giant", "chimpira", "youthful")  # fmt: skip
#: Share of training utterances per engine (espeak-ng has 56 voices, the others 1-4 each).
ENGINE_SHARE = {"espeak": 0.5, "flite": 0.15, "festival": 0.2, "piper": 0.15}
#: Encoder states are average-pooled by this factor before they are stored (40 ms a state).
POOL = 2


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "pink") -> np.ndarray:
    """``audio`` plus ``colour`` (``white`` | ``pink`` | ``brown``) noise scaled to ``snr_db`` dB SNR (signal power
    over noise power, both over the whole clip)."""
    n = audio.shape[0]
    white = rng.standard_normal(n)
    if colour == "white":
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        f[0] = f[1] if n > 1 else 1.0
        spectrum /= np.sqrt(f) if colour == "pink" else f
        noise = np.fft.irfft(spectrum, n)
    p_signal = float(np.mean(audio.astype(np.float64) ** 2)) or 1e-12
    noise *= np.sqrt(p_signal / (float(np.mean(noise**2)) * 10 ** (snr_db / 10)))
    out = audio + noise.astype(np.float32)
    peak = float(np.max(np.abs(out))) or 1.0
    return (out / peak * 0.95 if peak > 0.99 else out).astype(np.float32)


def _train_augment(rng: random.Random) -> tuple[list[str], list[str], float | None, str]:
    """``(sox effects, names, snr_db or None, noise colour)`` for one training utterance."""
    effects, names = [], []
    if rng.random() < 0.3:
        factor = rng.uniform(0.9, 1.1)
        effects += ["speed", f"{factor:.3f}"]
        names.append(f"speed {factor:.3f}")
    if rng.random() < 0.25:
        rev = rng.randint(20, 80)
        effects += ["reverb", str(rev), "50", str(rng.randint(30, 100))]
        names.append(f"reverb {rev}")
    if rng.random() < 0.1:
        effects += ["sinc", "300-3400", "rate", "8000"]
        names.append("telephone 300-3400 Hz @ 8 kHz")
    snr = round(rng.uniform(5, 30), 1) if rng.random() < 0.45 else None
    colour = rng.choice(("pink", "white", "brown"))
    if snr is not None:
        names.append(f"{colour} noise {snr} dB")
    return effects, names, snr, colour


def plan_corpus(voices: list[Voice], contents: list[str], *, train: int, test: int, seed: int = 0) -> list[dict]:
    """The utterances to synthesise (no audio yet): ``train`` training utterances and ``test`` of each test split.

    Raises:
        ValueError: when the held-out speaker or a training voice is missing, or counts are negative.
    """
    if train < 0 or test < 0:
        raise ValueError("utterance counts must be >= 0")
    held = [v for v in voices if v.speaker == HELD_OUT_SPEAKER]
    trainable = [v for v in voices if v.speaker != HELD_OUT_SPEAKER]
    if test and not held:
        raise ValueError(f"the held-out voice (speaker {HELD_OUT_SPEAKER!r}, flite) is not installed")
    if not trainable:
        raise ValueError("no training voice is installed (espeak-ng, flite, festival or piper)")
    train_phrasings = [p for p in PHRASINGS if p != HELD_OUT_PHRASING]
    rng = random.Random(seed)
    plan = []

    def add(split: str, voice: Voice, phrasing: str, augment: tuple | None = None) -> dict:
        ins = make_instruction(rng.choice(contents), rng.choice(STYLES), phrasing, rng)
        effects, names, snr, colour = augment or ([], [], None, "pink")
        row = {"id": f"{split}_{len(plan):05d}", "split": split, "voice": voice.name, "speaker": voice.speaker,
               "engine": voice.engine, "licence": voice.licence, **asdict(ins), "sox": effects, "augment": names,
               "snr_db": snr, "noise": colour}  # fmt: skip
        plan.append(row)
        return row

    engines = sorted({v.engine for v in trainable})
    weights = [ENGINE_SHARE.get(e, 0.1) for e in engines]
    for _ in range(train):
        engine = rng.choices(engines, weights)[0]
        voice = rng.choice([v for v in trainable if v.engine == engine])
        add("train", voice, train_phrasings[rng.randrange(len(train_phrasings))], _train_augment(rng))
    for _ in range(test):
        row = add("test_voice", rng.choice(held), train_phrasings[rng.randrange(len(train_phrasings))])
        noisy = dict(row, id=f"test_voice_snr10_{len(plan):05d}", split="test_voice_snr10", snr_db=10.0,
                     noise="pink", augment=["pink noise 10.0 dB"], source=row["id"])  # fmt: skip
        plan.append(noisy)
    for _ in range(test):
        add("test_phrasing", rng.choice(trainable), HELD_OUT_PHRASING)
    return plan


def build_corpus(output: str | os.PathLike, *, contents: list[str] | None = None, train: int = 1600,
                 test: int = 150, seed: int = 0, progress: Progress | None = None) -> dict:  # fmt: skip
    """Synthesise the corpus into ``output`` (module docstring). Utterances already on disk are kept (a build can
    be resumed); ``manifest.jsonl`` and ``voices.json`` are written last.

    Args:
        output: corpus folder (created).
        contents: content labels (default: every label of :data:`models.retrieval.captions.CONTENT_PHRASES`).
        train / test: utterances in ``train`` and in each test split.
        seed: plan seed (deterministic corpus for a seed and set of installed voices).
        progress: optional progress sink (``Cancelled`` between utterances; the manifest is then not written).

    Returns:
        ``{"utterances", "splits", "voices", "missing_engines", "skipped", "seconds"}``.
    """
    import soundfile as sf

    from models.retrieval.captions import CONTENT_PHRASES

    output = Path(output)
    (output / "wav").mkdir(parents=True, exist_ok=True)
    voices, missing = available_voices()
    plan = plan_corpus(voices, list(contents or CONTENT_PHRASES), train=train, test=test, seed=seed)
    by_name = {v.name: v for v in voices}
    by_id = {row["id"]: row for row in plan}
    rows, skipped, total = [], [], 0.0
    for i, row in enumerate(plan):
        if progress is not None and i % 10 == 0:
            progress.update(i / len(plan), f"synthesising {i}/{len(plan)}")
        path = output / "wav" / f"{row['id']}.wav"
        try:
            if not path.is_file():
                if "source" in row:  # a noisy copy of a clean test utterance
                    clean, _ = sf.read(str(output / "wav" / f"{row['source']}.wav"), dtype="float32")
                    audio = add_noise(clean, row["snr_db"], np.random.default_rng(i), row["noise"])
                else:
                    synthesize(by_name[row["voice"]], row["oral"], path, row["sox"])
                    audio = None
                    if row["snr_db"] is not None:
                        audio, _ = sf.read(str(path), dtype="float32")
                        audio = add_noise(audio, row["snr_db"], np.random.default_rng(i), row["noise"])
                if audio is not None:
                    with atomic_write(path) as tmp:
                        sf.write(str(tmp), audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
            seconds = sf.info(str(path)).frames / SAMPLE_RATE
        except (RuntimeError, OSError) as exc:
            skipped.append(f"{row['id']}: {exc}")
            continue
        if seconds > MAX_SECONDS:
            skipped.append(f"{row['id']}: {seconds:.1f} s is over {MAX_SECONDS} s")
            continue
        rows.append({k: v for k, v in dict(row, wav=f"wav/{row['id']}.wav", seconds=round(seconds, 3)).items()
                     if k not in ("sox",)})  # fmt: skip
        total += seconds
    del by_id
    used = sorted({r["voice"] for r in rows})
    voices_doc = {"voices": [asdict(by_name[n]) for n in used], "missing_engines": missing,
                  "held_out_speaker": HELD_OUT_SPEAKER, "held_out_phrasing": HELD_OUT_PHRASING}  # fmt: skip
    _write_text(output / "voices.json", json.dumps(voices_doc, indent=1))
    _write_text(output / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    splits: dict[str, int] = {}
    for r in rows:
        splits[r["split"]] = splits.get(r["split"], 0) + 1
    if progress is not None:
        progress.update(1.0, "corpus written")
    return {"utterances": len(rows), "splits": splits, "voices": len(used), "missing_engines": missing,
            "skipped": skipped, "seconds": round(total, 1)}  # fmt: skip


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as tmp:
        Path(tmp).write_text(text)


def read_manifest(root: str | os.PathLike, split: str | None = None) -> list[dict]:
    """Utterances of a corpus (one split or all).

    Raises:
        FileNotFoundError: when ``root/manifest.jsonl`` is missing.
    """
    path = Path(root) / "manifest.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"not a spoken-instruction corpus (no manifest.jsonl): {root}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if split is None or r["split"] == split]


def pool_states(states: np.ndarray, lengths: np.ndarray, pool: int = POOL) -> tuple[np.ndarray, np.ndarray]:
    """Average-pool encoder states ``(B, S, d)`` by ``pool`` along time -> ``(B, S // pool, d)``, lengths rounded
    up."""
    b, s, d = states.shape
    pooled = states[:, : s - s % pool].reshape(b, s // pool, pool, d).mean(axis=2)
    return pooled, np.minimum(s // pool, -(-np.asarray(lengths) // pool))


def encode_corpus(root: str | os.PathLike, model, *, batch: int = 8, progress: Progress | None = None) -> dict:
    """Frozen Whisper encoder states of every utterance -> ``states.npy`` (float16) + ``states.json``.

    Args:
        root: a corpus folder.
        model: a :class:`models.speech.whisper.WhisperModel`.
    """
    from models.speech.audio import load_instruction

    root = Path(root)
    rows = read_manifest(root)
    out, lengths = None, []
    for start in range(0, len(rows), batch):
        if progress is not None:
            progress.update(start / len(rows), f"encoding {start}/{len(rows)}")
        chunk = rows[start : start + batch]
        states, lens = model.encode([load_instruction(root / r["wav"]) for r in chunk])
        states, lens = pool_states(states, lens)
        if out is None:
            tmp_path = root / "states.npy.part"
            out = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.float16,
                                            shape=(len(rows), states.shape[1], states.shape[2]))  # fmt: skip
        out[start : start + len(chunk)] = states.astype(np.float16)
        lengths += [int(x) for x in lens]
    if out is None:
        raise ValueError(f"{root}: the corpus has no utterances")
    out.flush()
    del out
    os.replace(root / "states.npy.part", root / "states.npy")
    _write_text(root / "states.json", json.dumps({"ids": [r["id"] for r in rows], "lengths": lengths,
                                                  "model_dir": str(model.model_dir), "pool": POOL}))  # fmt: skip
    return {"utterances": len(rows), "states": [len(rows), *np.load(root / "states.npy", mmap_mode="r").shape[1:]]}
