"""Text-to-motion networks, staged training with resume, and the generator API on a tiny run trained here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.instruct import MAX_SECONDS, MIN_SECONDS, TimelineSegment, WeightsNotAvailable, load_text_to_motion
from models.instruct.data import FEATURE_DIM, T2MData
from models.instruct.networks import (
    RVQVAE,
    MaskedTransformer,
    PriorConfig,
    ResidualTransformer,
    TokenBigram,
    TransformerConfig,
    VQConfig,
    load_network,
    save_network,
)
from models.instruct.train import TrainConfig, clip_weights, train_t2m, window_weights
from models.motion.humanml3d import joints_to_features
from models.progress import Cancelled, Progress

TINY_VQ = VQConfig(width=32, code_dim=16, codebook_size=16, num_quantizers=3, depth=1)
TINY_TF = TransformerConfig(d_model=32, layers=1, heads=2, feedforward=64)


def test_rvqvae_shapes_and_roundtrip(tmp_path):
    torch.manual_seed(0)
    vq = RVQVAE(TINY_VQ)
    x = torch.randn(2, 32, FEATURE_DIM)
    recon, codes, commit = vq(x)
    assert recon.shape == x.shape and codes.shape == (2, 8, 3) and commit.ndim == 0
    vq.eval()
    codes = vq.encode(x)
    assert codes.dtype == torch.long and int(codes.max()) < 16
    assert vq.decode(codes).shape == (2, 32, FEATURE_DIM)
    # a missing residual layer (-1) decodes like a shorter code stack
    dropped = codes.clone()
    dropped[..., 2] = -1
    torch.testing.assert_close(vq.decode(dropped), vq.decode(codes[..., :2]))
    save_network(tmp_path / "vq.pt", "vq", vq, {"mean": torch.zeros(FEATURE_DIM)})
    loaded, payload = load_network(tmp_path / "vq.pt", "vq")
    torch.testing.assert_close(loaded.decode(codes), vq.decode(codes))
    assert payload["config"]["codebook_size"] == 16
    with pytest.raises(ValueError, match="'mask'"):
        load_network(tmp_path / "vq.pt", "mask")


def test_masked_transformer_learns_a_text_conditioned_sequence():
    """Two captions, two token sequences: after a short fit the guided prediction of a fully masked sequence
    recovers the right one for each caption (the condition is used)."""
    torch.manual_seed(0)
    cfg = TransformerConfig(codebook_size=16, num_quantizers=2, d_model=32, layers=2, heads=2, feedforward=64,
                            text_dim=8, max_tokens=8, dropout=0.0)  # fmt: skip
    net = MaskedTransformer(cfg)
    codes = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8], [9, 9, 10, 10, 11, 11, 12, 12]])
    text = torch.eye(8)[:2]
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(300):
        loss, _ = net.training_loss(codes.repeat(8, 1), torch.full((16,), 8), text.repeat(8, 1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()
    masked = torch.full((2, 8), cfg.mask_id)
    padding = torch.zeros(2, 8, dtype=torch.bool)
    with torch.no_grad():
        cond = net(masked, text, padding, torch.zeros(2, dtype=torch.bool))
        uncond = net(masked, text, padding, torch.ones(2, dtype=torch.bool))
    guided = uncond + 4.0 * (cond - uncond)
    assert (guided.argmax(-1) == codes).float().mean() > 0.8


def test_residual_transformer_reads_only_lower_layers():
    torch.manual_seed(0)
    net = ResidualTransformer(TransformerConfig(codebook_size=16, num_quantizers=3, d_model=32, layers=1, heads=2,
                                                feedforward=64, text_dim=8, max_tokens=8)).eval()  # fmt: skip
    codes = torch.randint(0, 16, (1, 8, 3))
    changed = codes.clone()
    changed[..., 1:] = (changed[..., 1:] + 5) % 16
    text, pad = torch.zeros(1, 8), torch.zeros(1, 8, dtype=torch.bool)
    with torch.no_grad():
        a = net(codes, torch.tensor([1]), text, pad)
        b = net(changed, torch.tensor([1]), text, pad)
        c = net(changed, torch.tensor([2]), text, pad)
    torch.testing.assert_close(a, b)  # layer 1 depends on layer 0 only
    assert not torch.allclose(a, c)


def test_token_bigram_counts_transitions_and_scores_known_neighbours(tmp_path):
    """TokenBigram: counts ``a -> b`` transitions of base codes; for each position it adds log P(x | previous) where
    the previous code is known and log P(x | next) where the next one is, nothing where both are masked."""
    k = 8
    prior = TokenBigram(PriorConfig(codebook_size=k, smoothing=0.01))
    cycle = torch.tensor([1, 2, 3, 4] * 6)
    prior.fit([cycle, torch.stack([cycle, cycle], 1)])  # (L,) and (L, Q) sequences; layer 0 is counted
    assert float(prior.counts[1, 2]) == pytest.approx(2 * 6 + 0.01) and float(prior.counts[4, 1]) == pytest.approx(
        2 * 5 + 0.01)
    mask = k  # any id >= K is unknown
    ids = torch.tensor([[1, mask, mask, mask, 2]])
    log = prior(ids)
    assert log.shape == (1, 5, k)
    assert int(log[0, 1].argmax()) == 2  # after a 1 comes a 2
    assert int(log[0, 3].argmax()) == 1  # before a 2 comes a 1
    assert torch.equal(log[0, 2], torch.zeros(k))  # both neighbours masked: no opinion
    both = prior(torch.tensor([[1, mask, 3]]))[0, 1]
    def margin(scores):
        top = scores.topk(2).values
        return float(top[0] - top[1])

    assert int(both.argmax()) == 2 and margin(both) > margin(log[0, 1])  # 1 -> ? -> 3: both sides say 2
    save_network(tmp_path / "prior.pt", "prior", prior)
    loaded, _ = load_network(tmp_path / "prior.pt", "prior")
    torch.testing.assert_close(loaded(ids), log)
    with pytest.raises(ValueError, match="0..7"):
        prior.fit([torch.tensor([1, 9])])


def test_the_prior_steers_decoding_and_weight_zero_turns_it_off(tiny_run, tmp_path):
    """With the prior the decoded motion changes (same seed); weight 0 decodes exactly as a run without prior.pt;
    the metadata say which weight took effect."""
    import shutil

    run, _, _ = tiny_run
    g = load_text_to_motion(run)
    assert g.prior is not None
    plain = tmp_path / "no_prior"
    shutil.copytree(run, plain, ignore=shutil.ignore_patterns("prior.pt", "checkpoints"))
    h = load_text_to_motion(plain)
    assert h.prior is None
    off = g.generate("a person walks forward", seconds=3.0, seed=2, prior_weight=0.0)[0]
    without = h.generate("a person walks forward", seconds=3.0, seed=2)[0]
    np.testing.assert_array_equal(off.positions, without.positions)
    assert off.metadata["prior_weight"] == 0.0 and without.metadata["prior_weight"] == 0.0
    # a strong prior decides the codes: the decoded base codes step only along transitions the training windows have
    decoded = []
    decode = g._decode
    g._decode = lambda codes: decoded.append(codes.clone()) or decode(codes)
    strong = g.generate("a person walks forward", seconds=3.0, seed=2, prior_weight=50.0)[0]
    assert strong.metadata["prior_weight"] == 50.0
    base = decoded[0][0, :, 0].tolist()
    seen = g.prior.counts > g.prior.config.smoothing
    assert all(bool(seen[a, b]) for a, b in zip(base[:-1], base[1:], strict=True)), base


def test_the_prior_reads_only_codes_of_its_own_prompt(tiny_run, monkeypatch):
    """In a timeline the first window of the second prompt sees the first prompt's codes as context (the transformer
    reads them), but the bigram prior gets them as unknown, so it cannot pull the new action back into the old
    one's transitions; within one prompt the prior reads the context."""
    run, _, _ = tiny_run
    g = load_text_to_motion(run)
    k = g.prior.config.codebook_size
    calls = []
    forward = type(g.prior).forward
    monkeypatch.setattr(type(g.prior), "forward", lambda self, ids: calls.append(ids.clone()) or forward(self, ids))
    g.generate([TimelineSegment("walk", 0, 2), TimelineSegment("raise the right arm", 2, 4)], seed=0)
    windows = g._windows(np.ones(20, bool), np.repeat([0, 1], 10))
    (left, start, _, _), steps = windows[1], len(calls) // len(windows)
    assert left < start  # the second prompt's window starts with context codes of the first
    for ids in calls[steps:]:  # the second window's decoding steps
        assert (ids[:, : start - left] >= k).all()
    calls.clear()
    g.generate("walk", seconds=6.0, seed=0)  # 30 codes: two windows of one prompt
    (left, start, _, _) = g._windows(np.ones(30, bool), np.zeros(30, dtype=np.int64))[1]
    assert left < start and (calls[-1][:, : start - left] < k).all()


