"""A short training run on real data (Bandai Namco dataset-1 + CMU 131) improves retrieval over random init, and
one model searches Bandai (22 joints) and CMU (31 joints) clips by text and by motion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from backend.cli import main
from models.motion import load_bvh
from models.retrieval.captions import (
    CONTENT_PHRASES,
    STYLE_PHRASES,
    canonical_caption,
    caption_pool,
    mine_kit_texts,
    mirrored_content,
)
from models.retrieval.datasets import assign_split, bandai_labels, load_clips
from models.retrieval.encoders import PatchConfig, TMRConfig
from models.retrieval.evaluation import evaluate, hit_rates
from models.retrieval.freeform_queries import CONTENT_QUERIES
from models.retrieval.model import RetrievalConfig, RetrievalModel, TrainingConfig
from models.retrieval.training import train_retrieval


def _config(steps: int) -> RetrievalConfig:
    return RetrievalConfig(
        encoder="patches",
        embed_dim=64,
        tmr=TMRConfig(d_model=32, layers=1, heads=2, feedforward=64, max_frames=32),
        patches=PatchConfig(frames=32, hidden_size=64, layers=2, heads=4, intermediate_size=128, dropout=0.0),
        training=TrainingConfig(steps=steps, batch_size=32, learning_rate=1e-3, warmup_steps=10,
                                captions_per_label=6, sources=("bandai1", "cmu131")),  # fmt: skip
    )


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """Feature and sentence-embedding cache shared by this module's tests (never the user's cache)."""
    return tmp_path_factory.mktemp("retrieval-cache")


@pytest.fixture(scope="module")
def clips(shared_data, cache_dir):
    return load_clips(shared_data, sources=("bandai1", "cmu131"), fps=10.0, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def trained(shared_data, clips, cache_dir):
    torch.set_num_threads(1)
    model, _, losses = train_retrieval(_config(150), shared_data, clips=clips, cache_dir=cache_dir)
    return model, losses


def _content_hits(model: RetrievalModel, clips) -> dict[str, float]:
    labelled = [c for c in clips if c.content is not None]
    motion = model.embed_points([np.asarray(c.points, np.float32) for c in labelled])
    text = model.embed_text([canonical_caption(c.content, c.style) for c in labelled])
    contents = np.array([c.content for c in labelled])
    return hit_rates(text @ motion.T, contents[:, None] == contents[None, :], ks=(1, 5))


def test_split_is_deterministic_by_clip(clips):
    test = sorted(c.name for c in clips if c.split == "test")
    assert 15 <= len(test) <= 30 and all(c.source == "bandai1" for c in clips if c.split == "test")
    assert all(c.split == "train" for c in clips if c.source == "cmu131")
    assign_split(clips)
    assert sorted(c.name for c in clips if c.split == "test") == test
    # groups smaller than 4 (dataset-1 kick, punch, ...) stay in training
    assert all(c.split == "train" for c in clips if c.content in ("kick", "punch", "call", "slash"))


def test_captions_are_varied_and_the_freeform_queries_are_not_among_them(shared_data):
    pool = caption_pool("wave-right-hand", "exhausted", count=40)
    assert pool[0] == "a person waves the right hand in an exhausted way"
    assert len(set(pool)) == 40 and any("right" in c for c in pool[1:])
    assert mirrored_content("wave-right-hand") == "wave-left-hand" and mirrored_content("walk") == "walk"
    queries = {q.lower() for _, qs in CONTENT_QUERIES.values() for q in qs}
    kit = mine_kit_texts(shared_data / "tmr_text_motion_annotations/kitml/annotations.json")
    assert len(kit["walk"]) >= 20 and all("walk" in t.lower() for t in kit["walk"])
    for content in CONTENT_PHRASES:
        for style in (None, *STYLE_PHRASES):
            assert not queries & {c.lower() for c in caption_pool(content, style, count=48, kit_texts=kit)}


def test_training_improves_retrieval_over_random_init(clips, trained):
    model, losses = trained
    torch.manual_seed(0)
    untrained = RetrievalModel(_config(1))
    from models.retrieval.training import input_statistics

    input_statistics(untrained, [c for c in clips if c.split == "train"])
    before, after = _content_hits(untrained, clips), _content_hits(model, clips)
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:20])
    assert after["R@1"] >= before["R@1"] + 25.0, (before, after)
    assert after["R@5"] > before["R@5"]
    metrics = evaluate(model, clips)
    assert set(metrics["protocols"]) == {"all", "threshold", "dissimilar"}  # < 32 pairs: no batch32
    assert metrics["protocols"]["threshold"]["text_to_motion"]["R@10"] >= metrics["protocols"]["all"][
        "text_to_motion"]["R@10"]  # fmt: skip
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate(model, clips, ("every",))


def test_cmu_and_bandai_clips_are_searchable_with_one_model(shared_data, clips, trained):
    model, _ = trained
    names = ["cmu_mocap_subject131_bvh/131_01.bvh", "cmu_mocap_subject131_bvh/131_03.bvh"]
    names += [f"bandai_namco_motion_dataset1/data/{c.name}.bvh" for c in clips if c.split == "test"]
    motions = [load_bvh(shared_data / n) for n in names]
    assert {m.skeleton.num_joints for m in motions} == {31, 22}
    gallery = model.embed_motion(motions)  # one call, two skeletons
    # motion -> motion: each clip finds itself first
    similarity = gallery @ gallery.T
    np.testing.assert_array_equal(similarity.argmax(axis=1), np.arange(len(motions)))
    # text -> motion: the CMU description finds the CMU walk among the Bandai clips
    ranking = np.argsort(-(model.embed_text(["Start Walk Stop"]) @ gallery.T)[0])
    assert 0 in ranking[:3]
    # and a Bandai content query finds a clip of that content
    bow = [i for i, n in enumerate(names) if "_bow_" in n]
    if bow:
        ranking = np.argsort(-(model.embed_text(["a person bows"]) @ gallery.T)[0])
        assert set(ranking[:5].tolist()) & set(bow)


def test_train_and_eval_commands(shared_data, cache_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    common = ["--data", str(shared_data), "--cache-dir", str(cache_dir), "--json"]
    code = main(["train", "retrieval", "-o", str(run_dir), "--encoder", "tmr", "--steps", "3", "--layers", "1",
                 "--d-model", "32", "--batch-size", "8", "--captions-per-label", "6", "--sources", "bandai1,cmu131",
                 "--views", "none", "--threads", "1", "--no-eval", *common])  # fmt: skip
    assert code == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["steps"] == 3 and (run_dir / "model.safetensors").is_file()
    assert json.loads((run_dir / "config.json").read_text())["tmr"]["d_model"] == 32
    assert main(["eval", "retrieval", "--run", str(run_dir), "--protocol", "all,threshold", *common]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics["protocols"]) == {"all", "threshold"} and metrics["test_pairs"] >= 15
    for direction in ("text_to_motion", "motion_to_text"):
        assert set(metrics["protocols"]["threshold"][direction]) == {"R@1", "R@2", "R@3", "R@5", "R@10", "MedR"}
    assert metrics["freeform"]["content"]["queries"] > 0
    assert main(["eval", "retrieval", "--run", str(tmp_path / "missing"), *common]) == 1
    assert main(["eval", "retrieval", "--run", str(run_dir), "--protocol", "most", *common]) == 1
    assert main(["train", "retrieval", "-o", str(run_dir), "--steps", "0", *common]) == 1
    assert main(["train", "retrieval", "-o", str(run_dir), "--steps", "1", "--views", "smpl24,robot", *common]) == 1
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["train", "retrieval", "-o", str(tmp_path / "busy"), "--steps", "1", *common]) == 1
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    # retraining into a run folder replaces it whole; nothing else is left beside it
    before = (run_dir / "model.safetensors").read_bytes()
    assert main(["train", "retrieval", "-o", str(run_dir), "--encoder", "patches", "--steps", "1", "--layers", "1",
                 "--d-model", "32", "--batch-size", "8", "--captions-per-label", "6", "--sources", "bandai1,cmu131",
                 "--views", "none", "--threads", "1", "--no-eval", *common]) == 0  # fmt: skip
    capsys.readouterr()
    assert json.loads((run_dir / "config.json").read_text())["encoder"] == "patches"
    assert (run_dir / "model.safetensors").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "run"]


def test_every_bandai_label_has_captions(shared_data, bandai_dataset2_dir):
    one = bandai_labels(shared_data / "bandai_namco_motion_dataset1")
    two = bandai_labels(bandai_dataset2_dir)
    assert len(one) == 174 and len(two) == 2762
    assert {c for _, c, _ in two} == {"walk", "walk-turn-left", "walk-turn-right", "run", "wave-both-hands",
                                      "wave-left-hand", "wave-right-hand", "raise-up-both-hands",
                                      "raise-up-left-hand", "raise-up-right-hand"}  # fmt: skip
    assert len({s for _, _, s in two}) == 7
    for _, content, style in one + two:
        assert canonical_caption(content, style).startswith("a person ")
    labels = {(c, s) for _, c, s in two}
    assert len(labels) == 70
    with pytest.raises(ValueError, match="unknown content"):
        canonical_caption("moonwalk", None)
