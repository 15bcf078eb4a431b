"""Tri-modal (text-video-motion) training of the retrieval model on rendered avatar clips (LAVIMO, Yin et al. 2024).

A rendered dataset (:mod:`backend.render.dataset`) gives, per item, a video of a mannequin performing a window of a
library clip, that motion window and the clip's captions. The video enters as keypoints: the pose front end
(:mod:`models.video.pose`: MediaPipe Pose lifted to the ``mediapipe21`` skeleton with a root trajectory, the same
path a real video query takes) turned into the same body-part points as motions
(:func:`~models.retrieval.features.canonical_points`), encoded by the model's own video encoder
(:attr:`RetrievalModel.video_encoder`, initialised as a copy of the motion encoder, so before training the video
path is the zero-shot one that reads the lifted pose as a motion).

Loss per step (LAVIMO §3, DESIGN §5):

- the text-motion InfoNCE of :mod:`models.retrieval.training` on a batch of library clips (unchanged, so the
  library's text search is trained exactly as without video);
- on a batch of rendered items, LAVIMO's soft-target contrastive loss for each modality pair (text-motion, and with
  video: text-video, video-motion): predictions ``softmax(cos / tau)`` row-wise in both directions, targets
  ``S_ij = sentence cosine of the captions if >= 0.8 else 0`` (1 on the diagonal), rows normalised. LAVIMO writes the
  loss as ``KL(pred || target)``; with the zeros of ``S`` that divergence is infinite, so this is ``KL(target ||
  pred)`` (cross-entropy to the soft targets up to a constant), as LAVIMO's released code computes it;
- attention fusion: the motion embedding attends to itself, the text and the video embeddings (one multi-head
  attention layer, residual), and a motion decoder reconstructs the normalised motion features from the fused
  embedding; weight ``lambda = 0.1``. Fusion and decoder exist only in training (the library's motions are embedded
  without captions or videos), so they are not saved with the model.

``video_weight = 0`` trains the same loop without the video terms: the control arm for "does the video modality help
text -> motion", with the same data, steps and seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.progress import Progress
from models.retrieval.features import canonical_points, mirror_points
from models.retrieval.losses import info_nce, negative_filter_mask
from models.retrieval.model import RetrievalModel

log = logging.getLogger(__name__)

#: LAVIMO's threshold on the captions' sentence cosine below which a pair's soft target is 0.
SOFT_TARGET_THRESHOLD = 0.8
#: LAVIMO's weight of the motion reconstruction loss.
RECONSTRUCTION_WEIGHT = 0.1
#: Bump when the pose front end or the features change (invalidates the cached video points). 2: the lifted body
#: is stood upright and frames without the whole body are levelled.
VIDEO_CACHE_VERSION = 2


def soft_targets(sentence_embeddings: torch.Tensor, threshold: float = SOFT_TARGET_THRESHOLD) -> torch.Tensor:
    """LAVIMO's target matrix ``(B, B)`` float: the captions' sentence cosine where it is ``>= threshold``, else 0;
    1 on the diagonal; each row sums to 1.

    Args:
        sentence_embeddings: ``(B, D)`` L2-normalised frozen sentence embeddings of the items' captions.

    Raises:
        ValueError: for a non-2-D input or a threshold outside (0, 1].
    """
    if sentence_embeddings.ndim != 2:
        raise ValueError(f"sentence_embeddings must be (B, D), got {tuple(sentence_embeddings.shape)}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    similarity = sentence_embeddings @ sentence_embeddings.T
    targets = torch.where(similarity >= threshold, similarity, torch.zeros_like(similarity))
    targets.fill_diagonal_(1.0)
    return targets / targets.sum(dim=1, keepdim=True)


def soft_contrastive(a: torch.Tensor, b: torch.Tensor, targets: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Symmetric soft-target contrastive loss (scalar): ``KL(targets || softmax(cos(a_i, b_j) / tau))`` over rows,
    averaged with the same for ``b -> a`` (LAVIMO's per-pair loss; module docstring for the direction).

    Args:
        a, b: ``(B, E)`` embeddings of two modalities of the same ``B`` items (normalised here).
        targets: ``(B, B)`` rows summing to 1 (:func:`soft_targets`; symmetric, so it serves both directions).

    Raises:
        ValueError: on mismatched shapes or a non-positive temperature.
    """
    if a.shape != b.shape or a.ndim != 2 or targets.shape != (len(a), len(a)):
        raise ValueError(f"need a, b (B, E) and targets (B, B); got {tuple(a.shape)}, {tuple(b.shape)}, "
                         f"{tuple(targets.shape)}")  # fmt: skip
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = nn.functional.normalize(a, dim=-1) @ nn.functional.normalize(b, dim=-1).T / temperature
    forward = nn.functional.kl_div(logits.log_softmax(dim=1), targets, reduction="batchmean")
    backward = nn.functional.kl_div(logits.T.log_softmax(dim=1), targets.T, reduction="batchmean")
    return 0.5 * (forward + backward)


