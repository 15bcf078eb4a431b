"""Training of the text-to-motion networks (MoMask recipe, ../shared/DESIGN.md §6), stage by stage.

Stages, each saved to ``<run_dir>/<stage>.pt`` when done (a finished stage is skipped when the run is started
again; an unfinished one resumes from ``<run_dir>/checkpoints/<stage>.pt``, written every ``checkpoint_every``
steps):

1. ``vq`` — RVQ-VAE on random ``vq_window``-frame windows of normalised train features (content-balanced by
   ``vq_content_balance``); loss = smooth-L1 reconstruction + 0.5 smooth-L1 on the joint-position ("ric") part +
   commitment (MoMask's recipe) + Baton's heading loss (``vq_heading_weight`` x L1 of the accumulated root yaw, so
   that turns survive tokenisation).
2. tokens — every train clip cut into windows of at most ``max_frames`` frames (stride half a window), at
   ``token_phases`` start offsets of a frame each (each offset tokenizes the motion differently), and encoded
   to ``(L, Q)`` codes with the frozen RVQ-VAE (kept in memory, not saved).
3. ``mask`` — masked transformer on base codes, a random caption per clip, its frozen MiniLM embedding as the
   condition.
4. ``residual`` — residual transformer on the same windows.
5. ``length`` — length estimator (cross entropy over token lengths).
6. ``prior`` — the base codes' bigram transition counts over the same windows (:class:`~models.instruct.networks.
   TokenBigram`; counted, not trained: a second), fused into masked decoding by the generator.

Distributed: launched with ``torchrun --nproc_per_node N -m backend.cli train t2m ...`` every process joins the
default process group (NCCL on GPUs, Gloo on CPU), wraps the network in DistributedDataParallel and draws its own
batches (seed + rank); rank 0 alone logs and writes files. (The RVQ-VAE's EMA codebooks are updated per process;
rank 0's are saved.)
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.instruct.data import T2MData
from models.instruct.networks import (
    RVQVAE,
    LengthConfig,
    LengthEstimator,
    MaskedTransformer,
    PriorConfig,
    ResidualTransformer,
    TokenBigram,
    TransformerConfig,
    VQConfig,
    load_network,
    save_network,
)
from models.progress import Progress

log = logging.getLogger("baton.train.t2m")
STAGES = ("vq", "mask", "residual", "length", "prior")


@dataclass
class TrainConfig:
    """Everything a text-to-motion training run needs (saved as ``config.json`` in the run folder)."""

    vq: VQConfig = field(default_factory=VQConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    length: LengthConfig = field(default_factory=LengthConfig)
    text_encoder: str = "all-MiniLM-L6-v2"
    vq_steps: int = 1500
    vq_batch: int = 32
    vq_window: int = 64
    vq_lr: float = 2e-4
    #: weight of the RVQ-VAE's heading loss: L1 between the target's and the reconstruction's accumulated root yaw
    #: (radians, the cumulative sum of the de-normalised root rotation velocity over the window). Without it the
    #: 1-of-263 root-rotation channel is learnt last and a 45 degree turn came back as 4 degrees; 1.0 flattened waving.
    vq_heading_weight: float = 0.3
    #: content balancing of the transformers' training windows: window k of content c is drawn with probability
    #: proportional to ``W_c ** -content_balance`` (``W_c`` = train windows of content c, from the dataset's
    #: index.json; clips without a content label form one group). 0 = uniform over windows (MoMask); 0.5 draws each
    #: content in proportion to the square root of its size (bow, 13 clips, from 0.6 % to 2 % of the draws); 1 =
    #: every content equally often.
    content_balance: float = 0.0
    #: the same balancing for the RVQ-VAE's training windows: a window of content c is drawn with probability
    #: proportional to ``F_c ** -vq_content_balance`` (``F_c`` = train frames of content c; 0 = every train frame
    #: equally, the MoMask draw). A tokenizer that rarely sees a bow cannot reconstruct one, and the transformers
    #: can only generate what the tokenizer reconstructs.
    vq_content_balance: float = 0.0
    #: start offsets (frames, 1..vq.downsample) at which every train clip is tokenized for the transformers and the
    #: prior: each offset gives another code sequence of the same motion (MoMask's random crop offset).
    token_phases: int = 1
    mask_steps: int = 1500
    residual_steps: int = 1000
    transformer_batch: int = 32
    transformer_lr: float = 3e-4
    length_steps: int = 400
    max_frames: int = 196
    warmup: int = 100
    seed: int = 0
    checkpoint_every: int = 200
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name, cls in (("vq", VQConfig), ("transformer", TransformerConfig), ("length", LengthConfig)):
            if isinstance(getattr(self, name), dict):
                setattr(self, name, cls(**getattr(self, name)))
        if not 1 <= self.token_phases <= self.vq.downsample:
            raise ValueError(f"token_phases must be in 1..{self.vq.downsample}, got {self.token_phases}")
        if self.max_frames % self.vq.downsample:
            raise ValueError(f"max_frames must be a multiple of {self.vq.downsample}, got {self.max_frames}")
        self.transformer.codebook_size = self.vq.codebook_size
        self.transformer.num_quantizers = self.vq.num_quantizers
        self.transformer.max_tokens = self.length.max_tokens = self.max_frames // self.vq.downsample
        if not self.vq_heading_weight >= 0.0:  # also refuses NaN
            raise ValueError(f"vq_heading_weight must be a number >= 0, got {self.vq_heading_weight}")
        for name in ("content_balance", "vq_content_balance"):
            if not 0.0 <= getattr(self, name) <= 1.0:  # also refuses NaN
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("vq_steps", "mask_steps", "residual_steps", "length_steps", "vq_batch", "transformer_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"invalid text-to-motion training config: {exc}") from None


def _dist() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def _wrap(model: nn.Module, world: int, device: torch.device) -> nn.Module:
    if world == 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to 10 %."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _loop(name: str, network: nn.Module, steps: int, lr: float, cfg: TrainConfig, run_dir: Path,
          loss_fn: Callable[[nn.Module, int], tuple[torch.Tensor, dict]], progress: Progress | None,
          rank: int, world: int) -> list[dict]:  # fmt: skip
    """Generic optimisation loop with resume (``checkpoints/<name>.pt``) and rank-0 logging. Returns the log."""
    device = torch.device(cfg.device)
    network.to(device).train()
    model = _wrap(network, world, device)
    optimiser = torch.optim.AdamW(network.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=1e-5)
    ckpt = run_dir / "checkpoints" / f"{name}.pt"
    start, history = 0, []
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        network.load_state_dict(state["state_dict"])
        optimiser.load_state_dict(state["optimiser"])
        start, history = int(state["step"]), list(state["history"])
        random.setstate(state["py_random"])
        torch.set_rng_state(state["torch_random"])
        if rank == 0:
            log.info("%s: resuming at step %d", name, start)
    started = time.monotonic()
    running: dict[str, float] = {}
    every = min(50, max(1, steps // 10))
    for step in range(start, steps):
        for group in optimiser.param_groups:
            group["lr"] = _lr(step, steps, lr, cfg.warmup)
        loss, stats = loss_fn(model, step)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimiser.step()
        for k, v in {"loss": loss.item(), **stats}.items():
            running[k] = 0.9 * running.get(k, v) + 0.1 * v if k in running else v
        if rank == 0 and ((step + 1) % every == 0 or step + 1 == steps):
            history.append({"step": step + 1, **{k: round(v, 5) for k, v in running.items()}})
            rate = (step + 1 - start) / max(1e-6, time.monotonic() - started)
            log.info("%s step %d/%d %s (%.2f steps/s)", name, step + 1, steps,
                     " ".join(f"{k} {v:.4f}" for k, v in running.items()), rate)  # fmt: skip
        if progress is not None:
            progress.update((step + 1) / steps, f"training {name} ({step + 1}/{steps})")
        if rank == 0 and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < steps:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt.with_name(ckpt.name + f".tmp{os.getpid()}")
            torch.save({"state_dict": network.state_dict(), "optimiser": optimiser.state_dict(), "step": step + 1,
                        "history": history, "py_random": random.getstate(),
                        "torch_random": torch.get_rng_state()}, tmp)  # fmt: skip
            os.replace(tmp, ckpt)
    network.eval()
    return history


def _windows(data: T2MData, ids: list[str], max_frames: int, multiple: int,
             phases: int = 1) -> list[tuple[str, int, int]]:  # fmt: skip
    """``(id, start, frames)`` windows of at most ``max_frames`` (multiples of ``multiple``), stride half a window.

    ``phases`` (1..``multiple``): the clip is windowed once per start offset ``0 .. phases - 1`` frames. One token
    covers ``multiple`` frames, so each offset cuts the motion into tokens differently and gives a different code
    sequence of the same clip (MoMask draws a random crop offset per batch for the same reason).
    """
    if not 1 <= phases <= multiple:
        raise ValueError(f"phases must be in 1..{multiple}, got {phases}")
    out = []
    for cid in ids:
        for offset in range(phases):
            total = (data.features[cid].shape[0] - offset) // multiple * multiple
            if total < multiple * 2:
                continue
            if total <= max_frames:
                out.append((cid, offset, total))
                continue
            stride = max_frames // 2
            starts = list(range(0, total - max_frames + 1, stride))
            if starts[-1] != total - max_frames:
                starts.append(total - max_frames)
            out += [(cid, offset + s, max_frames) for s in starts]
    return out


def train_vq(data: T2MData, cfg: TrainConfig, run_dir: Path, progress: Progress | None, rank: int,
             world: int) -> RVQVAE:  # fmt: skip
    """Stage 1 (module docstring)."""
    torch.manual_seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    vq = RVQVAE(cfg.vq)
    ids = [i for i in data.splits["train"] if data.features[i].shape[0] >= cfg.vq_window]
    if not ids:
        raise ValueError(f"no train motion has {cfg.vq_window} frames (the RVQ-VAE window)")
    normed = [torch.from_numpy(data.normalise(data.features[i])) for i in ids]
    weights = clip_weights([x.shape[0] for x in normed], [data.index.get(i, {}).get("content") for i in ids],
                           cfg.vq_content_balance)  # fmt: skip
    rng = np.random.default_rng(cfg.seed + rank)
    ric = slice(4, 4 + 21 * 3)
    yaw_mean, yaw_std = float(data.mean[0]), float(data.std[0])

    def heading(features: torch.Tensor) -> torch.Tensor:
        """``(N, T)`` accumulated root yaw in radians of normalised features ``(N, T, 263)``."""
        return torch.cumsum(features[..., 0] * yaw_std + yaw_mean, dim=-1)

    def loss_fn(model: nn.Module, step: int) -> tuple[torch.Tensor, dict]:
        picks = rng.choice(len(normed), size=cfg.vq_batch, p=weights)
        batch = []
        for k in picks:
            x = normed[k]
            s = int(rng.integers(0, x.shape[0] - cfg.vq_window + 1))
            batch.append(x[s : s + cfg.vq_window])
        x = torch.stack(batch).to(cfg.device)
        recon, _, commit = model(x)
        rec = F.smooth_l1_loss(recon, x)
        pos = F.smooth_l1_loss(recon[..., ric], x[..., ric])
        yaw = F.l1_loss(heading(recon), heading(x))
        loss = rec + 0.5 * pos + cfg.vq_heading_weight * yaw + cfg.vq.commitment * commit
        return loss, {"rec": rec.item(), "yaw": yaw.item(), "commit": commit.item()}

    history = _loop("vq", vq, cfg.vq_steps, cfg.vq_lr, cfg, run_dir, loss_fn, progress, rank, world)
    if rank == 0:
        save_network(run_dir / "vq.pt", "vq", vq, {"mean": torch.from_numpy(data.mean),
                                                   "std": torch.from_numpy(data.std), "history": history})
    return vq


@torch.no_grad()
def tokenize(vq: RVQVAE, data: T2MData, ids: list[str], max_frames: int,
             phases: int = 1) -> list[tuple[str, torch.Tensor]]:  # fmt: skip
    """``(id, codes (L, Q) int64)`` for every window of ``ids`` at ``phases`` start offsets (:func:`_windows`;
    module docstring, stage 2)."""
    vq.eval()
    out = []
    for cid, start, frames in _windows(data, ids, max_frames, vq.config.downsample, phases):
        x = torch.from_numpy(data.normalise(data.features[cid][start : start + frames]))[None]
        out.append((cid, vq.encode(x)[0].cpu()))
    return out


def embed_captions(data: T2MData, text_encoder: str) -> tuple[dict[str, list[int]], torch.Tensor]:
    """``({id: [row, ...]}, (N, 384) embeddings)`` of every caption (frozen MiniLM, computed once)."""
    from models.retrieval.text import SentenceEncoder

    unique = sorted({c for caps in data.texts.values() for c in caps})
    row = {c: i for i, c in enumerate(unique)}
    embeddings = torch.from_numpy(SentenceEncoder(text_encoder).encode(unique))
    return {cid: [row[c] for c in caps] for cid, caps in data.texts.items()}, embeddings


def window_weights(groups: list[object], balance: float) -> np.ndarray:
    """Draw probabilities ``(N,) float64`` (sum 1) of ``N`` training windows whose content labels are ``groups``:
    window k is drawn with probability proportional to ``count(groups[k]) ** -balance`` (0 = uniform over windows,
    1 = uniform over contents; :attr:`TrainConfig.content_balance`). Raises ``ValueError`` for no windows or a
    balance outside [0, 1]."""
    if not groups:
        raise ValueError("no training window to weight")
    return clip_weights([1] * len(groups), groups, balance)  # one "frame" per window: counts of windows


def clip_weights(frames: list[int], groups: list[object], balance: float) -> np.ndarray:
    """Draw probabilities ``(N,) float64`` (sum 1) of ``N`` training clips of ``frames`` frames each whose content
    labels are ``groups``, for windows drawn uniformly over frames within a content: clip k is drawn with
    probability proportional to ``frames[k] * F(groups[k]) ** -balance``, ``F(c)`` = frames of content c
    (0 = every frame equally likely, 1 = every content equally likely; :attr:`TrainConfig.vq_content_balance`).
    Raises ``ValueError`` for no clips, mismatched lengths or a balance outside [0, 1]."""
    if not frames or len(frames) != len(groups):
        raise ValueError(f"need one content label per clip, got {len(frames)} clips and {len(groups)} labels")
    if not 0.0 <= balance <= 1.0:
        raise ValueError(f"content balance must be in [0, 1], got {balance}")
    totals: dict[object, float] = {}
    for n, g in zip(frames, groups, strict=True):
        totals[g] = totals.get(g, 0.0) + float(n)
    w = np.array([n * totals[g] ** -balance for n, g in zip(frames, groups, strict=True)], dtype=np.float64)
    return w / w.sum()


def _token_batcher(windows: list[tuple[str, torch.Tensor]], rows: dict[str, list[int]], embeddings: torch.Tensor,
                   batch: int, seed: int, pad_id: int, weights: np.ndarray | None = None):  # fmt: skip
    rng = np.random.default_rng(seed)
    q = windows[0][1].shape[1]

    def draw() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        picks = (rng.integers(0, len(windows), size=batch) if weights is None
                 else rng.choice(len(windows), size=batch, p=weights))  # fmt: skip
        lengths = torch.tensor([windows[k][1].shape[0] for k in picks])
        codes = torch.full((batch, int(lengths.max()), q), pad_id, dtype=torch.long)
        texts = torch.empty(batch, embeddings.shape[1])
        for b, k in enumerate(picks):
            cid, c = windows[k]
            codes[b, : c.shape[0]] = c
            texts[b] = embeddings[rows[cid][int(rng.integers(0, len(rows[cid])))]]
        return codes, lengths, texts

    return draw


def train_transformers(vq: RVQVAE, data: T2MData, cfg: TrainConfig, run_dir: Path, progress: Progress | None,
                       rank: int, world: int,
                       stages: tuple[str, ...] = ("mask", "residual", "length", "prior")) -> None:  # fmt: skip
    """Stages 2-6 (module docstring); each finished stage's network is saved to ``<run_dir>/<stage>.pt``."""
    todo = [s for s in stages if not (run_dir / f"{s}.pt").is_file()]
    if not todo:
        return
    if progress is not None:
        progress.update(0.0, "tokenizing motions and embedding captions")
    needs_tokens = bool({"mask", "residual", "prior"} & set(todo))
    windows = tokenize(vq, data, data.splits["train"], cfg.max_frames, cfg.token_phases) if needs_tokens else []
    if needs_tokens and not windows:
        raise ValueError("no train window to tokenize")
    if "prior" in todo:  # counted, not trained
        todo.remove("prior")
        if rank == 0:
            prior = TokenBigram(PriorConfig(codebook_size=cfg.vq.codebook_size)).fit([c for _, c in windows])
            save_network(run_dir / "prior.pt", "prior", prior, {"windows": len(windows)})
            log.info("bigram prior from %d token windows", len(windows))
        if world > 1:
            torch.distributed.barrier()
        if not todo:
            return
    rows, embeddings = embed_captions(data, cfg.text_encoder)
    weights = None
    if windows and cfg.content_balance > 0:
        weights = window_weights([data.index.get(cid, {}).get("content") for cid, _ in windows], cfg.content_balance)
    if rank == 0:
        log.info("%d token windows, %d distinct captions", len(windows), embeddings.shape[0])
    tc = cfg.transformer
    shares = {"mask": cfg.mask_steps, "residual": cfg.residual_steps, "length": cfg.length_steps}
    total = sum(shares[s] for s in todo)
    done = 0.0
    for stage in todo:
        torch.manual_seed(cfg.seed + rank + 17)
        random.seed(cfg.seed + rank + 17)
        sub = progress.sub(done / total, (done + shares[stage]) / total) if progress is not None else None
        done += shares[stage]
        draw = (_token_batcher(windows, rows, embeddings, cfg.transformer_batch, cfg.seed + rank + 1, tc.pad_id,
                               weights) if stage != "length" else None)  # fmt: skip
        if stage == "mask":
            network: nn.Module = MaskedTransformer(tc)

            def loss_fn(model, step, draw=draw):
                codes, lengths, texts = draw()
                loss, acc = (model.module if hasattr(model, "module") else model).training_loss(
                    codes[..., 0].to(cfg.device), lengths.to(cfg.device), texts.to(cfg.device))
                return loss, {"acc": acc}
        elif stage == "residual":
            network = ResidualTransformer(tc)

            def loss_fn(model, step, draw=draw):
                codes, lengths, texts = draw()
                loss, acc = (model.module if hasattr(model, "module") else model).training_loss(
                    codes.to(cfg.device), lengths.to(cfg.device), texts.to(cfg.device))
                return loss, {"acc": acc}
        else:
            network = LengthEstimator(cfg.length)
            clip_rows = [(rows[cid], min(data.features[cid].shape[0] // cfg.vq.downsample, cfg.length.max_tokens))
                         for cid in data.splits["train"]]  # fmt: skip
            rng = np.random.default_rng(cfg.seed + rank + 2)

            def loss_fn(model, step, clip_rows=clip_rows, rng=rng):
                picks = rng.integers(0, len(clip_rows), size=64)
                texts = torch.stack([embeddings[clip_rows[k][0][int(rng.integers(len(clip_rows[k][0])))]]
                                     for k in picks])  # fmt: skip
                target = torch.tensor([clip_rows[k][1] for k in picks])
                logits = model(texts.to(cfg.device))
                loss = F.cross_entropy(logits, target.to(cfg.device))
                return loss, {"acc": (logits.argmax(-1).cpu() == target).float().mean().item()}
        steps = shares[stage]
        history = _loop(stage, network, steps, cfg.transformer_lr if stage != "length" else 1e-3, cfg, run_dir,
                        loss_fn, sub, rank, world)  # fmt: skip
        if rank == 0:
            save_network(run_dir / f"{stage}.pt", stage, network, {"history": history})
        if world > 1:
            torch.distributed.barrier()


def train_t2m(data: T2MData, cfg: TrainConfig, run_dir: str | os.PathLike, *,
              stages: tuple[str, ...] = STAGES, progress: Progress | None = None) -> dict:  # fmt: skip
    """Train (or resume) every stage into ``run_dir``. Returns ``{"stages": {...}, "seconds": s}``.

    ``stages`` limits the run to some stages (a stage needs ``vq.pt``; ``vq`` is trained first when listed or
    missing). Raises ``ValueError`` for unknown stages or unusable data; ``Cancelled`` from ``progress``.
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown training stages {sorted(unknown)}; use {', '.join(STAGES)}")
    run_dir = Path(run_dir)
    rank, world = _dist()
    started = time.monotonic()
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / "config.json.tmp"
        tmp.write_text(json.dumps(cfg.to_dict(), indent=2))
        os.replace(tmp, run_dir / "config.json")
    vq_share = 0.3 if not (run_dir / "vq.pt").is_file() else 0.0
    if vq_share:
        vq = train_vq(data, cfg, run_dir, progress.sub(0.0, vq_share) if progress else None, rank, world)
        if world > 1:
            torch.distributed.barrier()
    if (run_dir / "vq.pt").is_file():
        vq, payload = load_network(run_dir / "vq.pt", "vq")
        # tokens must be made with the statistics the RVQ-VAE was trained with (and that generation uses)
        data.mean, data.std = payload["mean"].numpy(), payload["std"].numpy()
    vq.eval()
    rest = tuple(s for s in stages if s != "vq")
    if rest:
        train_transformers(vq, data, cfg, run_dir, progress.sub(vq_share, 1.0) if progress else None, rank, world,
                           rest)  # fmt: skip
    result = {"stages": {s: (run_dir / f"{s}.pt").is_file() for s in STAGES},
              "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
    return result
