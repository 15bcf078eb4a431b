"""The Diffusion-Conductor denoiser, its losses, condition dropout and a training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.conductor.diffusion_losses import LossWeights, diffusion_losses
from models.conductor.diffusion_model import ConductorDenoiser, DenoiserConfig
from models.conductor.diffusion_sampling import make_scheduler
from models.conductor.diffusion_train import TrainConfig, train_step

TINY = DenoiserConfig(latent_dim=32, num_layers=2, num_heads=4, ff_dim=64, max_frames=96, dropout=0.0)


def _perturbed(cfg: DenoiserConfig = TINY, seed: int = 0) -> ConductorDenoiser:
    """A denoiser whose zero-initialised output layers are randomised, so every input matters."""
    torch.manual_seed(seed)
    model = ConductorDenoiser(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_x0_shape_for_any_window_length():
    model = _perturbed()
    for frames in (2, 37, 96):
        out = model(torch.randn(3, frames, 26), torch.tensor([0, 500, 999]), torch.randn(3, frames, 64))
        assert out.shape == (3, frames, 26) and torch.isfinite(out).all()


def test_bad_shapes_are_refused():
    model = _perturbed()
    with pytest.raises(ValueError, match="max_frames"):
        model(torch.randn(1, 97, 26), torch.tensor([1]), torch.randn(1, 97, 64))
    with pytest.raises(ValueError, match="music"):
        model(torch.randn(1, 10, 26), torch.tensor([1]), torch.randn(1, 11, 64))
    with pytest.raises(ValueError, match="divisible"):
        DenoiserConfig(latent_dim=30, num_heads=4)


def test_stylisation_blocks_start_as_identity():
    torch.manual_seed(0)
    model = ConductorDenoiser(TINY).eval()  # zero-initialised W_out: music and t cannot matter yet
    x = torch.randn(1, 20, 26)
    a = model(x, torch.tensor([10]), torch.randn(1, 20, 64))
    b = model(x, torch.tensor([900]), torch.randn(1, 20, 64))
    assert torch.allclose(a, b)


def test_condition_dropout_replaces_exactly_the_dropped_frames():
    model = _perturbed()
    x, t = torch.randn(1, 30, 26), torch.tensor([400])
    music, other = torch.randn(1, 30, 64), torch.randn(1, 30, 64)
    keep = torch.ones(1, 30)
    keep[0, 10:20] = 0.0
    mixed = music.clone()
    mixed[0, 10:20] = other[0, 10:20]  # differs only where the condition is dropped
    assert torch.allclose(model(x, t, music, keep), model(x, t, mixed, keep), atol=1e-6)
    assert not torch.allclose(model(x, t, music), model(x, t, mixed), atol=1e-4)  # kept frames do matter
    none_kept = torch.zeros(1, 30)
    assert torch.allclose(model(x, t, music, none_kept), model(x, t, other, none_kept), atol=1e-6)


def test_training_draws_per_frame_condition_dropout_at_the_configured_rate():
    model = _perturbed()
    seen = []

    def spy(x_t, t, music, keep):
        seen.append(keep)
        return model(x_t, t, music, keep)

    cfg = TrainConfig(denoiser=TINY, window=96, cond_drop=0.1)
    batch = (torch.randn(16, 96, 26), torch.randn(16, 96, 64), torch.ones(16, 96))
    train_step(spy, batch, make_scheduler(), cfg, generator=torch.Generator().manual_seed(0))
    keep = seen[0]
    assert keep.shape == (16, 96)
    assert set(keep.unique().tolist()) <= {0.0, 1.0}
    assert 0.06 < 1 - keep.mean().item() < 0.14
    assert (keep == 0).any(dim=1).sum() > 8  # dropout is per frame, not per sample


def test_loss_covers_the_whole_window_and_respects_the_mask():
    x0 = torch.randn(2, 120, 26)
    pred = x0.clone()
    pred[:, 100] += 1.0  # an error far past frame 60 (the reference code's mask ignored it)
    assert diffusion_losses(pred, x0)["mse"] > 0
    mask = torch.ones(2, 120)
    mask[:, 100] = 0.0
    masked = diffusion_losses(pred, x0, mask)
    assert masked["mse"].item() == pytest.approx(0.0, abs=1e-7)


def test_elbow_and_head_terms():
    t = torch.linspace(0, 6.28, 90)
    x0 = torch.zeros(1, 90, 26)
    x0[0, :, 14:18] = torch.sin(t)[:, None]  # moving elbows
    static = torch.zeros(1, 90, 26)
    terms_static = diffusion_losses(static, x0)
    terms_moving = diffusion_losses(x0.clone(), x0)
    assert terms_static["elbow"] < 0.01 < terms_moving["elbow"]  # rewarded up to the target's motion
    shaky = x0.clone()
    shaky[0, ::2, 0:10] += 0.3
    assert diffusion_losses(shaky, x0)["head_jitter"] > 0.1 > diffusion_losses(x0, x0)["head_jitter"]
    w = LossWeights()
    total = terms_moving["mse"] + w.velocity * terms_moving["velocity"] - w.elbow * terms_moving["elbow"]
    assert terms_moving["total"].item() == pytest.approx((total + w.head_jitter * terms_moving["head_jitter"]).item())


def test_perceptual_term_uses_the_feature_network():
    x0, pred = torch.randn(1, 30, 26), torch.randn(1, 30, 26)
    feats = lambda kp: kp.reshape(*kp.shape[:2], 26) * 2.0  # noqa: E731
    denorm = lambda x: x.reshape(*x.shape[:2], 13, 2)  # noqa: E731
    terms = diffusion_losses(pred, x0, feature_fn=feats, denormalize=denorm, weights=LossWeights(perceptual=1.0))
    assert terms["perceptual"].item() == pytest.approx(2.0 * (pred - x0).abs().mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="denormalize"):
        diffusion_losses(pred, x0, feature_fn=feats)


def test_training_steps_decrease_the_loss_on_a_tiny_batch():
    torch.manual_seed(0)
    model = ConductorDenoiser(TINY)
    model.train()
    cfg = TrainConfig(denoiser=TINY, window=48, overlap=12, cond_drop=0.1)
    t = torch.linspace(0, 4 * 3.14, 48)
    x0 = torch.stack([torch.sin(t + k) for k in range(26)], dim=-1)[None].repeat(4, 1, 1)
    batch = (x0, torch.randn(4, 48, 64), torch.ones(4, 48))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    scheduler = make_scheduler()
    losses = []
    for _ in range(40):
        terms = train_step(model, batch, scheduler, cfg, generator=torch.Generator().manual_seed(1))
        opt.zero_grad()
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(terms["mse"].item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_stage_two_encodes_music_with_batchnorm_in_eval_mode():
    from models.conductor.diffusion import encode_music
    from models.conductor.diffusion_train import cache_music_features
    from models.conductor.m2s import MusicEncoder
    from models.motion.conductor_dataset import ConductorSample

    torch.manual_seed(0)
    encoder = MusicEncoder()
    with torch.no_grad():  # give BatchNorm running statistics unlike a fresh batch's
        for m in encoder.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    encoder.train()  # as left by stage 1
    rng = np.random.default_rng(0)
    sample = ConductorSample(rng.random((180, 128), dtype=np.float32), rng.random((60, 13, 2), dtype=np.float32))
    feats = cache_music_features(encoder, [sample, sample])
    assert not encoder.training
    assert feats[0] is feats[1]  # identical music is encoded once
    expected = encode_music(encoder.eval(), sample.mel, 60)
    assert torch.allclose(feats[0], expected, atol=1e-5)
    with torch.no_grad():
        train_mode = encoder.train()(torch.from_numpy(sample.mel)[None])[0]
    assert not torch.allclose(feats[0], train_mode, atol=1e-3)  # batch statistics would give other features


def test_rhythm_condition_widens_the_denoiser_and_old_configs_still_load():
    from models.conductor.rhythm import RHYTHM_DIM

    old = {k: v for k, v in TINY.to_dict().items() if k != "rhythm_dim"}  # a checkpoint written before rhythm
    assert DenoiserConfig.from_dict(old).condition_dim == 64
    cfg = DenoiserConfig(**{**old, "rhythm_dim": RHYTHM_DIM})
    assert cfg.condition_dim == 64 + RHYTHM_DIM
    model = _perturbed(cfg)
    out = model(torch.randn(2, 30, 26), torch.tensor([5, 700]), torch.randn(2, 30, cfg.condition_dim))
    assert out.shape == (2, 30, 26)
    with pytest.raises(ValueError, match="music"):
        model(torch.randn(1, 30, 26), torch.tensor([5]), torch.randn(1, 30, 64))  # encoder features alone
    with pytest.raises(ValueError, match="rhythm_dim"):
        DenoiserConfig(rhythm_dim=-1)


def test_stage_two_caches_the_rhythm_condition_of_each_whole_piece():
    from backend.conductor.synth import synthesize_demo_piece
    from models.conductor.audio import conductor_mel
    from models.conductor.diffusion import encode_music, music_condition
    from models.conductor.diffusion_train import cache_music_features
    from models.conductor.m2s import MusicEncoder
    from models.conductor.rhythm import RHYTHM_DIM, rhythm_features
    from models.motion.conductor_dataset import ConductorSample

    torch.manual_seed(0)
    encoder = MusicEncoder().eval()
    mel = conductor_mel(synthesize_demo_piece(seconds=8.0, bpm=120.0, meter=4))
    frames = mel.shape[0] // 3
    sample = ConductorSample(mel, np.full((frames, 13, 2), 0.5, np.float32))
    (feats,) = cache_music_features(encoder, [sample], RHYTHM_DIM)
    assert feats.shape == (frames, 64 + RHYTHM_DIM)
    assert torch.allclose(feats[:, :64], encode_music(encoder, mel, frames), atol=1e-5)
    assert np.allclose(feats[:, 64:].numpy(), rhythm_features(mel, frames), atol=1e-6)
    with pytest.raises(ValueError, match="rhythm"):
        music_condition(feats[:, :64], mel, frames, 5)