def _tiny_data() -> T2MData:
    """Two synthetic 'motions': a figure walking forward and one raising its right arm, with captions."""
    from models.motion.skeleton import get_skeleton

    rest = get_skeleton("smpl22").rest_positions().astype(np.float64)
    rest[:, 1] -= rest[:, 1].min()
    frames = 81
    t = np.arange(frames) / 20.0
    walk = np.repeat(rest[None], frames, 0)
    walk[..., 2] += 1.2 * t[:, None]
    walk[:, [7, 10], 1] += 0.05 * np.maximum(0, np.sin(2 * np.pi * t))[:, None]
    raise_arm = np.repeat(rest[None], frames, 0)
    lift = np.clip(t / 2.0, 0, 1)[:, None]
    raise_arm[:, 19] = rest[17] + (1 - lift) * (rest[19] - rest[17]) + lift * np.array([0, 0.26, 0])
    raise_arm[:, 21] = raise_arm[:, 19] + (1 - lift) * (rest[21] - rest[19]) + lift * np.array([0, 0.27, 0])
    feats = {"walk": joints_to_features(walk), "raise": joints_to_features(raise_arm)}
    stacked = np.concatenate(list(feats.values()))
    return T2MData(root=None, features=feats,
                   texts={"walk": ["a person walks forward"], "raise": ["a person raises the right arm"]},
                   splits={"train": ["walk", "raise"], "val": [], "test": []},
                   mean=stacked.mean(0).astype(np.float32), std=(stacked.std(0) + 0.05).astype(np.float32))  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("t2m_run")
    cfg = TrainConfig(vq=TINY_VQ, transformer=TINY_TF, vq_steps=80, vq_lr=2e-3, vq_batch=4, vq_window=32, mask_steps=30,
                      residual_steps=20, length_steps=20, transformer_batch=4, max_frames=64, warmup=5,
                      checkpoint_every=10, vq_heading_weight=0.0)  # fmt: skip  (heading loss: its own test below)
    return run, cfg, train_t2m(_tiny_data(), cfg, run)