class AttentionFusion(nn.Module):
    """LAVIMO's fusion: the motion embedding attends to itself and the other modalities' embeddings.

    ``forward(motion (B, E), others [(B, E), ...]) -> (B, E)``: one multi-head attention with the motion embedding as
    the query and ``[motion, *others]`` as keys and values, added to the motion embedding and layer-normalised.
    """

    def __init__(self, embed_dim: int, heads: int = 4):
        super().__init__()
        self.attention = nn.MultiheadAttention(embed_dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, motion: torch.Tensor, others: list[torch.Tensor]) -> torch.Tensor:
        tokens = torch.stack([motion, *others], dim=1)  # (B, M, E)
        fused, _ = self.attention(motion[:, None], tokens, tokens, need_weights=False)
        return self.norm(motion + fused[:, 0])


class MotionDecoder(nn.Module):
    """Reconstructs per-frame motion features ``(B, T, feature_dim)`` from an embedding ``(B, E)``: the embedding
    plus a sinusoidal code of each frame index through a two-layer MLP (LAVIMO's motion decoder, small)."""

    def __init__(self, embed_dim: int, feature_dim: int, max_frames: int, hidden: int = 256):
        super().__init__()
        position = torch.arange(max_frames)[:, None].float()
        div = torch.exp(torch.arange(0, 32, 2).float() * (-math.log(1000.0) / 32))
        table = torch.cat([torch.sin(position * div), torch.cos(position * div)], dim=1)  # (T, 32)
        self.register_buffer("positions", table, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(embed_dim + 32, hidden), nn.GELU(), nn.Linear(hidden, feature_dim))

    def forward(self, embedding: torch.Tensor, frames: int) -> torch.Tensor:
        batch = len(embedding)
        codes = self.positions[:frames][None].expand(batch, -1, -1)
        return self.mlp(torch.cat([embedding[:, None].expand(-1, frames, -1), codes], dim=2))


@dataclass
class VideoItem:
    """One rendered item of a text-video-motion dataset.

    Attributes:
        key: dataset key (``000123_0``).
        name: the library clip's name (``dataset-2_walk_active_024``).
        split: ``train`` / ``val`` / ``test`` (see :func:`load_video_items`).
        captions: the clip's captions.
        motion: ``(T, 80, 3)`` canonical points of the rendered motion window at the model's fps.
        video: ``(T', 80, 3)`` canonical points of the video through the pose front end; ``None`` when MediaPipe
            found no person in it.
    """

    key: str
    name: str
    split: str
    captions: list[str]
    motion: np.ndarray
    video: np.ndarray | None


def _video_cache(dataset: Path, cache_dir: Path, fps: float) -> Path:
    tag = hashlib.sha1(str(dataset.resolve()).encode()).hexdigest()[:12]
    return cache_dir / "video" / f"{tag}-v{VIDEO_CACHE_VERSION}-{fps:g}fps"


def load_video_items(dataset: str | Path, fps: float, cache_dir: Path, clip_splits: dict[str, str] | None = None,
                     progress: Progress | None = None) -> list[VideoItem]:  # fmt: skip
    """Every item of a rendered dataset with its motion and pose-lifted video points.

    The pose front end runs once per video (one MediaPipe process for all that are not cached yet); its points are
    cached per item in ``cache_dir/video/``.

    Args:
        dataset: the dataset folder (``manifest.jsonl``, ``videos/``, ``motions/``).
        fps: the model's feature frame rate.
        clip_splits: library clip name -> split of the text-motion training (``models.retrieval.datasets``); an
            item takes its clip's split from here when the clip is known (so an item rendered from a held-out clip
            is held out here too), else the dataset's own split.

    Raises:
        FileNotFoundError: no ``manifest.jsonl``; ValueError: an empty dataset.
    """
    from backend.render.evaluate import load_window
    from models.video.pose import VideoError, extract_poses, pose_to_motion

    root = Path(dataset)
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(f"{root} is not a rendered dataset (no manifest.jsonl; make one with `baton data "
                                "render`)")  # fmt: skip
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    if not entries:
        raise ValueError(f"the rendered dataset {root} has no items")
    cache = _video_cache(root, cache_dir, fps)
    cache.mkdir(parents=True, exist_ok=True)
    missing = [e for e in entries if not (cache / f"{e['key']}.npz").is_file()]
    if missing:
        if progress is not None:
            progress.update(0.0, f"pose front end on {len(missing)} videos")
        log.info("pose front end on %d videos (cached in %s)", len(missing), cache)
        window_fps = float(load_window(root / missing[0]["motion"]).fps)
        poses = extract_poses([root / e["video"] for e in missing], fps=window_fps, max_seconds=60.0)
        for entry, pose in zip(missing, poses, strict=True):
            points = np.zeros((0, 80, 3), np.float32)
            if pose is not None:
                try:
                    points = canonical_points(pose_to_motion(pose, min_seconds=0.75), fps)
                except VideoError as exc:
                    log.info("%s: %s", entry["key"], exc)
            np.savez(cache / f"{entry['key']}.npz", points=points)
    items = []
    for entry in entries:
        with np.load(cache / f"{entry['key']}.npz") as data:
            video = data["points"]
        split = (clip_splits or {}).get(entry.get("name", ""), entry["split"])
        motion = canonical_points(load_window(root / entry["motion"]), fps)
        items.append(VideoItem(key=entry["key"], name=entry.get("name", ""), split=split,
                               captions=list(entry.get("captions") or []), motion=motion,
                               video=video if len(video) >= 2 else None))  # fmt: skip
    return items


