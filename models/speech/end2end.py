"""End-to-end speech condition: frozen Whisper encoder states -> memory-retrieval attention -> the text generator's
condition vector, no transcript in between (the audio-instruction paper's module, ../shared/DESIGN.md §6).

:class:`MemoryRetrievalAttention` — ``M = 256`` learnable memory tokens of dimension ``d = 512`` form a key / value
memory that every speech state queries (retrieval), then the retrieved states are pooled into the condition::

    X = LN(W_in avgpool_p(S)) + P        S: (B, T, 384) encoder states (40 ms each), pooled by p = 4 (160 ms)
    H = LN(X + MHA(q=X, k=Mem, v=Mem))   Mem: (M, d) memory tokens, H: (B, T/p, d)
    H = H + FF(LN(H))
    c = normalize(W_out masked_mean_t H) c: (B, 384), the condition of the masked / residual transformers

(Queries are the speech states so the cost grows with the utterance, not with ``M x T``; padding states are
masked out of the mean, and a batch is cut to its longest utterance.)

The condition ``c`` lives in the space of the L2-normalised all-MiniLM-L6-v2 sentence embedding that the text
generator's transformers (``models.instruct``) were trained on, so the same transformers take it as their
condition (their ``cond_proj`` input). Training (:func:`train_speech_condition`):

1. *alignment*: cosine regression of ``c`` onto the embedding of the utterance's written caption plus an InfoNCE
   term over the batch's captions (temperature 0.05), so that the condition identifies the instruction;
2. *generation* (when a text-to-motion run and its dataset are given): the frozen masked transformer's token cross
   entropy on clips of the utterance's (content, style) label with ``c`` as its condition, condition drop 0.2 (the
   null condition), added to the alignment loss; only the speech module is trained.

The paper's encoder is WavLM; no WavLM weights are obtainable offline here, so the frozen Whisper tiny.en encoder
(:mod:`models.speech.whisper`) stands in (docs/voice.md, the model card).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.atomic import atomic_write
from models.progress import Progress

log = logging.getLogger("baton.train.speech")
CHECKPOINT_FORMAT = "baton-speech-1"


@dataclass
class SpeechConditionConfig:
    """Sizes of the end-to-end condition module (paper: 256 memory tokens, dim 512, condition drop 0.2).

    ``pool``: extra average pooling of the stored 40 ms states (4 -> 160 ms); ``max_states``: stored states per
    window (10 s at 40 ms)."""

    state_dim: int = 384
    dim: int = 512
    memory_tokens: int = 256
    heads: int = 8
    feedforward: int = 512
    dropout: float = 0.1
    cond_dim: int = 384
    cond_drop: float = 0.2
    max_states: int = 250
    pool: int = 4


class MemoryRetrievalAttention(nn.Module):
    """Speech states ``(B, T, state_dim)`` + valid lengths -> condition ``(B, cond_dim)`` (module docstring)."""

    def __init__(self, config: SpeechConditionConfig):
        super().__init__()
        self.config = c = config
        self.inp = nn.Sequential(nn.Linear(c.state_dim, c.dim), nn.LayerNorm(c.dim))
        self.positions = nn.Parameter(torch.randn(-(-c.max_states // c.pool), c.dim) * 0.02)
        self.memory = nn.Parameter(torch.randn(c.memory_tokens, c.dim) * 0.02)
        self.q, self.k, self.v, self.o = (nn.Linear(c.dim, c.dim) for _ in range(4))
        self.attn_drop = nn.Dropout(c.dropout)
        self.norm = nn.LayerNorm(c.dim)
        self.ff = nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, c.feedforward), nn.GELU(),
                                nn.Dropout(c.dropout), nn.Linear(c.feedforward, c.dim))  # fmt: skip
        self.out = nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, c.cond_dim))

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``states (B, T, state_dim)`` float, ``lengths (B,)`` valid states -> ``(B, cond_dim)`` unit vectors."""
        c = self.config
        lengths = lengths.clamp(min=1, max=states.shape[1])
        t = int(lengths.max())
        t = -(-t // c.pool) * c.pool
        x = states[:, :t]
        if x.shape[1] < t:
            x = F.pad(x, (0, 0, 0, t - x.shape[1]))
        valid = (torch.arange(t, device=states.device)[None] < lengths[:, None]).to(x.dtype)
        b = x.shape[0]
        count = valid.reshape(b, t // c.pool, c.pool).sum(-1)  # (B, T/p) valid states per pooled state
        x = (x * valid[..., None]).reshape(b, t // c.pool, c.pool, -1).sum(2) / count.clamp(min=1)[..., None]
        keep = count > 0
        x = self.inp(x) + self.positions[: x.shape[1]]
        h = self.norm(x + self.retrieve(x))
        h = h + self.ff(h)
        w = keep.to(h.dtype)[..., None]
        pooled = (h * w).sum(1) / w.sum(1).clamp(min=1)
        return F.normalize(self.out(pooled), dim=-1)

    def retrieve(self, x: torch.Tensor) -> torch.Tensor:
        """Multi-head attention of queries ``x (B, T, d)`` over the memory (keys / values projected once, not per
        batch item) -> ``(B, T, d)``."""
        c = self.config
        b, t, d = x.shape
        dh = d // c.heads
        q = self.q(x).reshape(b, t, c.heads, dh).transpose(1, 2)  # (B, h, T, dh)
        k = self.k(self.memory).reshape(-1, c.heads, dh).transpose(0, 1)  # (h, M, dh)
        v = self.v(self.memory).reshape(-1, c.heads, dh).transpose(0, 1)
        weights = self.attn_drop(torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dh), dim=-1))  # (B, h, T, M)
        return self.o((weights @ v).transpose(1, 2).reshape(b, t, d))


def save_speech_condition(path: str | os.PathLike, model: MemoryRetrievalAttention, extra: dict | None = None) -> Path:
    """Write ``{"format", "config", "state_dict", **extra}`` atomically."""
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "config": asdict(model.config),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **(extra or {})}  # fmt: skip
    with atomic_write(path, ".tmp.pt") as tmp:
        torch.save(payload, tmp)
    return path


