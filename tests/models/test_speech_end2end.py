"""The end-to-end speech condition: memory-retrieval attention shapes, padding really masked, checkpoint round
trip and refusal of foreign files, and training that learns to map states to their caption's embedding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.speech.end2end import (
    MemoryRetrievalAttention,
    SpeechConditionConfig,
    SpeechTrainConfig,
    load_speech_condition,
    save_speech_condition,
    train_speech_condition,
)

SMALL = SpeechConditionConfig(state_dim=16, dim=32, memory_tokens=8, heads=4, feedforward=64, max_states=40, pool=2)


def test_paper_sizes_by_default():
    c = SpeechConditionConfig()
    assert (c.memory_tokens, c.dim, c.cond_drop, c.cond_dim) == (256, 512, 0.2, 384)
    assert MemoryRetrievalAttention(c).memory.shape == (256, 512)


def test_condition_shape_unit_norm_and_padding_is_ignored():
    torch.manual_seed(0)
    model = MemoryRetrievalAttention(SMALL).eval()
    states = torch.randn(2, 40, 16)
    lengths = torch.tensor([25, 40])
    out = model(states, lengths)
    assert out.shape == (2, 384)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    changed = states.clone()
    changed[0, 25:] = 100.0  # beyond the valid length: must not matter
    changed_out = model(changed, lengths)
    assert torch.allclose(out[0], changed_out[0], atol=1e-5)
    changed[0, 3] += 5.0  # inside: must matter
    assert not torch.allclose(out[0], model(changed, lengths)[0], atol=1e-4)


def test_checkpoint_round_trip_and_foreign_files(tmp_path):
    model = MemoryRetrievalAttention(SMALL).eval()
    save_speech_condition(tmp_path / "s.pt", model, {"vocabulary": ["a person walks"]})
    loaded, payload = load_speech_condition(tmp_path / "s.pt")
    x = torch.randn(1, 40, 16)
    assert torch.allclose(model(x, torch.tensor([40])), loaded(x, torch.tensor([40])))
    assert payload["vocabulary"] == ["a person walks"]
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_speech_condition(tmp_path / "bad.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a Baton speech-condition"):
        load_speech_condition(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_speech_condition(tmp_path / "missing.pt")


def _fake_corpus(root, captions, per_caption, rng):
    """An encoded corpus whose states carry their caption as a pattern in noise (a learnable stand-in for speech)."""
    patterns = rng.normal(size=(len(captions), 16)).astype(np.float32)
    rows, states, lengths = [], [], []
    for split, count in (("train", per_caption), ("test_phrasing", 2)):
        for k, caption in enumerate(captions):
            for _ in range(count):
                n = int(rng.integers(10, 40))
                s = rng.normal(scale=0.5, size=(40, 16)).astype(np.float32)
                s[:n] += patterns[k]
                rows.append({"id": f"{split}_{len(rows)}", "split": split, "caption": caption, "content": "walk",
                             "style": "normal", "wav": "none.wav"})  # fmt: skip
                states.append(s)
                lengths.append(n)
    root.mkdir()
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    np.save(root / "states.npy", np.stack(states).astype(np.float16))
    (root / "states.json").write_text(json.dumps({"ids": [r["id"] for r in rows], "lengths": lengths, "pool": 2}))


def test_training_maps_states_to_their_caption(tmp_path):
    captions = ["a person walks forward", "a person bows politely", "a person waves the right hand",
                "a person kicks angrily", "a person runs forward", "a person raises both hands"]  # fmt: skip
    _fake_corpus(tmp_path / "corpus", captions, 20, np.random.default_rng(0))
    torch.manual_seed(0)
    result = train_speech_condition(tmp_path / "corpus", tmp_path / "run", config=SMALL,
                                    train=SpeechTrainConfig(steps=150, batch=24, lr=2e-3, warmup=10))  # fmt: skip
    assert result["val_top1"] >= 0.9, result
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["align"] < log[0]["align"]
    model, payload = load_speech_condition(tmp_path / "run" / "speech.pt")
    assert sorted(payload["vocabulary"]) == sorted(captions) and model.config.dim == 32
