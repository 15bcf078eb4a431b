"""MoMask-style networks (Guo et al., "MoMask: Generative Masked Modeling of 3D Human Motions", CVPR 2024;
../shared/DESIGN.md §6), sized for CPU training on a few thousand clips.

* :class:`RVQVAE` — 1-D convolutional encoder with ×4 temporal downsampling (two stride-2 convolutions), a
  ``ResidualVQ`` from vector-quantize-pytorch (EMA codebooks, k-means init, dead-code reset; quantizer dropout with
  probability 0.2: a random number of residual layers is kept during training) and a mirrored decoder
  (nearest upsampling + convolutions). Input / output: normalised 263-d HumanML3D features ``(B, T, 263)``;
  tokens ``(B, T / 4, Q)``.
* :class:`MaskedTransformer` — bidirectional transformer over base-layer tokens (layer 0) with the sentence
  embedding prepended as a condition token; trained with the cosine mask schedule, 10 % condition drop (a learned
  null condition), BERT-style corruption (80 % [MASK], 10 % random, 10 % kept); classifier-free guidance on logits
  at sampling time (:mod:`models.instruct.generator`).
* :class:`ResidualTransformer` — predicts the tokens of residual layer ``q`` (1..Q-1) from the summed embeddings of
  layers ``< q``, the layer index and the condition.
* :class:`LengthEstimator` — a categorical distribution over motion length in tokens from the sentence embedding.
* :class:`TokenBigram` — transition counts of the training windows' base codes, fused into masked decoding.

Every network has one config dataclass; :func:`save_network` stores ``{"config": asdict, "state_dict"}`` and
:func:`load_network` rebuilds the network from that config alone.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from models.atomic import temp_beside

CHECKPOINT_FORMAT = "baton-t2m-1"


@dataclass
class VQConfig:
    """RVQ-VAE sizes. ``down`` stride-2 stages give ×``2**down`` downsampling (MoMask: 2 stages, ×4)."""

    input_dim: int = 263
    width: int = 128
    code_dim: int = 128
    codebook_size: int = 256
    num_quantizers: int = 4
    down: int = 2
    depth: int = 2
    quantizer_dropout: float = 0.2
    commitment: float = 0.02

    @property
    def downsample(self) -> int:
        return 2**self.down


@dataclass
class TransformerConfig:
    """Masked / residual transformer sizes (MoMask: d 384, 8 layers, 6 heads, FF 1024)."""

    codebook_size: int = 256
    num_quantizers: int = 4
    d_model: int = 192
    layers: int = 4
    heads: int = 4
    feedforward: int = 512
    dropout: float = 0.1
    text_dim: int = 384
    max_tokens: int = 50
    cond_drop: float = 0.1

    @property
    def mask_id(self) -> int:
        return self.codebook_size

    @property
    def pad_id(self) -> int:
        return self.codebook_size + 1


@dataclass
class PriorConfig:
    """Token bigram prior: ``codebook_size`` base codes, ``smoothing`` added to every transition count."""

    codebook_size: int = 256
    smoothing: float = 0.1


@dataclass
class LengthConfig:
    """Length estimator: MLP from the sentence embedding to ``max_tokens + 1`` length classes."""

    text_dim: int = 384
    hidden: int = 256
    max_tokens: int = 50


class ResBlock1D(nn.Module):
    """Pre-activation residual block: ReLU, dilated conv k3, ReLU, conv k1 (MoMask's ``ResConv1DBlock``)."""

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


def _resnet(width: int, depth: int, reverse: bool = False) -> nn.Sequential:
    dilations = [3**i for i in range(depth)]
    return nn.Sequential(*[ResBlock1D(width, d) for d in (reversed(dilations) if reverse else dilations)])


class RVQVAE(nn.Module):
    """Residual-VQ autoencoder on normalised HumanML3D features (module docstring)."""

    def __init__(self, config: VQConfig):
        super().__init__()
        from vector_quantize_pytorch import ResidualVQ

        self.config = c = config
        enc: list[nn.Module] = [nn.Conv1d(c.input_dim, c.width, 3, padding=1), nn.ReLU()]
        for _ in range(c.down):
            enc += [nn.Conv1d(c.width, c.width, 4, stride=2, padding=1), _resnet(c.width, c.depth)]
        enc += [nn.Conv1d(c.width, c.code_dim, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv1d(c.code_dim, c.width, 3, padding=1), nn.ReLU()]
        for _ in range(c.down):
            dec += [_resnet(c.width, c.depth, reverse=True), nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv1d(c.width, c.width, 3, padding=1)]  # fmt: skip
        dec += [nn.Conv1d(c.width, c.width, 3, padding=1), nn.ReLU(), nn.Conv1d(c.width, c.input_dim, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)
        self.quantizer = ResidualVQ(dim=c.code_dim, num_quantizers=c.num_quantizers, codebook_size=c.codebook_size,
                                    quantize_dropout=True, kmeans_init=True, kmeans_iters=10,
                                    threshold_ema_dead_code=2, decay=0.99)  # fmt: skip

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` features -> ``(B, T / 4, code_dim)`` continuous latents (``T`` a multiple of 4)."""
        return self.encoder(x.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction ``(B, T, D)``, codes ``(B, T/4, Q)`` and the summed commitment loss (scalar).

        During training a random number of residual layers is dropped with probability ``quantizer_dropout``.
        """
        latent = self.encode_latent(x)
        self.quantizer.quantize_dropout = bool(self.training and random.random() < self.config.quantizer_dropout)
        quantized, codes, commit = self.quantizer(latent)
        return self.decode_latent(quantized), codes, commit.sum()

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, T / 4, Q)`` int64 of features ``(B, T, D)`` (all residual layers)."""
        self.quantizer.quantize_dropout = False
        _, codes, _ = self.quantizer(self.encode_latent(x))
        return codes

    def decode_latent(self, quantized: torch.Tensor) -> torch.Tensor:
        """``(B, L, code_dim)`` -> ``(B, 4 L, D)`` features."""
        return self.decoder(quantized.transpose(1, 2)).transpose(1, 2)

    def codebooks(self) -> torch.Tensor:
        """``(Q, K, code_dim)`` codebook vectors."""
        return self.quantizer.codebooks

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Features ``(B, 4 L, D)`` from codes ``(B, L, Q')`` (``Q' <= Q`` leading layers; ``-1`` = no code)."""
        books = self.codebooks()
        quantized = torch.zeros(codes.shape[0], codes.shape[1], books.shape[-1], dtype=books.dtype,
                                device=codes.device)  # fmt: skip
        for q in range(codes.shape[-1]):
            idx = codes[..., q]
            valid = (idx >= 0).unsqueeze(-1).to(books.dtype)
            quantized = quantized + books[q][idx.clamp(min=0)] * valid
        return self.decode_latent(quantized)


class _Backbone(nn.Module):
    """Shared transformer trunk: condition token + token embeddings + learned positions -> pre-norm encoder."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.cond_proj = nn.Linear(c.text_dim, c.d_model)
        self.null_cond = nn.Parameter(torch.zeros(c.d_model))
        self.positions = nn.Parameter(torch.randn(c.max_tokens + 1, c.d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(c.d_model, c.heads, c.feedforward, c.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.d_model)

    def forward(self, h: torch.Tensor, text: torch.Tensor, padding: torch.Tensor,
                drop: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """``h (B, L, d)`` token inputs, ``text (B, text_dim)``, ``padding (B, L)`` True at padding, ``drop (B,)``
        True where the condition is replaced by the null condition. Returns ``(B, L, d)``."""
        cond = self.cond_proj(text)
        if drop is not None:
            cond = torch.where(drop[:, None], self.null_cond.expand_as(cond), cond)
        x = torch.cat([cond[:, None], h], dim=1) + self.positions[: h.shape[1] + 1]
        mask = torch.cat([torch.zeros_like(padding[:, :1]), padding], dim=1)
        return self.norm(self.encoder(x, src_key_padding_mask=mask))[:, 1:]


class MaskedTransformer(nn.Module):
    """Masked generative transformer over base tokens (module docstring)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = c = config
        self.tokens = nn.Embedding(c.codebook_size + 2, c.d_model)
        self.backbone = _Backbone(c)
        self.head = nn.Linear(c.d_model, c.codebook_size)

    def forward(self, tokens: torch.Tensor, text: torch.Tensor, padding: torch.Tensor,
                drop: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Logits ``(B, L, K)`` for tokens ``(B, L)`` int64 (``mask_id`` where masked, ``pad_id`` at padding)."""
        return self.head(self.backbone(self.tokens(tokens), text, padding, drop))

    def training_loss(self, codes: torch.Tensor, lengths: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor,
                                                                                                       float]:
        """Masked-token cross entropy on base codes ``(B, L)`` of ``lengths (B,)`` (cosine schedule, BERT-style
        corruption, condition drop). Returns ``(loss, accuracy on masked tokens)``."""
        c = self.config
        b, length = codes.shape
        positions = torch.arange(length, device=codes.device)[None]
        padding = positions >= lengths[:, None]
        ratio = torch.cos(torch.rand(b, device=codes.device) * math.pi / 2)  # cosine schedule
        count = (lengths.float() * ratio).ceil().clamp(min=1)
        scores = torch.rand(b, length, device=codes.device).masked_fill(padding, 2.0)
        rank = scores.argsort(dim=1).argsort(dim=1)
        masked = rank < count[:, None]
        inputs = codes.masked_fill(padding, c.pad_id)
        corrupt = torch.rand(b, length, device=codes.device)
        random_tokens = torch.randint_like(codes, c.codebook_size)
        inputs = torch.where(masked & (corrupt < 0.8), torch.full_like(codes, c.mask_id), inputs)
        inputs = torch.where(masked & (corrupt >= 0.8) & (corrupt < 0.9), random_tokens, inputs)
        drop = torch.rand(b, device=codes.device) < c.cond_drop
        logits = self(inputs, text, padding, drop)
        target = codes.masked_fill(~masked, -100)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == codes)[masked].float().mean().item()
        return loss, accuracy


class ResidualTransformer(nn.Module):
    """Residual-layer token predictor (module docstring)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = c = config
        self.tokens = nn.Parameter(torch.randn(c.num_quantizers, c.codebook_size + 1, c.d_model) * 0.02)
        self.layer_embedding = nn.Embedding(c.num_quantizers, c.d_model)
        self.backbone = _Backbone(c)
        self.head = nn.Linear(c.d_model, c.codebook_size)

    def forward(self, codes: torch.Tensor, layer: torch.Tensor, text: torch.Tensor, padding: torch.Tensor,
                drop: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Logits ``(B, L, K)`` of layer ``layer (B,)`` (1..Q-1) given codes ``(B, L, Q)`` (only layers below
        ``layer`` are read; padding positions may hold any value)."""
        c = self.config
        b, length, q = codes.shape
        idx = codes.clamp(0, c.codebook_size - 1)
        below = torch.arange(q, device=codes.device)[None] < layer[:, None]  # (B, Q)
        h = torch.zeros(b, length, c.d_model, dtype=self.tokens.dtype, device=codes.device)
        for k in range(q):
            h = h + self.tokens[k][idx[..., k]] * below[:, k, None, None].to(h.dtype)
        h = h + self.layer_embedding(layer)[:, None]
        return self.head(self.backbone(h, text, padding, drop))

    def training_loss(self, codes: torch.Tensor, lengths: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor,
                                                                                                       float]:
        """Cross entropy of a random residual layer per sample on all valid positions. Returns (loss, accuracy)."""
        c = self.config
        b, length, q = codes.shape
        padding = torch.arange(length, device=codes.device)[None] >= lengths[:, None]
        layer = torch.randint(1, q, (b,), device=codes.device)
        drop = torch.rand(b, device=codes.device) < c.cond_drop
        logits = self(codes, layer, text, padding, drop)
        target = codes.gather(2, layer[:, None, None].expand(b, length, 1))[..., 0].masked_fill(padding, -100)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == target)[~padding].float().mean().item()
        return loss, accuracy


class LengthEstimator(nn.Module):
    """``(B, text_dim)`` sentence embeddings -> ``(B, max_tokens + 1)`` logits over the length in tokens."""

    def __init__(self, config: LengthConfig):
        super().__init__()
        self.config = c = config
        self.net = nn.Sequential(nn.Linear(c.text_dim, c.hidden), nn.GELU(), nn.Dropout(0.1),
                                 nn.Linear(c.hidden, c.hidden), nn.GELU(), nn.Linear(c.hidden, c.max_tokens + 1))

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.net(text)


class TokenBigram(nn.Module):
    """A bigram model of base-layer tokens, fused into masked decoding (shallow fusion, as an n-gram language model is
    fused into a speech recogniser's scores: Gulcehre et al., "On Using Monolingual Corpora in Neural Machine
    Translation", 2015; Kannan et al., ICASSP 2018).

    Why: the masked transformer predicts the right codes for a run but not their order (43 % of neighbouring
    generated codes repeat against 3 % in the data, and the decoded limbs move at half the data's speed: a glide;
    docs/text-to-motion.md). The training windows' code transitions carry that order; adding
    ``w * (log P(x_t | x_{t-1}) + log P(x_t | x_{t+1}))`` for the known neighbours of each masked position to the
    guided logits makes the sampler prefer sequences the data walks through.

    Buffers: ``counts (K, K)`` float32, ``counts[a, b]`` = how often code ``b`` follows code ``a`` in the training
    windows, plus ``smoothing``.
    """

    def __init__(self, config: PriorConfig):
        super().__init__()
        self.config = config
        self.register_buffer("counts", torch.full((config.codebook_size, config.codebook_size),
                                                  float(config.smoothing)))  # fmt: skip

    def fit(self, sequences: list[torch.Tensor]) -> TokenBigram:
        """Count the transitions of base-code sequences (each ``(L,)`` or ``(L, Q)`` int64; layer 0 is used) on top
        of the smoothing. Raises ``ValueError`` for a code outside ``0..K-1``."""
        k = self.config.codebook_size
        counts = torch.full((k, k), float(self.config.smoothing))
        for seq in sequences:
            base = seq[:, 0] if seq.dim() == 2 else seq
            if base.numel() and (int(base.min()) < 0 or int(base.max()) >= k):
                raise ValueError(f"codes must lie in 0..{k - 1}")
            counts.index_put_((base[:-1].long(), base[1:].long()), torch.ones(max(0, base.numel() - 1)),
                              accumulate=True)  # fmt: skip
        self.counts.copy_(counts)
        return self

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Log prior ``(B, L, K)`` for codes ``ids (B, L)`` (values ``>= K`` — mask or padding — are unknown):
        ``log P(x_t = k | x_{t-1})`` where the previous code is known plus ``log P(x_t = k | x_{t+1})`` where the
        next one is known; 0 where neither neighbour is known."""
        k = self.config.codebook_size
        log_next = torch.log(self.counts / self.counts.sum(1, keepdim=True))  # [prev, next]
        log_prev = torch.log(self.counts / self.counts.sum(0, keepdim=True)).T  # [next, prev]
        out = torch.zeros(*ids.shape, k, dtype=log_next.dtype, device=ids.device)
        prev, nxt = ids[:, :-1], ids[:, 1:]
        zero = torch.zeros((), dtype=out.dtype, device=ids.device)
        out[:, 1:] += torch.where((prev < k)[..., None], log_next[prev.clamp(max=k - 1)], zero)
        out[:, :-1] += torch.where((nxt < k)[..., None], log_prev[nxt.clamp(max=k - 1)], zero)
        return out


NETWORKS = {
    "vq": (RVQVAE, VQConfig), "mask": (MaskedTransformer, TransformerConfig),
    "residual": (ResidualTransformer, TransformerConfig), "length": (LengthEstimator, LengthConfig),
    "prior": (TokenBigram, PriorConfig),
}  # fmt: skip


def save_network(path: str | os.PathLike, kind: str, network: nn.Module, extra: dict | None = None,
                 half: bool = False) -> Path:  # fmt: skip
    """Write ``{"format", "kind", "config", "state_dict", **extra}`` atomically (``half``: float16 weights)."""
    path = Path(path)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in network.state_dict().items()}  # fmt: skip
    payload = {"format": CHECKPOINT_FORMAT, "kind": kind, "config": asdict(network.config), "state_dict": state,
               **(extra or {})}  # fmt: skip
    tmp = temp_beside(path)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_network(path: str | os.PathLike, kind: str, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a network saved by :func:`save_network` (float32, eval mode). Returns ``(network, payload)``.

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: when it is not a Baton text-to-motion checkpoint of ``kind``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text-to-motion checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise ValueError(f"{path} is not a readable text-to-motion checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or payload.get("kind") != kind:
        raise ValueError(f"{path} is not a Baton text-to-motion {kind!r} checkpoint")
    cls, config_cls = NETWORKS[kind]
    network = cls(config_cls(**payload["config"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    network.load_state_dict(state)
    return network.to(device).eval(), payload