def load_speech_condition(path: str | os.PathLike, device: str = "cpu") -> tuple[MemoryRetrievalAttention, dict]:
    """Rebuild a module saved by :func:`save_speech_condition` (eval mode). Returns ``(module, payload)``.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: it is not a Baton speech-condition checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"speech-condition checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise ValueError(f"{path} is not a readable speech-condition checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a Baton speech-condition checkpoint")
    model = MemoryRetrievalAttention(SpeechConditionConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload


@dataclass
class SpeechTrainConfig:
    """Training of the speech condition (saved in ``speech.json`` beside the weights)."""

    steps: int = 600
    batch: int = 32
    lr: float = 3e-4
    warmup: int = 100
    temperature: float = 0.05
    nce_weight: float = 1.0
    gen_weight: float = 0.5
    gen_every: int = 2
    seed: int = 0
    text_encoder: str = "all-MiniLM-L6-v2"


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def load_corpus_states(root: str | os.PathLike, split: str | None = None) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """``(rows, states (N, S, 384) float16 memmap, lengths (N,))`` of a corpus encoded by ``baton data speech
    encode`` (one split or all).

    Raises:
        FileNotFoundError: when the corpus was not encoded.
    """
    from models.speech.corpus import read_manifest

    root = Path(root)
    if not (root / "states.npy").is_file():
        raise FileNotFoundError(f"{root} has no encoder states: run `baton data speech encode {root}` first")
    meta = json.loads((root / "states.json").read_text())
    states = np.load(root / "states.npy", mmap_mode="r")
    where = {cid: i for i, cid in enumerate(meta["ids"])}
    rows = [r for r in read_manifest(root, split) if r["id"] in where]
    idx = np.array([where[r["id"]] for r in rows], dtype=np.int64)
    return rows, states[idx] if split is not None else states, np.asarray(meta["lengths"])[idx]


def train_speech_condition(corpus: str | os.PathLike, output: str | os.PathLike, *,
                           config: SpeechConditionConfig | None = None, train: SpeechTrainConfig | None = None,
                           t2m_run: str | os.PathLike | None = None, t2m_data: str | os.PathLike | None = None,
                           progress: Progress | None = None) -> dict:  # fmt: skip
    """Train the end-to-end condition on an encoded corpus (module docstring) and save ``output/speech.pt``.

    Args:
        corpus: a corpus folder built and encoded by ``baton data speech``.
        output: run folder (``speech.pt``, ``speech.json``, ``log.jsonl``).
        t2m_run / t2m_data: a text-to-motion run folder (``vq.pt``, ``mask.pt``) and its dataset folder
            (``index.json`` with content / style labels) for the generation loss; both or neither.
        progress: optional sink (``Cancelled`` before anything is saved).

    Returns:
        ``{"steps", "seconds", "final": {...losses}, "val_top1"}`` (``val_top1``: share of ``test_phrasing``
        utterances whose condition is nearest its own caption's embedding among all corpus captions).
    """
    from models.retrieval.text import SentenceEncoder

    config = config or SpeechConditionConfig()
    train = train or SpeechTrainConfig()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(train.seed)
    rng = np.random.default_rng(train.seed)
    rows, states, lengths = load_corpus_states(corpus, "train")
    states = torch.from_numpy(np.asarray(states, dtype=np.float32))
    lengths = torch.from_numpy(lengths)
    captions = sorted({r["caption"] for r in rows})
    all_rows = load_corpus_states(corpus)[0]
    vocab = sorted({r["caption"] for r in all_rows})
    encoder = SentenceEncoder(train.text_encoder)
    vocab_emb = torch.from_numpy(encoder.encode(vocab))
    where = {c: i for i, c in enumerate(vocab)}
    target_row = torch.tensor([where[r["caption"]] for r in rows])
    del captions
    gen = _GenerationLoss(t2m_run, t2m_data, rows, config.cond_drop, rng) if t2m_run is not None else None
    model = MemoryRetrievalAttention(config)
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=0.01)
    started, history = time.monotonic(), []
    for step in range(train.steps):
        if progress is not None and step % 20 == 0:
            progress.update(step / train.steps, f"speech condition step {step}/{train.steps}")
        for g in opt.param_groups:
            g["lr"] = _lr(step, train.steps, train.lr, train.warmup)
        model.train()
        pick = torch.from_numpy(rng.integers(0, len(rows), train.batch))
        cond = model(states[pick], lengths[pick])
        rows_b = target_row[pick]
        target = vocab_emb[rows_b]
        align = (1 - (cond * target).sum(-1)).mean()
        uniq, inverse = torch.unique(rows_b, return_inverse=True)
        logits = cond @ vocab_emb[uniq].T / train.temperature
        nce = F.cross_entropy(logits, inverse)
        loss = align + train.nce_weight * nce
        info = {"align": round(align.item(), 4), "nce": round(nce.item(), 4)}
        if gen is not None and step % train.gen_every == 0:
            g_loss = gen(cond, pick.numpy())
            if g_loss is not None:
                loss = loss + train.gen_weight * g_loss
                info["gen"] = round(g_loss.item(), 4)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == train.steps - 1:
            history.append({"step": step, **info})
            log.info("speech step %d %s", step, info)
    val_top1 = evaluate_alignment(model, corpus, "test_phrasing", vocab, vocab_emb)
    extra = {"train": asdict(train), "corpus": str(corpus), "t2m_run": str(t2m_run) if t2m_run else None,
             "vocabulary": vocab, "val_top1": val_top1}  # fmt: skip
    save_speech_condition(output / "speech.pt", model, extra)
    with atomic_write(output / "speech.json") as tmp:
        Path(tmp).write_text(json.dumps({"config": asdict(config), **{k: v for k, v in extra.items()
                                                                     if k != "vocabulary"}}, indent=1))  # fmt: skip
    with atomic_write(output / "log.jsonl") as tmp:
        Path(tmp).write_text("".join(json.dumps(h) + "\n" for h in history))
    return {"steps": train.steps, "seconds": round(time.monotonic() - started, 1), "final": history[-1],
            "val_top1": val_top1}  # fmt: skip


@torch.no_grad()
def evaluate_alignment(model: MemoryRetrievalAttention, corpus: str | os.PathLike, split: str, vocab: list[str],
                       vocab_emb: torch.Tensor) -> float | None:  # fmt: skip
    """Share of ``split`` utterances whose condition's nearest caption embedding (among ``vocab``) is their own
    caption; ``None`` when the split is empty."""
    rows, states, lengths = load_corpus_states(corpus, split)
    if not rows:
        return None
    model.eval()
    where = {c: i for i, c in enumerate(vocab)}
    hits = 0
    for start in range(0, len(rows), 64):
        s = torch.from_numpy(np.asarray(states[start : start + 64], dtype=np.float32))
        cond = model(s, torch.from_numpy(lengths[start : start + 64]))
        best = (cond @ vocab_emb.T).argmax(-1)
        hits += sum(int(b) == where[r["caption"]] for b, r in zip(best.tolist(), rows[start : start + 64],
                                                                   strict=True))  # fmt: skip
    return round(hits / len(rows), 4)


class _GenerationLoss:
    """Masked-transformer token cross entropy with the speech condition (module docstring, step 2)."""

    def __init__(self, run: str | os.PathLike, data: str | os.PathLike | None, rows: list[dict], cond_drop: float,
                 rng: np.random.Generator):  # fmt: skip
        from models.instruct.data import load_dataset
        from models.instruct.networks import load_network
        from models.instruct.train import tokenize

        if data is None:
            raise ValueError("the generation loss needs the text-to-motion dataset folder too (--t2m-data)")
        run = Path(run)
        vq, _ = load_network(run / "vq.pt", "vq")
        self.mask, _ = load_network(run / "mask.pt", "mask")
        for p in self.mask.parameters():
            p.requires_grad_(False)
        dataset = load_dataset(data)
        index = json.loads((Path(data) / "index.json").read_text())
        train_ids = [cid for cid in dataset.splits.get("train", []) if cid in index]
        windows = tokenize(vq, dataset, train_ids, 196)
        by_label: dict[tuple, list[torch.Tensor]] = {}
        by_content: dict[str, list[torch.Tensor]] = {}
        for cid, codes in windows:
            meta = index[cid]
            by_label.setdefault((meta.get("content"), meta.get("style")), []).append(codes[:, 0])
            by_content.setdefault(meta.get("content"), []).append(codes[:, 0])
        self.choices = [by_label.get((r["content"], r["style"])) or by_content.get(r["content"]) for r in rows]
        self.cond_drop, self.rng = cond_drop, rng
        log.info("generation loss: %d token windows, %d/%d utterances have clips", len(windows),
                 sum(c is not None for c in self.choices), len(rows))

    def __call__(self, cond: torch.Tensor, picks: np.ndarray) -> torch.Tensor | None:
        keep = [i for i, p in enumerate(picks) if self.choices[p]]
        if not keep:
            return None
        seqs = [self.choices[picks[i]][int(self.rng.integers(len(self.choices[picks[i]])))] for i in keep]
        c = self.mask.config
        lengths = torch.tensor([len(s) for s in seqs])
        codes = torch.full((len(seqs), int(lengths.max())), c.pad_id, dtype=torch.long)
        for i, s in enumerate(seqs):
            codes[i, : len(s)] = s
        saved = c.cond_drop
        c.cond_drop = self.cond_drop
        try:
            self.mask.eval()
            loss, _ = self.mask.training_loss(codes, lengths, cond[keep])
        finally:
            c.cond_drop = saved
        return loss


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