def init_video_encoder(model: RetrievalModel) -> None:
    """Copy the motion encoder's weights and input statistics into the video encoder (the zero-shot start)."""
    if model.video_encoder is None:
        raise ValueError("the model has no video encoder (RetrievalConfig.video_encoder is False)")
    model.video_encoder.load_state_dict(model.motion_encoder.state_dict())


@dataclass
class TrimodalStats:
    """What a tri-modal run did: ``losses`` per step, ``items`` rendered training items with a person found."""

    losses: list[float]
    items: int


def train_trimodal(model: RetrievalModel, clips: list, items: list[VideoItem], bank, *, steps: int,
                   video_weight: float = 1.0, batch_size: int = 64, video_batch: int = 32,
                   learning_rate: float = 1e-4, temperature: float = 0.1, seed: int = 0,
                   progress: Progress | None = None) -> TrimodalStats:  # fmt: skip
    """Fine-tune ``model`` (in place) with the tri-modal loss of the module docstring.

    Args:
        model: a retrieval model with a video encoder (the text projection, motion and video encoders are trained;
            the sentence encoder is frozen).
        clips: library clips (:class:`~models.retrieval.datasets.Clip`; their ``train`` ones are used).
        items: rendered items (:func:`load_video_items`; the ``train`` ones with a video are used).
        bank: a :class:`~models.retrieval.training.CaptionBank` with a pool for every training clip's label.
        steps: optimiser steps.
        video_weight: weight of the text-video and video-motion terms (0: the control arm without video).
        batch_size / video_batch: library clips / rendered items per step.

    Returns:
        :class:`TrimodalStats`.

    Raises:
        ValueError: no training items with a video, too few clips, or bad settings.
    """
    from models.retrieval.captions import mirrored_content
    from models.retrieval.training import warmup_cosine

    if steps < 1 or not math.isfinite(video_weight) or video_weight < 0:
        raise ValueError(f"need steps >= 1 and video_weight >= 0, got {steps} and {video_weight}")
    if model.video_encoder is None:
        raise ValueError("tri-modal training needs a model with a video encoder")
    progress = progress or Progress()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train = [c for c in clips if c.split == "train"]
    rendered = [item for item in items if item.split == "train" and item.video is not None]
    if len(train) < 2 or len(rendered) < 2:
        raise ValueError(f"need at least 2 training clips and 2 rendered training items with a person found, got "
                         f"{len(train)} and {len(rendered)}")  # fmt: skip
    by_name = {c.name: c for c in train}
    item_texts = sorted({t for item in rendered if item.name not in by_name for t in item.captions})
    item_embeddings = {}
    if item_texts:  # captions of items whose clip is not among the training clips (a user's library)
        item_embeddings = dict(zip(item_texts, model.sentence_encoder.encode(item_texts), strict=True))
    fusion = AttentionFusion(model.config.embed_dim)
    decoder = MotionDecoder(model.config.embed_dim, model.motion_encoder.mean.numel(), model.window())
    parameters = [*model.parameters(), *fusion.parameters(), *decoder.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=1e-4)
    group_size = Counter(c.content or c.label for c in train)
    weights = np.array([1.0 / math.sqrt(group_size[c.content or c.label]) for c in train])
    weights /= weights.sum()
    label_ids = {key: i for i, key in enumerate(bank.pools)}
    window = model.window()
    warmup = max(1, steps // 10)
    batch_size, video_batch = min(batch_size, len(train)), min(video_batch, len(rendered))
    losses: list[float] = []
    started = time.monotonic()
    model.train()
    for step in range(steps):
        # library text-motion batch (the text search's own loss)
        chosen = rng.choice(len(train), size=batch_size, replace=False, p=weights)
        points, starts, caption_index, groups = [], [], [], []
        for i in chosen:
            clip = train[i]
            p = np.asarray(clip.points, np.float32)
            if clip.views and rng.random() < 0.5:
                p = np.asarray(clip.views[int(rng.integers(len(clip.views)))], np.float32)
            content = clip.content
            if clip.content is not None and rng.random() < 0.5:
                p, content = mirror_points(p), mirrored_content(clip.content)
            key = f"{content}/{clip.style}" if content is not None else clip.label
            points.append(p)
            starts.append(int(rng.integers(0, max(1, len(p) - window + 1))))
            caption_index.append(int(rng.choice(bank.pools[key])))
            groups.append(label_ids[key])
        sentence = torch.from_numpy(bank.embeddings[caption_index])
        mask = negative_filter_mask(sentence, 0.6, torch.tensor(groups))
        loss = info_nce(model.encode_text_features(sentence),
                        model.encode_motion_batch(*model.motion_inputs(points, starts)), temperature, mask)  # fmt: skip
        # rendered items: soft-target pairs, fusion and reconstruction
        picked = rng.choice(len(rendered), size=video_batch, replace=False)
        motion_points, video_points, item_sentences = [], [], []
        for i in picked:
            item = rendered[i]
            motion, video, clip = item.motion, item.video, by_name.get(item.name)
            label = None if clip is None else clip.label
            if clip is not None and clip.content is not None:
                content = clip.content
                if rng.random() < 0.5:  # mirror motion, video and caption together
                    motion, video, content = mirror_points(motion), mirror_points(video), mirrored_content(content)
                label = f"{content}/{clip.style}"
            motion_points.append(motion)
            video_points.append(video)
            if label is not None and label in bank.pools:
                item_sentences.append(bank.embeddings[int(rng.choice(bank.pools[label]))])
            else:
                item_sentences.append(item_embeddings[item.captions[int(rng.integers(len(item.captions)))]])
        sentence = torch.from_numpy(np.stack(item_sentences).astype(np.float32))
        targets = soft_targets(sentence)
        text = model.encode_text_features(sentence)
        motion_inputs = model.motion_inputs(motion_points)
        motion = model.encode_motion_batch(*motion_inputs)
        loss = loss + soft_contrastive(text, motion, targets, temperature)
        others = [text]
        if video_weight > 0:
            video = model.encode_video_batch(*model.motion_inputs(video_points))
            loss = loss + video_weight * (soft_contrastive(text, video, targets, temperature)
                                          + soft_contrastive(video, motion, targets, temperature))  # fmt: skip
            others.append(video)
        frames, real = motion_inputs
        goal = (frames - model.motion_encoder.mean) / model.motion_encoder.std
        rebuilt = decoder(fusion(motion, others), frames.shape[1])
        reconstruction = (((rebuilt - goal) ** 2).mean(dim=2) * real).sum() / real.sum()
        loss = loss + RECONSTRUCTION_WEIGHT * reconstruction
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, learning_rate, warmup, steps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if step % 25 == 0 or step == steps - 1:
            progress.update((step + 1) / steps, "tri-modal training")
            log.info("step %d/%d loss %.4f (%.0f s)", step + 1, steps, losses[-1], time.monotonic() - started)
    model.eval()
    return TrimodalStats(losses=losses, items=len(rendered))


def evaluate_items(model: RetrievalModel, items: list[VideoItem], split: str = "test") -> dict:
    """Video->motion, motion->video and text->motion R@1/5/10 and MedR over the rendered items of ``split`` (the
    ``N x N`` "All" protocol of :func:`backend.render.evaluate.recall_at`; text = each item's first caption; an
    item whose video had no person found keeps a zero video vector and counts as a miss).

    Raises:
        ValueError: when the split has fewer than 2 items.
    """
    from backend.render.evaluate import recall_at

    chosen = [item for item in items if item.split == split]
    if len(chosen) < 2:
        raise ValueError(f"need at least 2 rendered items in split {split!r}, got {len(chosen)}")
    motion = model.embed_points([item.motion for item in chosen])
    video = np.zeros_like(motion)
    found = [i for i, item in enumerate(chosen) if item.video is not None]
    if found:
        video[found] = model.embed_video_points([chosen[i].video for i in found])
    text = model.embed_text([item.captions[0] if item.captions else "" for item in chosen])
    similarity = video @ motion.T
    return {"split": split, "items": len(chosen), "video_found": len(found),
            "video_to_motion": recall_at(similarity), "motion_to_video": recall_at(similarity.T),
            "text_to_motion": recall_at(text @ motion.T)}  # fmt: skip
