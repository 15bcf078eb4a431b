"""Contrastive training of the retrieval model (TMR recipe: symmetric InfoNCE, cosine / tau, negative filtering).

Per step: sample a batch of training clips (probability proportional to 1/sqrt(size of the clip's content group),
so the small dataset-1 contents are seen), replace each with probability ``view_probability`` by one of its
cross-skeleton views (the same motion retargeted onto another skeleton with jittered proportions,
:mod:`models.retrieval.augment`), mirror each with probability 0.5 (left/right chains swapped, x negated,
``left`` <-> ``right`` in the content label), take a random window of the encoder's length, pick one caption from
the clip's rephrasing pool (:func:`~models.retrieval.captions.caption_pool`), and minimise
:func:`~models.retrieval.losses.info_nce` with off-diagonal pairs masked when their captions' frozen sentence
embeddings have cosine > 0.6 or they share a content x style label.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from models.progress import Progress
from models.retrieval.captions import caption_pool, mine_kit_texts, mirrored_content
from models.retrieval.datasets import Clip, default_cache_dir, load_clips
from models.retrieval.features import mirror_points, tmr_frames
from models.retrieval.losses import info_nce, negative_filter_mask
from models.retrieval.model import RetrievalConfig, RetrievalModel

log = logging.getLogger(__name__)

KIT_ANNOTATIONS = Path("tmr_text_motion_annotations") / "kitml" / "annotations.json"


class CaptionBank:
    """Caption pools per label with their frozen sentence embeddings (computed once).

    Attributes:
        texts: every distinct caption.
        embeddings: ``(len(texts), text_dim)`` float32 L2-normalised sentence embeddings.
        pools: label key -> indices into ``texts``.
    """

    def __init__(self, pools: dict[str, list[str]], encoder, cache_dir: Path | None = None) -> None:
        self.texts = sorted({t for pool in pools.values() for t in pool})
        index = {t: i for i, t in enumerate(self.texts)}
        self.pools = {key: np.array([index[t] for t in pool]) for key, pool in pools.items()}
        self.embeddings = cached_sentence_embeddings(encoder, self.texts, cache_dir)


def cached_sentence_embeddings(encoder, texts: list[str], cache_dir: Path | None) -> np.ndarray:
    """``encoder.encode(texts)`` with an on-disk cache per encoder in ``cache_dir`` (the encoder is frozen)."""
    if cache_dir is None:
        return encoder.encode(texts)
    key = hashlib.sha1(str(encoder.name_or_path).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"sentences-{key}.npz"
    known: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            known = dict(zip(data["texts"].tolist(), data["embeddings"], strict=True))
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        known.update(zip(missing, encoder.encode(missing), strict=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp.npz", dir=path.parent)
        os.close(fd)
        try:
            np.savez(tmp, texts=np.array(list(known)), embeddings=np.stack(list(known.values())))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return np.stack([known[t] for t in texts]).astype(np.float32)


def build_caption_pools(clips: list[Clip], per_label: int, kit_texts: dict[str, list[str]] | None, seed: int):
    """Label key -> caption list for every clip label and its mirror image."""
    pools: dict[str, list[str]] = {}
    for clip in clips:
        if clip.content is None:
            pools[clip.label] = list(clip.captions)
            continue
        for content in {clip.content, mirrored_content(clip.content)}:
            key = f"{content}/{clip.style}"
            if key not in pools:
                pools[key] = caption_pool(content, clip.style, per_label, seed, kit_texts)
    return pools


def input_statistics(model: RetrievalModel, clips: list[Clip]) -> None:
    """Set the motion encoder's input mean / std buffers from training clips (their cross-skeleton views and the
    mirror images of both)."""
    points = [np.asarray(c.points, np.float32) for c in clips]
    points += [np.asarray(v, np.float32) for c in clips for v in c.views]
    points += [mirror_points(p) for p in points]
    encoder = model.motion_encoder
    if model.config.encoder == "tmr":
        frames = np.concatenate([tmr_frames(p, model.config.fps) for p in points])
        mean, std = frames.mean(0), frames.std(0)
    else:
        stacked = np.concatenate(points)  # (N, 80, 3)
        mean = stacked.mean(0).T[:, None, :]  # (3, 1, 80)
        std = stacked.std(0).T[:, None, :]
    encoder.mean.copy_(torch.from_numpy(mean.astype(np.float32)))
    encoder.std.copy_(torch.from_numpy(np.maximum(std, 1e-3).astype(np.float32)))


def warmup_cosine(step: int, learning_rate: float, warmup_steps: int, steps: int) -> float:
    """Learning rate at 0-based ``step``: linear warm-up over ``warmup_steps`` (>= 1), then cosine decay to 0 at
    ``steps``. The schedule of every retrieval trainer (motion-text, tri-modal, pixel encoder)."""
    if step < warmup_steps:
        return learning_rate * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train_retrieval(
    config: RetrievalConfig,
    data_dir: str | Path,
    *,
    cache_dir: Path | None = None,
    clips: list[Clip] | None = None,
    progress: Progress | None = None,
) -> tuple[RetrievalModel, list[Clip], list[float]]:
    """Train a retrieval model on the shared data.

    Args:
        config: the resolved config (``config.training`` holds steps, batch size, sources, ...).
        data_dir: ``../shared/data``.
        cache_dir: feature cache folder (default ``$XDG_CACHE_HOME/baton/retrieval``).
        clips: pre-loaded clips (skips loading; tests pass a subset).
        progress: progress / cancellation.

    Returns:
        ``(model in eval mode, all clips with their split, loss per step)``.

    Raises:
        ValueError: when there are fewer training clips than two.
    """
    train_cfg = config.training
    torch.manual_seed(train_cfg.seed)
    rng = np.random.default_rng(train_cfg.seed)
    data_dir = Path(data_dir)
    progress = progress or Progress()
    if clips is None:
        clips = load_clips(data_dir, sources=train_cfg.sources, fps=config.fps, cache_dir=cache_dir,
                           limit_per_group=train_cfg.limit_per_group, progress=progress.sub(0.0, 0.1),
                           views=train_cfg.views)  # fmt: skip
    train = [c for c in clips if c.split == "train"]
    if len(train) < 2:
        raise ValueError(f"need at least 2 training clips, got {len(train)}")
    progress.update(0.1, "captions")
    kit_path = data_dir / KIT_ANNOTATIONS
    kit_texts = mine_kit_texts(kit_path) if kit_path.is_file() else None
    model = RetrievalModel(config)
    pools = build_caption_pools(train, train_cfg.captions_per_label, kit_texts, train_cfg.seed)
    bank = CaptionBank(pools, model.sentence_encoder, cache_dir or default_cache_dir())
    log.info("%d training clips, %d captions", len(train), len(bank.texts))
    input_statistics(model, train)
    group_size = Counter(c.content or c.label for c in train)
    weights = np.array([1.0 / math.sqrt(group_size[c.content or c.label]) for c in train])
    weights /= weights.sum()
    label_ids = {key: i for i, key in enumerate(bank.pools)}
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg.learning_rate, weight_decay=train_cfg.weight_decay)
    window = model.window()
    batch_size = min(train_cfg.batch_size, len(train))
    losses: list[float] = []
    started = time.monotonic()
    model.train()
    for step in range(train_cfg.steps):
        chosen = rng.choice(len(train), size=batch_size, replace=False, p=weights)
        points, starts, caption_index, groups = [], [], [], []
        for i in chosen:
            clip = train[i]
            p = np.asarray(clip.points, np.float32)
            if clip.views and rng.random() < train_cfg.view_probability:
                p = np.asarray(clip.views[int(rng.integers(len(clip.views)))], np.float32)
            content = clip.content
            if train_cfg.mirror and clip.content is not None and rng.random() < 0.5:
                p, content = mirror_points(p), mirrored_content(clip.content)
            key = f"{content}/{clip.style}" if content is not None else clip.label
            points.append(p)
            starts.append(int(rng.integers(0, max(1, len(p) - window + 1))))
            caption_index.append(int(rng.choice(bank.pools[key])))
            groups.append(label_ids[key])
        sentence = torch.from_numpy(bank.embeddings[caption_index])
        mask = negative_filter_mask(sentence, train_cfg.filter_threshold, torch.tensor(groups))
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, train_cfg.learning_rate, train_cfg.warmup_steps, train_cfg.steps)
        text = model.encode_text_features(sentence)
        motion = model.encode_motion_batch(*model.motion_inputs(points, starts))
        loss = info_nce(text, motion, train_cfg.temperature, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if step % 25 == 0 or step == train_cfg.steps - 1:
            progress.update(0.1 + 0.85 * (step + 1) / train_cfg.steps, "training")
            log.info("step %d/%d loss %.4f (%.0f s)", step + 1, train_cfg.steps, losses[-1],
                     time.monotonic() - started)  # fmt: skip
    model.eval()
    return model, clips, losses
