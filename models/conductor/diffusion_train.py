"""Training the Diffusion-Conductor: stage 1 contrastive music-motion pre-training, stage 2 x0 diffusion.

Stage 1 (M2S-Net, ../shared/DESIGN.md §4): :class:`models.conductor.m2s.M2SNet` — music encoder + ST-GCN motion
encoder + sync head (concat 64+64 -> Conv1d 128->64->64->1 + sigmoid per frame); BCE on the time-mean score of
matched (1) vs hard-negative (0) pairs, negatives >= 10 s away in the same piece; Adam. The stage-1 weights are
saved as ``m2snet.pt`` (an M2S-Net state dict usable as the feature network of FGD / Diversity).

Stage 2: the music encoder is frozen **in eval mode** (its BatchNorm uses running statistics) and its per-frame
features are computed once per piece; the :class:`ConductorDenoiser` learns x0 from
``x_t = sqrt(ᾱ_t) x0 + sqrt(1-ᾱ_t) ε`` (T = 1000 linear betas 1e-4..0.02, t uniform) with per-frame condition
dropout 0.1 and :func:`diffusion_losses` (MSE + 1e-6 ST-GCN L1 + 0.1 velocity - 0.1 elbow + 0.1 head jitter,
masked over the whole window); Adam 2e-4, gradient clipping 0.5.

Distributed: launched with ``torchrun --nproc_per_node N -m backend.cli train conductor ...`` each process joins the
default process group (NCCL on GPUs, Gloo on CPU), wraps its models in DistributedDataParallel and draws its own
windows (seed + rank); rank 0 alone writes the run folder. A plain ``baton train conductor`` is single-process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from models.conductor.diffusion import MotionNormalizer, encode_music, music_condition, save_checkpoint
from models.conductor.diffusion_data import ContrastiveWindows, DiffusionWindows
from models.conductor.diffusion_losses import LossWeights, diffusion_losses
from models.conductor.diffusion_model import ConductorDenoiser, DenoiserConfig
from models.conductor.diffusion_sampling import SCHEDULER_CONFIG, make_scheduler
from models.conductor.m2s import M2SNet
from models.motion.conductor_dataset import ConductorSample
from models.progress import Progress

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything a run needs; saved resolved as ``config.json`` next to the checkpoint.

    Attributes:
        denoiser: the denoiser's hyper-parameters.
        window / overlap: stage-2 window and the generation overlap (frames at 30 fps).
        stage1_window / stage1_steps / stage1_batch / stage1_lr: contrastive pre-training.
        steps / batch_size / lr / grad_clip / cond_drop / loss: stage-2 diffusion.
        seed: master seed; threads: torch CPU threads (0 = torch default); device: "cpu", "cuda", ...
        save_every: write the run's ``diffusion.pt`` every this many stage-2 steps too (0 = only at the end), so
            a run stopped early leaves a usable checkpoint (its ``metrics["stage2_steps_done"]`` says how far).
    """

    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    window: int = 240
    overlap: int = 60
    stage1_window: int = 120
    stage1_steps: int = 300
    stage1_batch: int = 16
    stage1_lr: float = 1e-3
    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-4
    grad_clip: float = 0.5
    cond_drop: float = 0.1
    loss: LossWeights = field(default_factory=LossWeights)
    val_batches: int = 8
    log_every: int = 50
    save_every: int = 0
    seed: int = 0
    threads: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.window > self.denoiser.max_frames:
            raise ValueError(f"window ({self.window}) must be <= denoiser.max_frames ({self.denoiser.max_frames})")
        if not 0 <= self.overlap < self.window:
            raise ValueError(f"need 0 <= overlap < window, got {self.overlap} and {self.window}")
        if not 0.0 <= self.cond_drop < 1.0:
            raise ValueError(f"cond_drop must be in [0, 1), got {self.cond_drop}")
        for name in ("stage1_steps", "steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("window", "stage1_window", "stage1_batch", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        denoiser = DenoiserConfig.from_dict(data.pop("denoiser", {}))
        loss = LossWeights(**data.pop("loss", {}))
        return cls(denoiser=denoiser, loss=loss, **data)


def _dist() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def _device(cfg: TrainConfig) -> torch.device:
    """The configured device; under torchrun a bare "cuda" means this process's GPU (``LOCAL_RANK``)."""
    device = torch.device(cfg.device)
    if device.type == "cuda" and device.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _wrap(model: nn.Module, world: int, device: torch.device) -> nn.Module:
    if world == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def train_contrastive(samples: list[ConductorSample], cfg: TrainConfig, *, val: list[ConductorSample] | None = None,
                      progress: Progress | None = None) -> tuple[M2SNet, dict]:
    """Stage 1: contrastive music-motion pre-training. Returns the network (eval mode) and metrics."""
    rank, world = _dist()
    device = _device(cfg)
    torch.manual_seed(cfg.seed + rank)
    net = M2SNet().to(device)  # models.conductor.m2s: music encoder + ST-GCN + sync head (fuse_layer)
    # The ST-GCN's classification head exists only so official checkpoints load strictly; it is never called, and
    # DistributedDataParallel refuses parameters that get no gradient.
    net.motion_encoder.st_gcn.fcn.requires_grad_(False)
    model = _wrap(net, world, device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.stage1_lr)
    windows = ContrastiveWindows(samples, cfg.stage1_window, seed=cfg.seed + rank)
    history = []
    model.train()
    for step in range(cfg.stage1_steps):
        mel, motion, label = (t.to(device) for t in windows.batch(cfg.stage1_batch))
        # BCE on the time-mean synchrony probability (M2SNet's per-frame sigmoid output averaged over frames).
        prob = model(mel, motion)[..., 0].mean(1).clamp(1e-6, 1 - 1e-6)
        loss = F.binary_cross_entropy(prob, label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.item())
        if progress is not None:
            progress.update((step + 1) / max(1, cfg.stage1_steps), "contrastive pre-training")
        if rank == 0 and (step + 1) % cfg.log_every == 0:
            log.info("stage 1 step %d/%d  bce %.4f", step + 1, cfg.stage1_steps, np.mean(history[-cfg.log_every:]))
    net.eval()
    metrics = {"stage1_bce_first": _head_mean(history), "stage1_bce_last": _tail_mean(history)}
    if val:
        metrics["stage1_val_accuracy"] = sync_accuracy(net, val, cfg, device)
    return net, metrics


def _head_mean(values: list[float], n: int = 20) -> float | None:
    return float(np.mean(values[:n])) if values else None


def _tail_mean(values: list[float], n: int = 20) -> float | None:
    return float(np.mean(values[-n:])) if values else None


def sync_accuracy(net: M2SNet, samples: list[ConductorSample], cfg: TrainConfig, device: torch.device) -> float:
    """Share of matched / hard-negative validation pairs the sync network classifies right (threshold 0.5)."""
    try:
        windows = ContrastiveWindows(samples, cfg.stage1_window, seed=12345)
    except ValueError:
        return float("nan")
    correct = total = 0
    with torch.no_grad():
        for _ in range(cfg.val_batches):
            mel, motion, label = windows.batch(cfg.stage1_batch)
            prob = net(mel.to(device), motion.to(device))[..., 0].mean(1).cpu()
            correct += int(((prob > 0.5).float() == label).sum())
            total += len(label)
    return correct / max(1, total)


def cache_music_features(encoder: nn.Module, samples: list[ConductorSample], rhythm_dim: int = 0) -> list[torch.Tensor]:
    """Per-piece (T, 64 + rhythm_dim) condition: the frozen encoder's features (eval mode), then the rhythm
    features of the whole piece when ``rhythm_dim > 0`` (:func:`music_condition`), on the sample's own beat grid
    (``beats.json``) when it has one, else on one estimated from the mel; identical inputs are done once."""
    from models.conductor.rhythm import read_sample_grid

    encoder.eval()
    cache: dict[tuple, torch.Tensor] = {}
    out = []
    for s in samples:
        grid = read_sample_grid(s.path) if rhythm_dim else None
        key = (s.mel.shape, hash(s.mel.tobytes()), None if grid is None else json.dumps(grid.to_dict()))
        if key not in cache:
            frames = s.motion.shape[0]
            chunks = [encode_music(encoder, s.mel[3 * a:3 * min(frames, a + 1800)], min(frames, a + 1800) - a)
                      for a in range(0, frames, 1800)]
            cache[key] = music_condition(torch.cat(chunks), s.mel, frames, rhythm_dim, grid)
        out.append(cache[key])
    return out


def train_step(denoiser: nn.Module, batch: tuple, scheduler, cfg: TrainConfig, *, feature_fn=None,
               denormalize=None, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One stage-2 forward pass: noise x0 at random t, predict x0, return the loss terms (not yet backpropagated).

    Args:
        batch: ``(x0 (B, W, 26), music (B, W, F), mask (B, W))``.
        scheduler: a :func:`make_scheduler` instance (its ``add_noise`` implements q(x_t | x0)).
    """
    x0, music, mask = batch
    b, w = x0.shape[:2]
    device = x0.device  # random draws on the CPU generator (reproducible on any device), then moved
    t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=generator).to(device)
    noise = torch.randn(x0.shape, generator=generator).to(device)
    x_t = scheduler.add_noise(x0, noise, t)
    keep = (torch.rand((b, w), generator=generator) >= cfg.cond_drop).float().to(device)  # per-frame dropout
    x0_hat = denoiser(x_t, t, music, keep)
    return diffusion_losses(x0_hat, x0, mask, weights=cfg.loss, feature_fn=feature_fn, denormalize=denormalize)


def train_diffusion(samples: list[ConductorSample], cfg: TrainConfig, sync: M2SNet, *,
                    val: list[ConductorSample] | None = None, progress: Progress | None = None,
                    initial: dict | None = None, on_save=None):
    """Stage 2. Returns ``(denoiser (eval), normalizer, metrics)``.

    ``initial``: a loaded Diffusion-Conductor checkpoint to fine-tune (its denoiser weights and normaliser are the
    starting point; ``cfg.denoiser`` must equal its ``denoiser_config``). ``on_save(denoiser, normalizer, metrics)``
    is called every ``cfg.save_every`` steps (rank 0)."""
    rank, world = _dist()
    device = _device(cfg)
    torch.manual_seed(cfg.seed + 1000 + rank)
    normalizer = (MotionNormalizer.from_dict(initial["normalizer"]) if initial is not None
                  else MotionNormalizer.fit([s.motion for s in samples]))
    music = cache_music_features(sync.music_encoder, samples, cfg.denoiser.rhythm_dim)
    motions = [normalizer.normalize(torch.from_numpy(s.motion)) for s in samples]
    windows = DiffusionWindows(motions, music, cfg.window, seed=cfg.seed + rank)
    denoiser = ConductorDenoiser(cfg.denoiser)
    if initial is not None:
        denoiser.load_state_dict(initial["denoiser"])
    denoiser = denoiser.to(device)
    model = _wrap(denoiser, world, device)
    scheduler = make_scheduler()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    motion_encoder = sync.motion_encoder.eval().requires_grad_(False)
    denorm = normalizer_module(normalizer, device)
    generator = torch.Generator().manual_seed(cfg.seed + 2000 + rank)
    history: list[float] = []
    model.train()
    for step in range(cfg.steps):
        batch = tuple(t.to(device) for t in windows.batch(cfg.batch_size))
        terms = train_step(model, batch, scheduler, cfg, feature_fn=motion_encoder, denormalize=denorm,
                           generator=generator)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        history.append(terms["mse"].item())
        if progress is not None:
            progress.update((step + 1) / max(1, cfg.steps), "diffusion training")
        if rank == 0 and (step + 1) % cfg.log_every == 0:
            log.info("stage 2 step %d/%d  mse %.4f  total %.4f", step + 1, cfg.steps,
                     np.mean(history[-cfg.log_every:]), float(terms["total"].detach()))
        if rank == 0 and on_save is not None and cfg.save_every and (step + 1) % cfg.save_every == 0 \
                and step + 1 < cfg.steps:
            denoiser.eval()
            on_save(denoiser, normalizer, {"stage2_mse_first": _head_mean(history),
                                           "stage2_mse_last": _tail_mean(history), "stage2_steps_done": step + 1})
            model.train()
    denoiser.eval()
    metrics = {"stage2_mse_first": _head_mean(history), "stage2_mse_last": _tail_mean(history)}
    if val:
        metrics["val_x0_mse"] = validation_mse(denoiser, val, normalizer, sync, cfg, device)
    return denoiser, normalizer, metrics


def normalizer_module(normalizer: MotionNormalizer, device: torch.device):
    """A differentiable (B, T, 26) normalised -> (B, T, 13, 2) keypoints function on ``device``."""
    mean = torch.as_tensor(normalizer.mean, device=device)
    std = torch.as_tensor(normalizer.std, device=device)
    return lambda x: (x * std + mean).reshape(*x.shape[:-1], 13, 2)


def validation_mse(denoiser, val: list[ConductorSample], normalizer: MotionNormalizer, sync: M2SNet,
                   cfg: TrainConfig, device: torch.device) -> float:
    """Mean x0 MSE (normalised space) on validation windows at seeded random t, no condition dropout."""
    music = cache_music_features(sync.music_encoder, val, cfg.denoiser.rhythm_dim)
    motions = [normalizer.normalize(torch.from_numpy(s.motion)) for s in val]
    windows = DiffusionWindows(motions, music, cfg.window, seed=4321)
    scheduler = make_scheduler()
    generator = torch.Generator().manual_seed(4321)
    eval_cfg = TrainConfig(**{**cfg.__dict__, "cond_drop": 0.0})
    values = []
    with torch.no_grad():
        for _ in range(cfg.val_batches):
            batch = tuple(t.to(device) for t in windows.batch(cfg.batch_size))
            values.append(float(train_step(denoiser, batch, scheduler, eval_cfg, generator=generator)["mse"]))
    return float(np.mean(values))


def train_conductor(train: list[ConductorSample], out_dir: str | os.PathLike, cfg: TrainConfig, *,
                    val: list[ConductorSample] | None = None, data_info: dict | None = None,
                    progress: Progress | None = None, music_encoder_from: str | os.PathLike | None = None,
                    init_from: str | os.PathLike | None = None) -> Path:
    """Both stages, then write ``<out_dir>/{config.json, m2snet.pt, diffusion.pt, metrics.json}``.

    ``music_encoder_from``: an M2S-Net checkpoint (a run's ``m2snet.pt``, or an official / imported one) to use
    instead of training stage 1 — e.g. to train several denoisers on one contrastively pre-trained encoder.

    ``init_from``: a Diffusion-Conductor checkpoint (``diffusion.pt`` or its run folder) to **fine-tune**: stage 1
    is skipped and its frozen music encoder reused, stage 2 starts from its denoiser and keeps its normaliser, for
    ``cfg.steps`` more steps. ``cfg.denoiser`` must match the checkpoint's (``ValueError`` otherwise). The
    checkpoint's data manifest is kept in ``data_info["init_from"]``, so the result says everything it learnt from.

    Returns:
        The checkpoint path ``<out_dir>/diffusion.pt`` (loadable by :class:`DiffusionConductor`).

    Raises:
        ValueError: an empty corpus or a bad config.
    """
    if not train:
        raise ValueError("the training corpus is empty")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rank, _ = _dist()
    out = Path(out_dir)
    started = time.monotonic()
    p1 = progress.sub(0.0, 0.3) if progress is not None else None
    p2 = progress.sub(0.3, 1.0) if progress is not None else None
    initial = None
    if init_from is not None and music_encoder_from is not None:
        raise ValueError("give either init_from (fine-tune a diffusion checkpoint) or music_encoder_from, not both")
    if init_from is not None:
        from models.conductor.diffusion import load_checkpoint

        initial = load_checkpoint(init_from)
        if initial["denoiser_config"] != cfg.denoiser.to_dict():
            raise ValueError(f"{init_from}: its denoiser config {initial['denoiser_config']} differs from the "
                             f"requested {cfg.denoiser.to_dict()}")
        device = _device(cfg)
        sync = M2SNet()
        sync.music_encoder.load_state_dict(initial["music_encoder"])
        sync = sync.to(device)
        m1 = {"init_from": str(init_from), "init_metrics": initial.get("metrics", {})}
        data_info = {**(data_info or {}), "init_from": {"checkpoint": str(init_from), "data": initial.get("data", {}),
                                                        "train_config": initial.get("train_config", {})}}
    elif music_encoder_from is not None:
        from models.conductor.virtualconductor import load_m2snet

        device = _device(cfg)
        sync = load_m2snet(music_encoder_from).to(device)
        m1 = {"stage1_from": str(music_encoder_from)}
        if val:
            m1["stage1_val_accuracy"] = sync_accuracy(sync, val, cfg, device)
    else:
        sync, m1 = train_contrastive(train, cfg, val=val, progress=p1)
    stage1_s = time.monotonic() - started
    path = out / "diffusion.pt"

    def write(denoiser, normalizer, m2) -> None:
        metrics = {**m1, **m2, "stage1_seconds": stage1_s, "train_seconds": time.monotonic() - started,
                   "train_pieces": len(train), "train_motion_seconds": sum(s.motion.shape[0] for s in train) / 30.0,
                   "parameters": sum(p.numel() for p in denoiser.parameters())}
        metrics = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
        out.mkdir(parents=True, exist_ok=True)
        resolved = {"train": cfg.to_dict(), "data": data_info or {}, "scheduler": SCHEDULER_CONFIG}
        (out / "config.json").write_text(json.dumps(resolved, indent=1))
        _save_state(out / "m2snet.pt", sync.state_dict())
        save_checkpoint(path, {
            "denoiser_config": cfg.denoiser.to_dict(),
            "denoiser": {k: v.cpu() for k, v in denoiser.state_dict().items()},
            "music_encoder": {k: v.cpu() for k, v in sync.music_encoder.state_dict().items()},
            "normalizer": normalizer.to_dict(),
            "scheduler": dict(SCHEDULER_CONFIG),
            "window": cfg.window,
            "overlap": cfg.overlap,
            "train_config": cfg.to_dict(),
            "data": data_info or {},
            "metrics": metrics,
        })
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))

    denoiser, normalizer, m2 = train_diffusion(train, cfg, sync, val=val, progress=p2, initial=initial,
                                               on_save=write if rank == 0 else None)
    if rank == 0:
        write(denoiser, normalizer, {**m2, "stage2_steps_done": cfg.steps})
    return path


def _save_state(path: Path, state: dict) -> None:
    """Atomically save a plain state dict (temp file + os.replace)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp)
    os.replace(tmp, path)
