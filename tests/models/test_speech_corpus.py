"""The spoken-instruction corpus: oral rephrasings, the voices (every engine really speaks, 16 kHz), noise at the
asked SNR, the held-out voice and phrasing never in training, and a small real build with its manifest."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import soundfile as sf

from models.retrieval.captions import CONTENT_PHRASES
from models.speech.corpus import HELD_OUT_SPEAKER, add_noise, build_corpus, plan_corpus, pool_states
from models.speech.oral import HELD_OUT_PHRASING, PHRASINGS, make_instruction, motion_vocabulary
from models.speech.voices import all_voices, available_voices, engine_missing, synthesize


def test_oral_rephrasing_keeps_the_action_and_style():
    rng = random.Random(3)
    for phrasing in PHRASINGS:
        ins = make_instruction("wave-right-hand", "sad", phrasing, rng)
        assert ins.caption.startswith("a person ")
        assert "right" in ins.oral.lower() and ("wav" in ins.oral.lower() or "greet" in ins.oral.lower())
        style_words = ("sad", "gloom", "sorrow")
        assert any(w in ins.oral.lower() for w in style_words) and any(w in ins.caption for w in style_words)
    with pytest.raises(ValueError, match="phrasing"):
        make_instruction("walk", "sad", "sing", rng)
    assert {"walk", "wave", "sadly", "right"} <= set(motion_vocabulary())


def test_every_engine_speaks_16k_mono(tmp_path):
    voices, missing = available_voices()
    assert not missing, f"TTS engines missing (scripts/apt/speech.txt, pyproject): {missing}"
    engines = {}
    for v in voices:
        engines.setdefault(v.engine, v)
    assert set(engines) == {"espeak", "flite", "festival", "piper"}
    for engine, voice in engines.items():
        path = synthesize(voice, "walk forward", tmp_path / f"{engine}.wav")
        audio, rate = sf.read(path)
        assert rate == 16000 and audio.ndim == 1 and 0.4 < len(audio) / rate < 4.0, engine
        assert np.sqrt(np.mean(audio**2)) > 0.01, f"{engine} produced silence"
        assert voice.licence
    assert engine_missing("nope") is not None


def test_noise_is_added_at_the_asked_snr():
    rng = np.random.default_rng(0)
    signal = (0.2 * np.sin(np.arange(32000) / 7.0)).astype(np.float32)
    for colour in ("white", "pink", "brown"):
        for snr in (5.0, 10.0, 30.0):
            noisy = add_noise(signal, snr, rng, colour)
            noise = noisy - signal
            measured = 10 * np.log10(np.mean(signal.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
            assert abs(measured - snr) < 0.05, (colour, snr, measured)


def test_plan_holds_out_a_speaker_and_a_phrasing():
    plan = plan_corpus(all_voices(), list(CONTENT_PHRASES), train=300, test=20, seed=1)
    train = [r for r in plan if r["split"] == "train"]
    assert len(train) == 300
    assert all(r["speaker"] != HELD_OUT_SPEAKER and r["phrasing"] != HELD_OUT_PHRASING for r in train)
    assert {r["engine"] for r in train} == {"espeak", "flite", "festival", "piper"}
    held = [r for r in plan if r["split"] == "test_voice"]
    assert len(held) == 20 and all(r["speaker"] == HELD_OUT_SPEAKER for r in held)
    noisy = [r for r in plan if r["split"] == "test_voice_snr10"]
    assert [r["source"] for r in noisy] == [r["id"] for r in held] and all(r["snr_db"] == 10.0 for r in noisy)
    assert all(r["phrasing"] == HELD_OUT_PHRASING for r in plan if r["split"] == "test_phrasing")
    assert sum(bool(r["augment"]) for r in train) > 100
    with pytest.raises(ValueError, match="held-out voice"):
        plan_corpus([v for v in all_voices() if v.speaker != HELD_OUT_SPEAKER], ["walk"], train=2, test=1)


def test_small_build_writes_audio_manifest_and_licences(tmp_path):
    result = build_corpus(tmp_path / "c", contents=["walk", "bow"], train=6, test=2, seed=0)
    assert result["splits"] == {"train": 6, "test_voice": 2, "test_voice_snr10": 2, "test_phrasing": 2}
    rows = [json.loads(line) for line in (tmp_path / "c" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(r["content"] in ("walk", "bow") for r in rows)
    for r in rows:
        audio, rate = sf.read(tmp_path / "c" / r["wav"])
        assert rate == 16000 and abs(len(audio) / rate - r["seconds"]) < 1e-3 and r["licence"]
    clean = {r["id"]: r for r in rows if r["split"] == "test_voice"}
    for r in (r for r in rows if r["split"] == "test_voice_snr10"):
        a, _ = sf.read(tmp_path / "c" / r["wav"])
        b, _ = sf.read(tmp_path / "c" / clean[r["source"]]["wav"])
        snr = 10 * np.log10(np.mean(b**2) / np.mean((a - b) ** 2))
        assert 9.0 < snr < 11.0
    voices = json.loads((tmp_path / "c" / "voices.json").read_text())
    assert voices["held_out_speaker"] == HELD_OUT_SPEAKER and all(v["licence"] for v in voices["voices"])


def test_pool_states_averages_and_rounds_lengths_up():
    states = np.arange(2 * 6 * 1, dtype=np.float32).reshape(2, 6, 1)
    pooled, lengths = pool_states(states, np.array([6, 3]), pool=2)
    assert pooled.shape == (2, 3, 1) and pooled[0, 0, 0] == 0.5 and list(lengths) == [3, 2]