def test_training_writes_every_stage_and_resumes(tiny_run, tmp_path):
    run, cfg, result = tiny_run
    assert all(result["stages"].values())
    for name in ("vq.pt", "mask.pt", "residual.pt", "length.pt", "prior.pt", "config.json"):
        assert (run / name).is_file()
    prior, payload = load_network(run / "prior.pt", "prior")  # counted over the training windows' base codes
    assert payload["windows"] >= 2 and float(prior.counts.sum()) > prior.config.smoothing * 16 * 16
    # the autoencoder learned: it reconstructs the training motion better than an untrained one
    data = _tiny_data()
    x = torch.from_numpy(data.normalise(data.features["walk"][:64]))[None]
    trained, _ = load_network(run / "vq.pt", "vq")
    torch.manual_seed(0)
    fresh = RVQVAE(TINY_VQ).eval()
    with torch.no_grad():
        errors = [float((net.decode(net.encode(x)) - x).abs().mean()) for net in (trained, fresh)]
    assert errors[0] < 0.7 * errors[1]
    # cancel mid-stage: a checkpoint is left, nothing final; a second run resumes from it
    other = tmp_path / "resume"
    progress = Progress(callback=lambda f, s: progress.cancel() if "(25/" in s else None)
    with pytest.raises(Cancelled):
        train_t2m(_tiny_data(), cfg, other, stages=("vq",), progress=progress)
    assert (other / "checkpoints" / "vq.pt").is_file() and not (other / "vq.pt").exists()
    assert torch.load(other / "checkpoints" / "vq.pt", weights_only=False)["step"] == 20
    train_t2m(_tiny_data(), cfg, other, stages=("vq",))
    assert (other / "vq.pt").is_file() and not (other / "mask.pt").exists()


