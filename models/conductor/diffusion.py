"""Diffusion-Conductor generator: music features -> conducting motion (COCO-13, 30 fps), registered as ``diffusion``.

Pipeline (../shared/DESIGN.md §4): the ConductorMotion100 mel (T90, 128) -> the M2S music encoder (contrastively
pre-trained, BatchNorm in eval mode) -> per-frame 64-d features at 30 fps -> DDIM sampling of the x0-predicting
:class:`~models.conductor.diffusion_model.ConductorDenoiser` window by window
(:func:`~models.conductor.diffusion_sampling.generate_windowed`) -> de-normalised keypoints (T, 13, 2) in [0, 1].

A checkpoint is one ``.pt`` file (a plain dict, loadable with ``torch.load(weights_only=True)``):
``format``, ``denoiser_config``, ``denoiser`` (state dict), ``music_encoder`` (state dict), ``normalizer``
(``mean``/``std`` of the 26 motion channels), ``scheduler`` (diffusers config), ``window``, ``overlap``,
``train_config`` and ``metrics``. The default weights ship at ``models/conductor/weights/diffusion_default.pt``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.atomic import atomic_write
from models.conductor.diffusion_model import MOTION_DIM, ConductorDenoiser, DenoiserConfig
from models.conductor.diffusion_sampling import make_scheduler
from models.progress import Progress

CHECKPOINT_FORMAT = "baton.diffusion_conductor/1"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "diffusion_default.pt"
MOTION_FPS = 30
NUM_KEYPOINTS = 13
#: Gaussian σ (frames) of the post-sampling temporal filter of :class:`DiffusionConductor` (0 disables).
DEFAULT_SMOOTHING = 1.5


@dataclass
class MotionNormalizer:
    """Per-channel standardisation of the 26 motion channels: ``x = (positions - mean) / std``.

    Attributes:
        mean: (26,) float32 channel means of the training motion (image coordinates).
        std: (26,) float32 channel standard deviations, floored so near-static channels do not blow up.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, motions: list[np.ndarray], floor: float = 0.01) -> MotionNormalizer:
        """Fit on a list of (T, 13, 2) arrays. Raises ValueError on an empty list or a wrong shape."""
        if not motions:
            raise ValueError("MotionNormalizer.fit needs at least one motion")
        flat = np.concatenate([np.asarray(m, np.float64).reshape(len(m), -1) for m in motions])
        if flat.shape[1] != MOTION_DIM:
            raise ValueError(f"motions must be (T, 13, 2), got {flat.shape[1]} channels per frame")
        return cls(flat.mean(0).astype(np.float32), np.maximum(flat.std(0), floor).astype(np.float32))

    def normalize(self, positions: torch.Tensor) -> torch.Tensor:
        """(..., 13, 2) or (..., 26) image coordinates -> (..., 26) normalised."""
        x = positions.reshape(*positions.shape[: -2 if positions.shape[-1] == 2 else -1], MOTION_DIM)
        return (x - torch.as_tensor(self.mean)) / torch.as_tensor(self.std)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """(..., 26) normalised -> (..., 13, 2) image coordinates."""
        pos = x * torch.as_tensor(self.std) + torch.as_tensor(self.mean)
        return pos.reshape(*x.shape[:-1], NUM_KEYPOINTS, 2)

    def to_dict(self) -> dict:
        return {"mean": torch.as_tensor(self.mean), "std": torch.as_tensor(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> MotionNormalizer:
        return cls(np.asarray(data["mean"], np.float32), np.asarray(data["std"], np.float32))


def build_music_encoder() -> torch.nn.Module:
    """A fresh M2S music encoder (mel (B, T90, 128) -> (B, T30, 64)); the module lives in ``models.conductor.m2s``."""
    from models.conductor.m2s import MusicEncoder

    return MusicEncoder()


def encode_music(encoder: torch.nn.Module, mel: np.ndarray | torch.Tensor, frames: int) -> torch.Tensor:
    """Per-frame music features at 30 fps from a ConductorMotion100 mel.

    Args:
        encoder: the music encoder, in eval mode (BatchNorm uses its running statistics).
        mel: (T90, 128) float32 mel at 90 Hz (``MusicFeatures.mel``).
        frames: motion frames wanted (``MusicFeatures.num_motion_frames``); the encoder's output (T90 // 3 frames)
            is cropped or edge-padded to it.

    Returns:
        (frames, 64) float32 on the CPU (the encoder may live on any device).
    """
    mel_t = torch.as_tensor(np.asarray(mel, dtype=np.float32))
    if mel_t.dim() != 2 or mel_t.shape[1] != 128:
        raise ValueError(f"mel must be (T90, 128), got {tuple(mel_t.shape)}")
    need = 3 * frames
    if mel_t.shape[0] < need:  # edge-pad so the encoder's 3:1 pooling yields >= frames outputs
        mel_t = torch.cat([mel_t, mel_t[-1:].expand(need - mel_t.shape[0], -1)])
    device = next(encoder.parameters()).device
    with torch.no_grad():
        feats = encoder(mel_t[:need].unsqueeze(0).to(device))[0].cpu()
    if feats.shape[0] < frames:
        feats = torch.cat([feats, feats[-1:].expand(frames - feats.shape[0], -1)])
    return feats[:frames].float()


def music_condition(encoder_features: torch.Tensor, mel: np.ndarray, frames: int, rhythm_dim: int,
                    grid=None) -> torch.Tensor:
    """The denoiser's per-frame condition: the encoder's features, then (when ``rhythm_dim > 0``) the rhythm
    features of :func:`models.conductor.rhythm.rhythm_features` computed from the same mel.

    Args:
        encoder_features: (frames, 64) from :func:`encode_music` (or the ONNX music encoder).
        mel: (T90, 128) mel of the whole piece.
        frames: motion frames (rows of ``encoder_features``).
        rhythm_dim: the checkpoint's ``DenoiserConfig.rhythm_dim`` (0 or ``RHYTHM_DIM``).
        grid: the :class:`models.conductor.rhythm.BeatGrid` of the music (``BeatGrid.from_features``); ``None``
            estimates it from the mel.

    Returns:
        (frames, 64 + rhythm_dim) float32.

    Raises:
        ValueError: an unsupported ``rhythm_dim`` or mismatched frame counts.
    """
    if rhythm_dim == 0:
        return encoder_features
    from models.conductor.rhythm import RHYTHM_DIM, rhythm_features

    if rhythm_dim != RHYTHM_DIM:
        raise ValueError(f"this Baton computes {RHYTHM_DIM} rhythm channels; the checkpoint expects {rhythm_dim}")
    if encoder_features.shape[0] != frames:
        raise ValueError(f"encoder features have {encoder_features.shape[0]} frames, expected {frames}")
    rhythm = torch.from_numpy(rhythm_features(mel, frames, grid=grid))
    return torch.cat([encoder_features.float(), rhythm], dim=1)


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write a checkpoint dict atomically (temp file + ``os.replace``); nothing is left half-written."""
    path = Path(path)
    with atomic_write(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a diffusion-conductor checkpoint (or a training run folder holding ``diffusion.pt``).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is not a diffusion-conductor checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "diffusion.pt"
    if not path.is_file():
        raise FileNotFoundError(f"diffusion checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise ValueError(f"{path} is not a readable diffusion-conductor checkpoint: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a diffusion-conductor checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return data


@contextlib.contextmanager
def _sampling_threads(device: torch.device | None):
    """Run the torch sampling loop on one CPU thread, restoring the caller's setting afterwards.

    Each DDIM step of the small denoiser is a few milliseconds of work; intra-op threads only add synchronisation
    (measured on 2 loaded cores, Brahms 45.8 s, 20 steps: 1.0 s with one thread, 13.6 s with two).
    """
    if device is None or device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class DiffusionConductor:
    """The ``diffusion`` generator of :func:`models.conductor.generate`.

    Args:
        checkpoint: a checkpoint file or training run folder; ``None`` = the shipped default weights.
        device: where inference runs: ``cpu``, ``cuda``, ``cuda:N`` (torch modules moved there; with
            ``runtime="onnx"`` the onnxruntime sessions' CUDA execution provider on that GPU).
        smoothing: σ in frames of a Gaussian temporal filter applied to the sampled keypoints (0 = raw samples).
            The default 1.5 removes the frame-to-frame residual noise of the small CPU-trained default weights
            (mean joint acceleration 49 -> 3 image units/s² on Brahms) at no cost in beat alignment; see the
            model card.
        runtime: ``torch`` (the modules) or ``onnx`` (onnxruntime sessions of the exported music encoder and
            denoiser, :func:`models.export.conductor_onnx.ensure_exported`: found in ``onnx_dir``, exported there
            on first use when missing). Both feed the same DDIM sampler, so a seed gives the same motion up to
            float rounding.
        onnx_dir: folder of ``denoiser.onnx`` + ``music_encoder.onnx`` for ``runtime="onnx"``; ``None`` =
            ``<Baton cache folder>/onnx/diffusion-<checkpoint digest>-opset18``.

    Raises:
        FileNotFoundError / ValueError: see :func:`load_checkpoint`; ValueError: an unknown runtime, exported graphs
        that do not fit the checkpoint, or a CUDA device onnxruntime cannot use (``make_session``).
    """

    name = "diffusion"
    RUNTIMES = ("torch", "onnx")

    def __init__(self, checkpoint: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 smoothing: float = DEFAULT_SMOOTHING, *, runtime: str = "torch",
                 onnx_dir: str | os.PathLike | None = None) -> None:
        if not (isinstance(smoothing, int | float) and 0.0 <= float(smoothing) <= 10.0):
            raise ValueError(f"smoothing must be a number of frames in [0, 10], got {smoothing!r}")
        if runtime not in self.RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(self.RUNTIMES)}, got {runtime!r}")
        self.smoothing = float(smoothing)
        self.runtime = runtime
        self.checkpoint_path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        data = load_checkpoint(self.checkpoint_path)
        self.device = torch.device(device)
        self.config = DenoiserConfig.from_dict(data["denoiser_config"])
        self.normalizer = MotionNormalizer.from_dict(data["normalizer"])
        self.scheduler_config = dict(data.get("scheduler", {}))
        self.window = int(data["window"])
        self.overlap = int(data["overlap"])
        self.metadata = {k: data.get(k) for k in ("train_config", "metrics") if k in data}
        self.onnx = None  # the OnnxConductorRuntime with runtime="onnx"
        self.onnx_dir: Path | None = None  # where its graphs are
        self.denoiser: ConductorDenoiser | None = None
        self.music_encoder: torch.nn.Module | None = None
        if runtime == "onnx":
            from models.export.conductor_onnx import OnnxConductorRuntime, ensure_exported

            denoiser_path, music_path = ensure_exported(self.checkpoint_path, onnx_dir)
            self.onnx_dir = denoiser_path.parent
            # one intra-op thread on the CPU, as the torch sampler uses (see _sampling_threads)
            self.onnx = OnnxConductorRuntime(denoiser_path, music_path, device=str(self.device),
                                             threads=1 if self.device.type == "cpu" else 0)  # fmt: skip
            if self.onnx.rhythm_dim != self.config.rhythm_dim:
                raise ValueError(f"the ONNX graphs in {denoiser_path.parent} take {self.onnx.rhythm_dim} rhythm "
                                 f"channels; {self.checkpoint_path} takes {self.config.rhythm_dim}")  # fmt: skip
            return
        self.denoiser = ConductorDenoiser(self.config)
        self.denoiser.load_state_dict(data["denoiser"], strict=True)
        self.denoiser.eval().to(self.device)
        self.music_encoder = build_music_encoder()
        self.music_encoder.load_state_dict(data["music_encoder"], strict=True)
        self.music_encoder.eval().to(self.device)

    def runtime_info(self) -> dict:
        """What inference really runs on: ``{"device", "runtime", "providers"}`` — the denoiser's parameter device
        (torch), or the device asked for and the sessions' ``get_providers()`` (onnx)."""
        if self.onnx is not None:
            providers = list(self.onnx.providers)
            providers += [p for p in self.onnx.music_providers if p not in providers]
            return {"device": str(self.device), "runtime": "onnx", "providers": providers}
        return {"device": str(next(self.denoiser.parameters()).device), "runtime": "torch", "providers": []}

    @classmethod
    def availability(cls, checkpoint: str | os.PathLike | None = None) -> tuple[bool, str]:
        """Whether the weights are present and readable, with a one-line detail for ``available_models()``."""
        path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        try:
            load_checkpoint(path)
        except (FileNotFoundError, ValueError) as exc:
            return False, str(exc)
        return True, f"Diffusion-Conductor weights at {path}"

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, music: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The x0 predictor used by the sampler: CPU tensors in (moved to the model's device), CPU tensor out; the
        onnxruntime denoiser session with ``runtime="onnx"``."""
        if self.onnx is not None:
            return self.onnx.denoise(x_t, t, music, keep)
        with torch.no_grad():
            d = self.device
            return self.denoiser(x_t.to(d), t.to(d), music.to(d), keep.to(d)).cpu()

    def music_features(self, mel: np.ndarray, frames: int, grid=None) -> torch.Tensor:
        """(T90, 128) mel -> (frames, condition_dim) per-frame condition on the CPU (:func:`encode_music` or the ONNX
        music encoder, then :func:`music_condition` with the beat ``grid``, estimated from the mel when ``None``)."""
        if self.onnx is not None:
            return self.onnx.music_features(mel, frames, grid)
        feats = encode_music(self.music_encoder, mel, frames).cpu()
        return music_condition(feats, mel, frames, self.config.rhythm_dim, grid)

    def sample(
        self,
        music: torch.Tensor,
        *,
        seed: int = 0,
        steps: int = 20,
        guidance: float | None = None,
        denoise=None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Sample keypoints (T, 13, 2) float32 in image coordinates from the per-frame condition (T, condition_dim).

        ``denoise`` swaps in another x0 predictor with the same signature (e.g. an onnxruntime session wrapper).
        """
        from models.conductor.diffusion_sampling import generate_windowed

        with _sampling_threads(self.device if denoise is None and self.onnx is None else None):
            x0 = generate_windowed(
                denoise or self.denoise, music, scheduler=make_scheduler(self.scheduler_config), window=self.window,
                overlap=self.overlap, steps=steps, guidance=guidance, seed=seed, motion_dim=self.config.motion_dim,
                progress=progress,
            )
        positions = self.normalizer.denormalize(x0).numpy().astype(np.float32)
        if self.smoothing > 0:
            from scipy.ndimage import gaussian_filter1d

            positions = gaussian_filter1d(positions, self.smoothing, axis=0, mode="nearest").astype(np.float32)
        return positions

    def generate(self, features, *, seed: int = 0, steps: int = 20, guidance: float | None = None,
                 progress: Progress | None = None):
        """Generate a conductor's performance for analysed music.

        Args:
            features: :class:`models.conductor.audio.MusicFeatures` (its ``mel`` and ``duration_s`` are used).
            seed: RNG seed (same seed -> same motion).
            steps: DDIM steps (20-50 recommended).
            guidance: classifier-free guidance weight (``None`` = off).
            progress: progress sink; cancellation stops between windows.

        Returns:
            :class:`models.motion.Motion` on ``coco13`` at 30 fps, positions (T, 13, 2) in [0, 1] image
            coordinates (y down), T = round(duration_s * 30).
        """
        from models.motion import Motion, get_skeleton

        frames = int(getattr(features, "num_motion_frames", round(float(features.duration_s) * MOTION_FPS)))
        if frames < 1:
            raise ValueError(f"music too short to conduct: {features.duration_s} s")
        sub = progress.sub(0.0, 0.1) if progress is not None else None
        if sub is not None:
            sub.update(0.0, "music encoder")
        from models.conductor.rhythm import BeatGrid

        music = self.music_features(features.mel, frames, BeatGrid.from_features(features))
        positions = self.sample(music, seed=seed, steps=steps, guidance=guidance,
                                progress=progress.sub(0.1, 1.0) if progress is not None else None)
        positions = np.clip(positions, 0.0, 1.0)
        return Motion(
            skeleton=get_skeleton("coco13"), fps=MOTION_FPS, positions=positions,
            metadata={"generator": "diffusion", "seed": int(seed), "steps": int(steps), "guidance": guidance,
                      "smoothing": self.smoothing, "checkpoint": str(self.checkpoint_path), "runtime": self.runtime},
        )
