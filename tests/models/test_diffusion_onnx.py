"""ONNX export of the Diffusion-Conductor denoiser and music encoder: parity with torch in onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.conductor.diffusion_model import ConductorDenoiser, DenoiserConfig
from models.conductor.diffusion_sampling import generate_windowed, make_scheduler
from models.conductor.m2s import MusicEncoder
from models.conductor.rhythm import RHYTHM_DIM
from models.export.conductor_onnx import (
    OnnxConductorRuntime,
    export_denoiser,
    export_music_encoder,
    make_session,
    max_abs_diff,
    quantize_int8,
)

CFG = DenoiserConfig(latent_dim=32, num_layers=2, num_heads=4, ff_dim=64, max_frames=128, dropout=0.0,
                     rhythm_dim=RHYTHM_DIM)
C = CFG.condition_dim  # 64 encoder channels + the rhythm channels


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    denoiser = ConductorDenoiser(CFG).eval()
    with torch.no_grad():  # non-trivial weights (the stylisation outputs start at zero)
        for p in denoiser.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    encoder = MusicEncoder().eval()
    out = tmp_path_factory.mktemp("onnx")
    den = export_denoiser(denoiser, out / "denoiser.onnx", frames=40)
    mus = export_music_encoder(encoder, out / "music_encoder.onnx", mel_frames=120)
    return denoiser, encoder, den, mus, out


def test_denoiser_parity_for_other_lengths_and_batches(exported):
    denoiser, encoder, den, mus, _ = exported
    runtime = OnnxConductorRuntime(den, mus, device="auto")
    assert runtime.providers[-1] == "CPUExecutionProvider"
    for batch, frames in ((1, 17), (4, 128)):  # neither equals the export example (2, 40)
        x_t, music = torch.randn(batch, frames, 26), torch.randn(batch, frames, C)
        t = torch.randint(0, 1000, (batch,))
        keep = (torch.rand(batch, frames) > 0.3).float()
        with torch.no_grad():
            ref = denoiser(x_t, t, music, keep)
        assert max_abs_diff(ref, runtime.denoise(x_t, t, music, keep)) < 1e-4


def test_music_encoder_parity_for_any_length(exported):
    _, encoder, den, mus, _ = exported
    runtime = OnnxConductorRuntime(den, mus, device="cpu")
    mel = np.random.default_rng(0).random((301, 128), dtype=np.float32)
    with torch.no_grad():
        ref = encoder(torch.from_numpy(mel)[None])[0]
    got = runtime.music.run(["music"], {"mel": mel[None]})[0][0]
    assert got.shape == tuple(ref.shape) == (101, 64)
    assert max_abs_diff(ref, got) < 1e-4


def test_runtime_builds_the_same_condition_as_torch(exported):
    from backend.conductor.synth import synthesize_demo_piece
    from models.conductor.audio import conductor_mel
    from models.conductor.diffusion import encode_music, music_condition

    _, encoder, den, mus, _ = exported
    runtime = OnnxConductorRuntime(den, mus, device="cpu")
    assert runtime.rhythm_dim == RHYTHM_DIM  # read off the graph: condition width minus the encoder's 64
    mel = conductor_mel(synthesize_demo_piece(seconds=8.0, bpm=120.0, meter=4))
    frames = mel.shape[0] // 3
    ref = music_condition(encode_music(encoder, mel, frames), mel, frames, CFG.rhythm_dim)
    got = runtime.music_features(mel, frames)
    assert got.shape == ref.shape == (frames, C)
    assert max_abs_diff(ref, got) < 1e-4


def test_onnx_sampling_matches_torch_sampling(exported):
    denoiser, _, den, mus, _ = exported
    runtime = OnnxConductorRuntime(den, mus, device="cpu")
    music = torch.randn(150, C)
    kwargs = dict(window=64, overlap=16, steps=5, seed=3)
    with torch.no_grad():
        ref = generate_windowed(denoiser, music, scheduler=make_scheduler(), **kwargs)
    got = generate_windowed(runtime.denoise, music, scheduler=make_scheduler(), **kwargs)
    assert max_abs_diff(ref, got) < 1e-3


def test_int8_models_run_and_stay_close(exported):
    denoiser, _, den, mus, out = exported
    den8 = quantize_int8(den, out / "denoiser.int8.onnx")
    mus8 = quantize_int8(mus, out / "music_encoder.int8.onnx", ("Conv", "MatMul", "Gemm"))
    assert den8.stat().st_size < den.stat().st_size
    runtime = OnnxConductorRuntime(den8, mus8, device="cpu")
    x_t, music, t = torch.randn(2, 40, 26), torch.randn(2, 40, C), torch.tensor([900, 50])
    with torch.no_grad():
        ref = denoiser(x_t, t, music)
    got = runtime.denoise(x_t, t, music, torch.ones(2, 40))
    assert 0 < max_abs_diff(ref, got) < 0.1 * float(ref.abs().max())


def test_missing_model_and_forced_cuda_are_clear_errors(exported, tmp_path):
    _, _, den, _, _ = exported
    with pytest.raises(FileNotFoundError):
        make_session(tmp_path / "nothing.onnx")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ValueError, match="CUDA"):
            make_session(den, device="cuda")
    else:
        _, providers = make_session(den, device="cuda")
        assert providers[0] == "CUDAExecutionProvider"