def test_generator_api(tiny_run):
    run, _, _ = tiny_run
    g = load_text_to_motion(run)
    motions = g.generate("someone walks ahead", seconds=2.0, samples=3, seed=1)
    assert len(motions) == 3
    for m in motions:
        assert m.skeleton.name == "smpl22" and m.fps == 20.0
        assert m.positions.shape == (40, 22, 3) and m.rotations.shape == (40, 22, 4)
        assert np.isfinite(m.positions).all()
    again = g.generate("someone walks ahead", seconds=2.0, samples=3, seed=1)
    np.testing.assert_array_equal(again[0].positions, motions[0].positions)  # same seed -> same motion
    # longer than one window (64 frames) and a timeline
    long = g.generate("walk", seconds=10.0)[0]
    assert long.num_frames == 200
    timeline = [TimelineSegment("walk", 0, 2), TimelineSegment("raise the right arm", 2, 4)]
    assert g.generate(timeline)[0].num_frames == 80
    assert MIN_SECONDS <= g.estimate_seconds("walk") <= MAX_SECONDS
    edited = g.inpaint(long, "raise the right arm", 2.0, 4.0, samples=2)
    assert len(edited) == 2 and edited[0].num_frames == long.num_frames


@pytest.mark.parametrize("kwargs, message", [
    ({"prompt": ""}, "empty"), ({"prompt": "x" * 10_000}, "1000"), ({"seconds": 0}, "between"),
    ({"seconds": 3600}, "between"), ({"seconds": math.nan}, "between"), ({"guidance": math.nan}, "guidance"),
    ({"guidance": -1}, "guidance"), ({"samples": 0}, "samples"), ({"samples": 17}, "samples"),
    ({"prior_weight": math.nan}, "prior_weight"), ({"prior_weight": -0.5}, "prior_weight"),
    ({"prompt": [TimelineSegment("a", 2, 1)]}, "start_s < end_s"),
    ({"prompt": [TimelineSegment("a", 0, 2), TimelineSegment("b", 1, 3)]}, "overlap"),
])  # fmt: skip
def test_bad_input_is_refused(tiny_run, kwargs, message):
    run, _, _ = tiny_run
    g = load_text_to_motion(run)
    args = {"prompt": "a person walks", "seconds": 2.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        g.generate(args.pop("prompt"), **args)


def test_missing_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(WeightsNotAvailable, match="baton train t2m"):
        load_text_to_motion(tmp_path)


def _turning_data() -> T2MData:
    """A figure walking while turning left at 45 degrees per second, and one walking straight (smpl22, 20 fps)."""
    from scipy.spatial.transform import Rotation

    from models.motion.skeleton import get_skeleton

    rest = get_skeleton("smpl22").rest_positions().astype(np.float64)
    rest[:, 1] -= rest[:, 1].min()
    frames = 81
    t = np.arange(frames) / 20.0
    feats = {}
    for name, rate in (("turn", np.radians(45.0)), ("straight", 0.0)):
        yaw = rate * t
        body = np.einsum("tij,kj->tki", Rotation.from_euler("y", yaw[:, None]).as_matrix(), rest - rest[0]) + rest[0]
        step = np.stack([np.sin(yaw), np.zeros(frames), np.cos(yaw)], 1) * 1.2 / 20.0
        feats[name] = joints_to_features(body + np.cumsum(step, 0)[:, None])
    stacked = np.concatenate(list(feats.values()))
    return T2MData(root=None, features=feats, texts={"turn": ["a person turns"], "straight": ["a person walks"]},
                   splits={"train": ["turn", "straight"], "val": [], "test": []},
                   mean=stacked.mean(0).astype(np.float32), std=(stacked.std(0) + 0.05).astype(np.float32))  # fmt: skip


def test_heading_loss_keeps_the_turn_through_the_rvqvae(tmp_path):
    """The RVQ-VAE's heading loss (vq_heading_weight): the accumulated root yaw of a turning walk survives
    tokenisation better with it than with MoMask's loss alone (weight 0), from the same seed and steps."""
    data = _turning_data()
    x = torch.from_numpy(data.normalise(data.features["turn"][:64]))[None]
    target = float(data.features["turn"][:64, 0].sum())
    errors = {}
    for weight in (0.0, 1.0):
        cfg = TrainConfig(vq=TINY_VQ, transformer=TINY_TF, vq_steps=60, vq_lr=2e-3, vq_batch=4, vq_window=32,
                          max_frames=64, warmup=5, checkpoint_every=1000, vq_heading_weight=weight)  # fmt: skip
        train_t2m(data, cfg, tmp_path / f"w{weight}", stages=("vq",))
        vq, _ = load_network(tmp_path / f"w{weight}" / "vq.pt", "vq")
        with torch.no_grad():
            recon = vq.eval().decode(vq.encode(x))[0].numpy() * data.std + data.mean
        errors[weight] = abs(float(recon[:, 0].sum()) - target)
    assert abs(target) > np.radians(45)  # the window holds a real turn
    assert errors[1.0] < 0.5 * errors[0.0], errors


def test_content_balance_draws_rare_contents_more_often():
    groups = ["walk"] * 90 + ["kick"] * 10
    uniform = window_weights(groups, 0.0)
    assert np.allclose(uniform, 0.01)
    sqrt = window_weights(groups, 0.5)
    assert sqrt[90:].sum() == pytest.approx(np.sqrt(10) / (np.sqrt(10) + np.sqrt(90)))  # 25 % of the draws
    equal = window_weights(groups + [None, None], 1.0)
    assert equal[:90].sum() == pytest.approx(1 / 3) and equal[-2:].sum() == pytest.approx(1 / 3)
    assert sqrt.sum() == pytest.approx(1.0) and (sqrt[90:] > sqrt[0]).all()
    with pytest.raises(ValueError, match="balance"):
        window_weights(groups, 1.5)
    with pytest.raises(ValueError, match="no training window"):
        window_weights([], 0.5)
    with pytest.raises(ValueError, match="content_balance"):
        TrainConfig(content_balance=-0.1)
    with pytest.raises(ValueError, match="vq_heading_weight"):
        TrainConfig(vq_heading_weight=float("nan"))


def test_vq_content_balance_weights_clips_by_frames_and_content():
    # 9 walk clips of 100 frames, 2 bow clips of 50 and 150 frames: uniform over frames at 0 ...
    frames, groups = [100] * 9 + [50, 150], ["walk"] * 9 + ["bow"] * 2
    uniform = clip_weights(frames, groups, 0.0)
    assert np.allclose(uniform, np.array(frames) / 1100)
    # ... every content equally at 1 (the 150-frame bow clip three times as often as the 50-frame one)
    equal = clip_weights(frames, groups, 1.0)
    assert equal[:9].sum() == pytest.approx(0.5) and equal[9:].sum() == pytest.approx(0.5)
    assert equal[10] == pytest.approx(3 * equal[9])
    sqrt = clip_weights(frames, groups, 0.5)
    assert sqrt[9:].sum() == pytest.approx(np.sqrt(200) / (np.sqrt(200) + np.sqrt(900)))
    with pytest.raises(ValueError, match="balance"):
        clip_weights(frames, groups, float("nan"))
    with pytest.raises(ValueError, match="one content label per clip"):
        clip_weights(frames, groups[:-1], 0.5)
    with pytest.raises(ValueError, match="vq_content_balance"):
        TrainConfig(vq_content_balance=2.0)


def test_token_phases_tokenize_each_clip_at_every_start_offset():
    from models.instruct.train import _windows, tokenize

    data = _tiny_data()  # 80 feature frames per clip
    one = _windows(data, ["walk"], max_frames=196, multiple=4)
    assert one == [("walk", 0, 80)]
    four = _windows(data, ["walk"], max_frames=196, multiple=4, phases=4)
    assert four == [("walk", 0, 80), ("walk", 1, 76), ("walk", 2, 76), ("walk", 3, 76)]
    # long clips: windows of max_frames at each offset, every one inside the clip
    long = _windows(data, ["walk"], max_frames=40, multiple=4, phases=2)
    assert {s % 2 for _, s, _ in long} == {0, 1}
    assert all(f == 40 and s + f <= 80 for _, s, f in long)
    with pytest.raises(ValueError, match="phases"):
        _windows(data, ["walk"], 196, 4, phases=5)
    with pytest.raises(ValueError, match="token_phases"):
        TrainConfig(token_phases=0)
    # each offset is another code sequence of the same motion
    torch.manual_seed(0)
    vq = RVQVAE(VQConfig(width=32, code_dim=16, codebook_size=64, num_quantizers=2, depth=1, down=2)).eval()
    with torch.no_grad():
        codes = tokenize(vq, data, ["raise"], 196, phases=4)
    assert [c.shape[0] for _, c in codes] == [20, 19, 19, 19]
    assert len({tuple(c[:19, 0].tolist()) for _, c in codes}) > 1
