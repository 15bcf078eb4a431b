"""Tri-modal (LAVIMO) training: the soft-target loss, the video encoder's zero-shot start and persistence, and a
real run on rendered mannequin clips (Blender renders, MediaPipe Pose) that pulls each video towards its own
motion, plus ``baton train retrieval --video`` and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.cli import main
from models.retrieval.encoders import TMRConfig
from models.retrieval.model import RetrievalConfig, RetrievalModel, load_retrieval_model
from models.retrieval.trimodal import (
    AttentionFusion,
    MotionDecoder,
    evaluate_items,
    init_video_encoder,
    load_video_items,
    soft_contrastive,
    soft_targets,
    train_trimodal,
)

BANDAI = "bandai_namco_motion_dataset1"
CLIPS = tuple(f"dataset-1_{content}_normal_001" for content in ("walk", "run", "bow", "byebye", "kick", "dash"))


def _config() -> RetrievalConfig:
    return RetrievalConfig(encoder="tmr", embed_dim=64, video_encoder=True,
                           tmr=TMRConfig(d_model=32, layers=1, heads=2, feedforward=64, max_frames=32))  # fmt: skip


def test_soft_targets_follow_lavimo():
    sentences = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), dim=1)
    targets = soft_targets(sentences)
    assert torch.allclose(targets.sum(dim=1), torch.ones(3))
    cosine = float(sentences[0] @ sentences[1])
    assert cosine >= 0.8
    assert targets[0, 1] == pytest.approx(cosine / (1 + cosine))  # near-duplicate captions share the target
    assert targets[0, 2] == 0 and targets[2, 0] == 0 and targets[2, 2] == 1  # dissimilar: a plain one-hot row
    with pytest.raises(ValueError, match="threshold"):
        soft_targets(sentences, threshold=0.0)


def test_soft_contrastive_prefers_aligned_pairs():
    torch.manual_seed(0)
    a = torch.randn(8, 16)
    targets = torch.eye(8)
    aligned = soft_contrastive(a, a + 0.01 * torch.randn(8, 16), targets)
    shuffled = soft_contrastive(a, a[torch.randperm(8)], targets)
    assert float(aligned) < float(shuffled)
    with pytest.raises(ValueError, match="need a, b"):
        soft_contrastive(a, a[:4], targets)
    fused = AttentionFusion(16)(a, [a, a])
    assert fused.shape == (8, 16)
    assert MotionDecoder(16, 246, 32)(fused, 20).shape == (8, 20, 246)


def test_video_encoder_starts_as_the_motion_encoder_and_round_trips(tmp_path, shared_data):
    from models.motion import load_bvh

    torch.manual_seed(0)
    model = RetrievalModel(_config())
    init_video_encoder(model)
    walk = load_bvh(shared_data / BANDAI / "data" / f"{CLIPS[0]}.bvh")
    assert np.allclose(model.embed_video([walk]), model.embed_motion([walk]), atol=1e-6)
    with torch.no_grad():
        for parameter in model.video_encoder.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    video = model.embed_video([walk])
    assert not np.allclose(video, model.embed_motion([walk]), atol=1e-3)  # its own weights now
    again = load_retrieval_model(model.save(tmp_path / "run"))
    assert again.config.video_encoder and np.allclose(again.embed_video([walk]), video, atol=1e-6)
    plain = RetrievalModel(RetrievalConfig(encoder="tmr", embed_dim=64, tmr=_config().tmr))
    assert plain.video_encoder is None
    assert np.allclose(plain.embed_video([walk]), plain.embed_motion([walk]), atol=1e-6)  # the zero-shot path
    with pytest.raises(ValueError, match="video encoder needs the tmr"):
        RetrievalConfig(encoder="patches", video_encoder=True)


@pytest.fixture(scope="module")
def rendered(shared_data: Path, tmp_path_factory) -> Path:
    """Six Bandai Namco dataset-1 clips rendered on mannequins (224², 12 frames at 8 fps)."""
    from backend.library import open_library
    from backend.library.importer import ImportOptions, import_paths
    from backend.render.dataset import build_dataset
    from backend.render.mannequin import RenderSettings

    root = tmp_path_factory.mktemp("trimodal")
    data = root / "bandai1" / "data"
    data.mkdir(parents=True)
    (root / "bandai1" / "LICENSE").symlink_to(shared_data / BANDAI / "LICENSE")
    (root / "bandai1" / "cfg").symlink_to(shared_data / BANDAI / "cfg")
    for name in CLIPS:
        for suffix in (".bvh", ".json"):
            if (shared_data / BANDAI / "data" / (name + suffix)).exists():
                (data / (name + suffix)).symlink_to(shared_data / BANDAI / "data" / (name + suffix))
    url = str(root / "lib.sqlite")
    with open_library(url) as library:
        import_paths(library, [root], ImportOptions(thumbnails=False))
    build_dataset(url, root / "dataset", settings=RenderSettings(frames=12, fps=8.0), scheduler="inline",
                  batch_clips=len(CLIPS), seed=3)  # fmt: skip
    return root / "dataset"


@pytest.fixture(scope="module")
def clips(shared_data, tmp_path_factory):
    from models.retrieval.datasets import load_clips

    return load_clips(shared_data, sources=("bandai1",), fps=10.0, cache_dir=tmp_path_factory.mktemp("cache"))


def _alignment(model: RetrievalModel, items) -> float:
    """Mean cosine of each video with its own motion minus its mean cosine with the other motions."""
    video = model.embed_video_points([i.video for i in items])
    motion = model.embed_points([i.motion for i in items])
    similarity = video @ motion.T
    off = (similarity.sum() - np.trace(similarity)) / (len(items) * (len(items) - 1))
    return float(np.trace(similarity) / len(items) - off)


@pytest.mark.slow
def test_trimodal_training_pulls_each_video_to_its_motion(rendered, clips, tmp_path, monkeypatch):
    from models.retrieval.training import CaptionBank, build_caption_pools

    cache = tmp_path / "cache"
    items = load_video_items(rendered, 10.0, cache, {c.name: "train" for c in clips})
    assert len(items) == len(CLIPS) and {i.split for i in items} == {"train"}
    found = [i for i in items if i.video is not None]
    assert len(found) >= 4, "MediaPipe finds the mannequin in most renders"
    assert all(i.motion.shape[1:] == (80, 3) and len(i.motion) == 15 for i in items)  # 1.5 s at 10 fps
    import models.video.pose as pose

    monkeypatch.setattr(pose, "extract_poses", lambda *a, **k: pytest.fail("the pose points are cached"))
    again = load_video_items(rendered, 10.0, cache, {c.name: "train" for c in clips})
    assert all(np.array_equal(a.motion, b.motion) for a, b in zip(items, again, strict=True))

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = RetrievalModel(_config())
    init_video_encoder(model)
    train = [c for c in clips if c.split == "train"]
    bank = CaptionBank(build_caption_pools(train, 6, None, 0), model.sentence_encoder, tmp_path)
    before = _alignment(model, found)
    control = RetrievalModel(_config())
    control.load_state_dict(model.state_dict())
    video_before = {k: v.clone() for k, v in control.video_encoder.state_dict().items()}
    train_trimodal(control, clips, items, bank, steps=5, video_weight=0.0, batch_size=16, learning_rate=1e-3)
    assert all(torch.equal(v, control.video_encoder.state_dict()[k]) for k, v in video_before.items()), \
        "without the video terms the video encoder is not trained"  # fmt: skip
    stats = train_trimodal(model, clips, items, bank, steps=60, batch_size=16, learning_rate=1e-3)
    assert stats.items == len(found) and len(stats.losses) == 60 and np.isfinite(stats.losses).all()
    after = _alignment(model, found)
    assert after > before + 0.1, (before, after)
    held = [type(i)(**{**i.__dict__, "split": "test"}) for i in items]
    metrics = evaluate_items(model, held)
    assert metrics["items"] == len(CLIPS) and metrics["video_found"] == len(found)
    assert set(metrics["video_to_motion"]) == {"R@1", "R@5", "R@10", "MedR"}
    with pytest.raises(ValueError, match="2 rendered training items"):
        train_trimodal(model, clips, held, bank, steps=1)


@pytest.mark.slow
def test_cli_trains_a_video_encoder_and_refuses_bad_arguments(rendered, shared_data, tmp_path, capsys):
    torch.manual_seed(0)
    init = RetrievalModel(RetrievalConfig(encoder="tmr", embed_dim=64, tmr=_config().tmr)).save(tmp_path / "init")
    out = tmp_path / "run"
    common = ["train", "retrieval", "--data", str(shared_data), "--sources", "bandai1", "--views", "none",
              "--cache-dir", str(tmp_path / "cache"), "--threads", "1"]  # fmt: skip
    assert main([*common, "--video", str(rendered), "--init", str(init), "--video-steps", "3", "-o", str(out),
                 "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["video"]["train_items"] >= 2 and result["metrics"]["video"]["steps"] == 3
    config = json.loads((out / "config.json").read_text())
    assert config["video_encoder"] is True and config["tmr"]["d_model"] == 32  # the init model's size
    assert "--video" in (out / "MODEL_CARD.md").read_text()
    assert load_retrieval_model(out).video_encoder is not None
    for bad, message in (
        (["--init", str(init)], "give --video"),
        (["--video", str(tmp_path)], "not a rendered dataset"),
        (["--video", str(rendered), "--video-weight", "-1"], "--video-weight"),
        (["--video", str(rendered), "--init", str(tmp_path / "nothing")], "no retrieval model"),
    ):
        assert main([*common, *bad, "-o", str(tmp_path / "bad")]) == 1
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()
