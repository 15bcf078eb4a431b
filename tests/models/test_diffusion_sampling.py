"""DDIM schedule and sampling loop of the Diffusion-Conductor (diffusers scheduler, guidance, windowed generation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from models.conductor.diffusion_model import ConductorDenoiser, DenoiserConfig
from models.conductor.diffusion_sampling import (
    ddim_sample,
    generate_windowed,
    make_scheduler,
    seam_jumps,
    window_starts,
)

TINY = DenoiserConfig(latent_dim=16, num_layers=1, num_heads=2, ff_dim=32, max_frames=64, dropout=0.0)


def test_scheduler_config_round_trip(tmp_path):
    scheduler = make_scheduler()
    scheduler.save_config(tmp_path)
    loaded = DDIMScheduler.from_pretrained(tmp_path)
    strip = lambda c: {k: v for k, v in dict(c).items() if not k.startswith("_")}  # noqa: E731
    assert strip(loaded.config) == strip(scheduler.config)
    assert loaded.config.prediction_type == "sample"
    assert loaded.config.num_train_timesteps == 1000
    betas = loaded.betas.numpy()
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    assert np.allclose(np.diff(betas), np.diff(betas)[0], atol=1e-9)  # linear
    loaded.set_timesteps(20)
    assert len(loaded.timesteps) == 20 and int(loaded.timesteps[0]) > 900


def test_scheduler_refuses_epsilon_prediction():
    with pytest.raises(ValueError, match="prediction_type"):
        make_scheduler({"prediction_type": "epsilon"})


def test_ddim_loop_returns_the_predicted_x0_of_a_perfect_denoiser():
    target = torch.linspace(-1, 1, 40 * 26).reshape(1, 40, 26)
    calls = []

    def oracle(x_t, t, music, keep):
        calls.append(int(t[0]))
        return target.expand(x_t.shape[0], -1, -1)

    out = ddim_sample(oracle, torch.zeros(1, 40, 64), scheduler=make_scheduler(), steps=25,
                      generator=torch.Generator().manual_seed(0))
    assert len(calls) == 25 and calls == sorted(calls, reverse=True)  # 25 DDIM steps, not 1000
    assert torch.allclose(out, target, atol=1e-5)


def test_ddim_with_tiny_model_is_seeded_and_shaped():
    torch.manual_seed(0)
    model = ConductorDenoiser(TINY).eval()
    music = torch.randn(2, 50, 64)
    with torch.no_grad():
        a = ddim_sample(model, music, scheduler=make_scheduler(), steps=10, generator=torch.Generator().manual_seed(3))
        b = ddim_sample(model, music, scheduler=make_scheduler(), steps=10, generator=torch.Generator().manual_seed(3))
        c = ddim_sample(model, music, scheduler=make_scheduler(), steps=10, generator=torch.Generator().manual_seed(4))
    assert a.shape == (2, 50, 26) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.allclose(a, c)
    with pytest.raises(ValueError, match="steps"):
        ddim_sample(model, music, scheduler=make_scheduler(), steps=0)


def test_classifier_free_guidance_combines_conditional_and_unconditional_x0():
    cond_x0, uncond_x0 = torch.full((1, 8, 26), 2.0), torch.full((1, 8, 26), 0.5)

    def denoise(x_t, t, music, keep):
        k = keep[..., None]
        return k * cond_x0.expand_as(x_t) + (1 - k) * uncond_x0.expand_as(x_t)

    out = ddim_sample(denoise, torch.zeros(1, 8, 64), scheduler=make_scheduler(), steps=5, guidance=3.0)
    assert torch.allclose(out, uncond_x0 + 3.0 * (cond_x0 - uncond_x0), atol=1e-5)


def test_window_starts_cover_every_frame():
    for frames in (1, 64, 65, 200, 301):
        starts = window_starts(frames, 64, 16)
        covered = np.zeros(frames, bool)
        for s in starts:
            covered[s:s + 64] = True
        assert covered.all() and starts[0] == 0 and starts[-1] + 64 >= frames
    with pytest.raises(ValueError):
        window_starts(100, 64, 64)


def _smooth_but_window_biased(x_t, t, music, keep):
    """x0 = a smooth function of the music plus a per-window offset (set by the window's first music frame): a
    window-level bias that makes naive window concatenation jump at every join."""
    offset = 2.0 + 5.0 * music[:, :1, :1]
    return music[..., :26] + offset


def test_windowed_generation_is_continuous_at_joins():
    frames, window, overlap = 203, 64, 16  # not a multiple of the window
    t = torch.arange(frames, dtype=torch.float32)[:, None] / 30.0
    music = torch.sin(2 * np.pi * 0.5 * t + torch.arange(64)[None] * 0.1).float()
    out = generate_windowed(_smooth_but_window_biased, music, scheduler=make_scheduler(), window=window,
                            overlap=overlap, steps=10, seed=0).numpy()
    assert out.shape == (frames, 26) and np.isfinite(out).all()
    starts = window_starts(frames, window, overlap)
    joins = [s + (min(s + window, frames) - s) for s in starts[:-1]]  # end of each window = first new frame
    joins += [s for s in starts[1:]]  # start of each cross-fade
    at_joins, typical = seam_jumps(out, joins)
    assert at_joins <= 3.0 * typical, (at_joins, typical)

    # The same denoiser without overlap (plain concatenation) does jump: the check above can fail.
    naive = generate_windowed(_smooth_but_window_biased, music, scheduler=make_scheduler(), window=window,
                              overlap=0, steps=10, seed=0).numpy()
    naive_joins = window_starts(frames, window, 0)[1:]
    naive_at, naive_typical = seam_jumps(naive, naive_joins)
    assert naive_at > 3.0 * naive_typical


def test_windowed_generation_is_seeded():
    torch.manual_seed(0)
    model = ConductorDenoiser(TINY).eval()
    music = torch.randn(100, 64)
    with torch.no_grad():
        a = generate_windowed(model, music, scheduler=make_scheduler(), window=64, overlap=16, steps=5, seed=7)
        b = generate_windowed(model, music, scheduler=make_scheduler(), window=64, overlap=16, steps=5, seed=7)
    assert torch.equal(a, b)
