"""Text -> motion generation with the trained networks (MoMask inference, ../shared/DESIGN.md §6).

Sampling, for a batch of ``samples`` variations:

1. Base tokens (layer 0) by iterative masked decoding (MoMask §3.2): start with every unknown token masked; at
   step ``s`` of ``steps`` (default 10) predict all masked tokens with classifier-free guidance on the logits,
   ``logits = uncond + guidance * (cond - uncond)`` (``uncond`` = the learned null condition), sample each from the
   top-10 %-filtered softmax, and re-mask the ``floor(n * cos(pi/2 * (s+1)/steps))`` least confident.
   Added to those logits at every step (when the run folder has ``prior.pt``): ``prior_weight`` times the bigram
   prior's ``log P(code | previous code) + log P(code | next code)`` for the neighbours already decoded (shallow
   fusion of :class:`~models.instruct.networks.TokenBigram`), which keeps a gait's codes in the data's order; it
   reads only codes generated for the same prompt.
2. Residual tokens layer by layer (1..Q-1) with the residual transformer (guided the same way).
3. Decode all tokens at once with the RVQ-VAE decoder (fully convolutional, any length), un-normalise, recover joint
   positions (:func:`models.motion.humanml3d.features_to_joints`), and solve local rotations on ``smpl22`` with the
   retarget solver (foot lock on).

Any length: tokens are filled window by window (at most ``max_tokens`` per window, the training length); each new
window starts with up to :data:`CONTEXT_TOKENS` already-fixed tokens of the previous one (token inpainting at the
seam), so the motion continues instead of restarting. A timeline of prompts is the same procedure with a prompt per
window; :meth:`TextToMotion.inpaint` keeps the tokens of an existing motion outside the range (context on both
sides) and regenerates the range.

Negative conditions (the ``uncond`` branch of the guidance): a prompt that names a side ("left" / "right") is guided
away from its side-mirrored prompt (MiniLM barely separates the two); the first window of a timeline segment whose
context tokens belong to the previous prompt is guided away from that prompt (otherwise four tokens of, say, walking
carry on into "raise both arms"); everything else is guided away from the learned null condition.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.instruct.networks import load_network
from models.motion.humanml3d import features_to_joints
from models.motion.motion import Motion
from models.motion.skeleton import get_skeleton
from models.progress import Progress
from models.retrieval.captions import mirror_sides

#: Longest motion :meth:`TextToMotion.generate` makes (seconds): 5 minutes.
MAX_SECONDS = 300.0
#: Shortest motion (seconds): one second (5 tokens of 4 frames at 20 fps).
MIN_SECONDS = 1.0
MAX_PROMPT_CHARS = 1000
MAX_SAMPLES = 16
#: Classifier-free guidance scale on the masked transformer's logits when the caller gives none. Chosen on the
#: validation split (`baton eval t2m --split val`; the sweeps are in the model card: with the shipped weights content
#: accuracy rises with guidance while R-precision and FID get worse, 3 is the compromise), then measured once on the
#: test split.
DEFAULT_GUIDANCE = 3.0
FPS = 20.0
#: Already-fixed tokens a new window sees on each side of the part it generates (0.8 s each).
CONTEXT_TOKENS = 4
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "default"
RUN_FILES = ("vq.pt", "mask.pt", "residual.pt", "length.pt")
#: Optional file of a run folder: the base codes' bigram prior (:class:`~models.instruct.networks.TokenBigram`).
PRIOR_FILE = "prior.pt"
#: Weight of the bigram prior's log-probabilities added to the guided logits of masked decoding (shallow fusion;
#: 0 = off). Chosen on the validation split (model card), then measured once on the test split.
DEFAULT_PRIOR_WEIGHT = 1.0


class WeightsNotAvailable(FileNotFoundError):
    """Raised when the text-to-motion weights are missing (the message says how to get them)."""


@dataclass(frozen=True)
class TimelineSegment:
    """One prompt of a timeline: ``text`` from ``start_s`` to ``end_s`` seconds."""

    text: str
    start_s: float
    end_s: float


def check_prompt(prompt: str, what: str = "prompt") -> str:
    """The stripped prompt. Raises ``ValueError`` for a non-string, empty or > 1000-character prompt."""
    if not isinstance(prompt, str):
        raise ValueError(f"{what} must be text, got {type(prompt).__name__}")
    text = " ".join(prompt.split())
    if not text:
        raise ValueError(f"{what} is empty; describe the motion, e.g. 'a person waves with the right hand'")
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"{what} is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS}")
    return text


def check_seconds(seconds: float, what: str = "seconds") -> float:
    """``seconds`` as a float. Raises ``ValueError`` unless ``MIN_SECONDS <= seconds <= MAX_SECONDS``."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {seconds!r}") from None
    if not math.isfinite(value) or value < MIN_SECONDS or value > MAX_SECONDS:
        raise ValueError(f"{what} must be between {MIN_SECONDS:g} and {MAX_SECONDS:g} s, got {seconds!r}")
    return value


def check_generation_args(samples: int, guidance: float, prior_weight: float = 0.0) -> None:
    """Raises ``ValueError`` for samples outside 1..16 or a NaN / infinite / negative guidance or prior weight."""
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or not 1 <= samples <= MAX_SAMPLES:
        raise ValueError(f"samples must be an integer from 1 to {MAX_SAMPLES}, got {samples!r}")
    for name, value, what in (("guidance", guidance, "classifier-free guidance scale"),
                              ("prior_weight", prior_weight, "bigram prior weight")):  # fmt: skip
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{name} must be a finite number >= 0 ({what}), got {value!r}")


def normalise_timeline(segments: Sequence[TimelineSegment], seconds: float | None) -> tuple[list[str],
                                                                                             list[float], float]:
    """``(texts, start times, total seconds)`` of a timeline; the first segment starts at 0, each lasts until the
    next one starts. Raises ``ValueError`` for an empty, unsorted or overlapping timeline or bad times / texts."""
    if not segments:
        raise ValueError("the timeline is empty; give at least one TimelineSegment(text, start_s, end_s)")
    texts, starts, last_end = [], [], 0.0
    for i, seg in enumerate(segments):
        if not isinstance(seg, TimelineSegment):
            raise ValueError(f"timeline item {i} must be a TimelineSegment, got {type(seg).__name__}")
        texts.append(check_prompt(seg.text, f"timeline segment {i} text"))
        start, end = float(seg.start_s), float(seg.end_s)
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise ValueError(f"timeline segment {i}: need 0 <= start_s < end_s, got {seg.start_s!r}..{seg.end_s!r}")
        if i and start < last_end - 1e-6:
            raise ValueError(f"timeline segment {i} starts at {start:g} s, before segment {i - 1} ends "
                             f"({last_end:g} s); segments must be sorted and must not overlap")  # fmt: skip
        starts.append(0.0 if i == 0 else start)
        last_end = end
    total = check_seconds(seconds if seconds is not None else last_end)
    return texts, starts, total


class TextToMotion:
    """A loaded text-to-motion generator (use :func:`load_text_to_motion`).

    Attributes:
        run_dir: the weights folder.
        device: torch device.
        max_tokens: tokens per window (training length; 4 frames each).
        num_quantizers: RVQ layers ``Q``.
    """

    def __init__(self, run_dir: Path, device: str = "cpu", runtime: str = "torch"):
        if runtime not in ("torch", "ort"):
            raise ValueError(f"runtime must be 'torch' or 'ort', got {runtime!r}")
        self.run_dir = Path(run_dir)
        self.device = device
        self.runtime = runtime
        self.vq, payload = load_network(self.run_dir / "vq.pt", "vq", device)
        self.mean = payload["mean"].float().numpy()
        self.std = payload["std"].float().numpy()
        self.mask, _ = load_network(self.run_dir / "mask.pt", "mask", device)
        self.residual, _ = load_network(self.run_dir / "residual.pt", "residual", device)
        self.length, _ = load_network(self.run_dir / "length.pt", "length", device)
        #: the base codes' bigram prior (``prior.pt``; runs trained before it existed have none and decode without)
        self.prior = None
        if (self.run_dir / PRIOR_FILE).is_file():
            self.prior, _ = load_network(self.run_dir / PRIOR_FILE, "prior", device)
        self.max_tokens = self.mask.config.max_tokens
        self.num_quantizers = self.vq.config.num_quantizers
        self.codebook_size = self.vq.config.codebook_size
        self.frames_per_token = self.vq.config.downsample
        self._encoder = None
        self._ort = None
        self._cache: dict[str, torch.Tensor] = {}
        if runtime == "ort":
            from models.instruct.onnx_runtime import OrtNetworks

            self._ort = OrtNetworks.for_generator(self)

    # -- text -----------------------------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N, 384)`` frozen MiniLM sentence embeddings (cached per text)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            if self._encoder is None:
                from models.retrieval.text import SentenceEncoder

                self._encoder = SentenceEncoder()
            for t, e in zip(missing, self._encoder.encode(list(missing)), strict=True):
                self._cache[t] = torch.from_numpy(e)
        return torch.stack([self._cache[t] for t in texts]).to(self.device)

    def estimate_seconds(self, prompt: str) -> float:
        """The length estimator's most likely duration for ``prompt`` (seconds, at least :data:`MIN_SECONDS`)."""
        with torch.no_grad():
            logits = self.length(self.embed([check_prompt(prompt)]))[0]
        tokens = int(logits[5:].argmax()) + 5
        return max(MIN_SECONDS, tokens * self.frames_per_token / FPS)

    # -- networks (torch or onnxruntime) ------------------------------------------------------------------------
    def _mask_logits(self, ids: torch.Tensor, text: torch.Tensor, guidance: float,
                     negative: torch.Tensor | None = None, prior_weight: float = 0.0,
                     prior_visible: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        logits = self._guided_mask_logits(ids, text, guidance, negative)
        if prior_weight and self.prior is not None:
            seen = ids if prior_visible is None else torch.where(prior_visible[None], ids, self.mask.config.mask_id)
            logits = logits + prior_weight * self.prior(seen)
        return logits

    def _guided_mask_logits(self, ids: torch.Tensor, text: torch.Tensor, guidance: float,
                            negative: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        b, length = ids.shape
        padding = torch.zeros(b, length, dtype=torch.bool, device=ids.device)
        if guidance == 1.0:
            return self._run_mask(ids, text, padding, torch.zeros(b, dtype=torch.bool))
        other, drop = (text, torch.ones(b, dtype=torch.bool)) if negative is None else (negative, torch.zeros(
            b, dtype=torch.bool))  # fmt: skip
        both = self._run_mask(torch.cat([ids, ids]), torch.cat([text, other]), torch.cat([padding, padding]),
                              torch.cat([torch.zeros(b, dtype=torch.bool), drop]))
        cond, uncond = both[:b], both[b:]
        return uncond + guidance * (cond - uncond)

    def _run_mask(self, ids, text, padding, drop):
        if self._ort is not None:
            return self._ort.mask(ids, text, padding, drop)
        return self.mask(ids, text, padding, drop.to(ids.device))

    def _residual_logits(self, codes: torch.Tensor, layer: int, text: torch.Tensor, guidance: float) -> torch.Tensor:
        b, length, _ = codes.shape
        padding = torch.zeros(b, length, dtype=torch.bool, device=codes.device)
        layers = torch.full((b,), layer, dtype=torch.long, device=codes.device)
        if guidance == 1.0:
            return self._run_residual(codes, layers, text, padding, torch.zeros(b, dtype=torch.bool))
        both = self._run_residual(torch.cat([codes, codes]), torch.cat([layers, layers]), torch.cat([text, text]),
                                  torch.cat([padding, padding]),
                                  torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]))
        cond, uncond = both[:b], both[b:]
        return uncond + guidance * (cond - uncond)

    def _run_residual(self, codes, layers, text, padding, drop):
        if self._ort is not None:
            return self._ort.residual(codes, layers, text, padding, drop)
        return self.residual(codes, layers, text, padding, drop.to(codes.device))

    def _decode(self, codes: torch.Tensor) -> np.ndarray:
        if self._ort is not None:
            return self._ort.decode(codes)
        with torch.no_grad():
            return self.vq.decode(codes).cpu().numpy()

    # -- sampling -------------------------------------------------------------------------------------------------
    @staticmethod
    def _sample(logits: torch.Tensor, generator: torch.Generator, temperature: float = 1.0,
                top_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Sample from top-``top_fraction`` filtered logits ``(B, L, K)``; returns (tokens, their probabilities)."""
        k = max(1, int(math.ceil(top_fraction * logits.shape[-1])))
        top = logits.topk(k, dim=-1)
        probs = torch.softmax(top.values / max(temperature, 1e-6), dim=-1)
        flat = probs.reshape(-1, k).float()
        choice = torch.multinomial(flat.cpu(), 1, generator=generator).to(logits.device).reshape(probs.shape[:-1])
        tokens = top.indices.gather(-1, choice[..., None])[..., 0]
        return tokens, probs.gather(-1, choice[..., None])[..., 0]

    def _fill_base(self, known: torch.Tensor, text: torch.Tensor, guidance: float, steps: int,
                   generator: torch.Generator, negative: torch.Tensor | None = None, prior_weight: float = 0.0,
                   prior_visible: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Masked decoding of ``known (B, L)`` (``-1`` = unknown) -> ``(B, L)`` tokens; ``prior_weight`` scales the
        bigram prior fused into the logits (its confidences too, so re-masking keeps the transitions it favours);
        the prior reads only the positions where ``prior_visible (L,)`` is True (default: all)."""
        mask_id = self.mask.config.mask_id
        unknown = known < 0
        ids = torch.where(unknown, torch.full_like(known, mask_id), known)
        total = unknown.sum(1)
        is_masked = unknown.clone()
        for step in range(steps):
            logits = self._mask_logits(ids, text, guidance, negative, prior_weight, prior_visible)
            tokens, confidence = self._sample(logits, generator)
            ids = torch.where(is_masked, tokens, ids)
            remain = torch.floor(total.float() * math.cos(math.pi / 2 * (step + 1) / steps)).long()
            if step == steps - 1 or int(remain.max()) == 0:
                break
            scores = torch.where(is_masked, confidence, torch.full_like(confidence, 2.0))
            rank = scores.argsort(dim=1).argsort(dim=1)
            is_masked = rank < remain[:, None]
            ids = torch.where(is_masked, torch.full_like(ids, mask_id), ids)
        return ids

    def _fill_residual(self, codes: torch.Tensor, unknown: torch.Tensor, text: torch.Tensor, guidance: float,
                       generator: torch.Generator) -> torch.Tensor:  # fmt: skip
        """Residual layers 1..Q-1 at ``unknown (B, L)`` positions of ``codes (B, L, Q)`` (base layer filled)."""
        codes = codes.clone()
        for q in range(1, self.num_quantizers):
            logits = self._residual_logits(codes, q, text, guidance)
            tokens, _ = self._sample(logits, generator)
            codes[..., q] = torch.where(unknown, tokens, codes[..., q])
        return codes

    def _windows(self, unknown: np.ndarray, owner: np.ndarray) -> list[tuple[int, int, int, int]]:
        """``(window start, new start, new end, window end)`` covering every unknown token, left to right.

        Each maximal run of unknown tokens with one prompt is cut into windows of at most ``max_tokens`` tokens,
        each starting with up to :data:`CONTEXT_TOKENS` tokens before it (filled by then); a run's last window also
        sees up to :data:`CONTEXT_TOKENS` known tokens after it (inpainting).
        """
        n, out, i = len(unknown), [], 0
        while i < n:
            if not unknown[i]:
                i += 1
                continue
            k = i
            while k < n and unknown[k] and owner[k] == owner[i]:
                k += 1
            s = i
            while s < k:
                left = max(0, s - CONTEXT_TOKENS)
                end = min(k, s + self.max_tokens - (s - left))
                right = end
                if end == k:
                    while right < n and right - k < CONTEXT_TOKENS and not unknown[right] and right - left < \
                            self.max_tokens:
                        right += 1
                out.append((left, s, end, right))
                s = end
            i = k
        return out

    @torch.no_grad()
    def _fill(self, codes: torch.Tensor, owner: np.ndarray, texts: list[str], guidance: float, steps: int,
              seed: int, progress: Progress | None, prior_weight: float = 0.0) -> torch.Tensor:  # fmt: skip
        """Fill ``codes (B, N, Q)`` where ``codes[..., 0] < 0``, window by window (module docstring)."""
        generator = torch.Generator().manual_seed(int(seed))
        embeddings = self.embed(texts)
        mirrored = [mirror_sides(t) for t in texts]
        negatives = self.embed([m for m in mirrored if m is not None]) if any(mirrored) else None
        negative_row = {}
        for i, m in enumerate(mirrored):
            if m is not None:
                negative_row[i] = len(negative_row)
        unknown_all = (codes[0, :, 0] < 0).cpu().numpy()
        # whose tokens the bigram prior may read: the prompt that generated them (-1: given, e.g. inpainting context).
        # Across a change of prompt it would pull the new action back into the old one's transitions.
        source = np.where(unknown_all, owner, -1)
        windows = self._windows(unknown_all, owner)
        for w, (left, start, end, right) in enumerate(windows):
            if progress is not None:
                progress.update(w / max(1, len(windows)), f"generating tokens ({w + 1}/{len(windows)} windows)")
            prompt = int(owner[start])
            text = embeddings[prompt][None].expand(codes.shape[0], -1)
            row = negative_row.get(prompt)
            negative = None
            if row is not None:  # the side-mirrored prompt
                negative = negatives[row][None].expand(codes.shape[0], -1)
            elif left < start and int(owner[left]) != prompt:  # the previous prompt, whose tokens are the context
                negative = embeddings[int(owner[left])][None].expand(codes.shape[0], -1)
            window = codes[:, left:right].clone()
            unknown = torch.zeros(window.shape[:2], dtype=torch.bool, device=codes.device)
            unknown[:, start - left : end - left] = True
            base_known = torch.where(unknown, torch.full_like(window[..., 0], -1), window[..., 0])
            visible = torch.from_numpy(source[left:right] == prompt).to(codes.device)
            window[..., 0] = self._fill_base(base_known, text, guidance, steps, generator, negative, prior_weight,
                                             visible)  # fmt: skip
            window = self._fill_residual(window, unknown, text, min(guidance, 2.0) if guidance > 1 else guidance,
                                         generator)  # fmt: skip
            codes[:, start:end] = window[:, start - left : end - left]
        return codes

    def _to_motions(self, codes: torch.Tensor, frames: int, metadata: dict,
                    progress: Progress | None) -> list[Motion]:  # fmt: skip
        """Decode ``codes (B, N, Q)`` to ``B`` smpl22 Motions of ``frames`` frames (positions + rotations)."""
        from models.motion.retarget import retarget

        if progress is not None:
            progress.update(0.0, "decoding motion")
        features = self._decode(codes) * self.std + self.mean  # (B, 4N, 263)
        skeleton = get_skeleton("smpl22")
        motions = []
        for b in range(features.shape[0]):
            positions = features_to_joints(features[b, :frames])
            raw = Motion(skeleton, FPS, positions)
            solved = retarget(raw, skeleton, foot_lock=True).motion
            motions.append(Motion(skeleton, FPS, solved.positions, solved.rotations, solved.root_translation,
                                  metadata={**metadata, "sample": b, "generator": "baton-t2m"}))  # fmt: skip
            if progress is not None:
                progress.update((b + 1) / features.shape[0], "solving rotations")
        return motions

    def generate(self, prompt: str | Sequence[TimelineSegment], *, seconds: float | None = None, seed: int = 0,
                 samples: int = 1, guidance: float = DEFAULT_GUIDANCE, steps: int = 10,
                 prior_weight: float = DEFAULT_PRIOR_WEIGHT,
                 progress: Progress | None = None) -> list[Motion]:  # fmt: skip
        """Generate ``samples`` variations of a prompt or a timeline of prompts.

        Args:
            prompt: text (at most 1000 characters) or a sequence of :class:`TimelineSegment` (sorted, not
                overlapping; the first starts at 0 s, each lasts until the next starts).
            seconds: duration, :data:`MIN_SECONDS` .. :data:`MAX_SECONDS`; ``None``: the length estimator's guess
                (a timeline: its last ``end_s``).
            seed: random seed (same arguments and seed -> the same motions).
            samples: variations, 1..16, generated in one batch.
            guidance: classifier-free guidance scale on the logits (>= 0; 1 = conditional only, 0 = unconditional).
            steps: masked-decoding iterations per window.
            prior_weight: weight of the base codes' bigram prior in masked decoding (>= 0; 0 = off; no effect for
                a run folder without ``prior.pt``).
            progress: optional progress sink (raises ``models.progress.Cancelled``).

        Returns:
            ``samples`` Motions on ``smpl22`` at 20 fps: positions ``(T, 22, 3)`` metres (+Y up, starting at the
            origin facing +Z), local rotations ``(T, 22, 4)`` and root translation, ``T = round(seconds * 20)``.

        Raises:
            ValueError: for an empty or too long prompt, a bad timeline, seconds out of range, samples outside
                1..16, a NaN / infinite / negative guidance or prior weight, steps < 1.
        """
        check_generation_args(samples, guidance, prior_weight)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if isinstance(prompt, str):
            texts = [check_prompt(prompt)]
            total = check_seconds(seconds) if seconds is not None else self.estimate_seconds(texts[0])
            starts = [0.0]
        else:
            texts, starts, total = normalise_timeline(list(prompt), seconds)
        frames = int(round(total * FPS))
        tokens = int(math.ceil(frames / self.frames_per_token))
        owner = np.zeros(tokens, dtype=np.int64)
        for i, start in enumerate(starts):
            owner[int(round(start * FPS / self.frames_per_token)) :] = i
        codes = torch.full((samples, tokens, self.num_quantizers), -1, dtype=torch.long, device=self.device)
        codes = self._fill(codes, owner, texts, float(guidance), steps, seed,
                           progress.sub(0.0, 0.8) if progress is not None else None, float(prior_weight))  # fmt: skip
        metadata = {"prompt": texts[0] if len(texts) == 1 else texts, "seed": int(seed), "guidance": float(guidance),
                    "prior_weight": self.effective_prior_weight(prior_weight), "timeline_starts_s": starts,
                    "license": "CC BY-NC 4.0 (weights trained on Bandai Namco data)"}  # fmt: skip
        return self._to_motions(codes, frames, metadata, progress.sub(0.8, 1.0) if progress is not None else None)

    def effective_prior_weight(self, prior_weight: float) -> float:
        """The prior weight that takes effect for a requested one: itself, or 0 for a run without ``prior.pt``."""
        return float(prior_weight) if self.prior is not None else 0.0

    def encode_motion(self, motion: Motion) -> tuple[torch.Tensor, int]:
        """``(codes (N, Q), frames at 20 fps)`` of any motion (retargeted onto smpl22, HumanML3D features)."""
        from models.instruct.data import clip_features

        features = clip_features(motion)
        frames = features.shape[0]
        pad = (-frames) % self.frames_per_token
        if pad:
            features = np.concatenate([features, np.repeat(features[-1:], pad, axis=0)])
        x = torch.from_numpy(((features - self.mean) / self.std).astype(np.float32))[None].to(self.device)
        with torch.no_grad():
            return self.vq.encode(x)[0], frames

    def inpaint(self, motion: Motion, prompt: str, start_s: float, end_s: float, *, seed: int = 0, samples: int = 1,
                guidance: float = DEFAULT_GUIDANCE, steps: int = 10, prior_weight: float = DEFAULT_PRIOR_WEIGHT,
                progress: Progress | None = None) -> list[Motion]:  # fmt: skip
        """Regenerate ``start_s .. end_s`` of ``motion`` from ``prompt``, keeping the rest (token inpainting).

        The motion is retargeted onto smpl22 and tokenised; tokens overlapping the range are regenerated with the
        tokens around it as context, then everything is decoded (outside the range the result is the RVQ-VAE
        reconstruction of the input, canonicalised: frame 0 at the origin facing +Z).

        Returns:
            ``samples`` smpl22 Motions at 20 fps as long as ``motion``.

        Raises:
            ValueError: for a bad prompt / samples / guidance / prior weight, a 2D motion, or a range not inside the
                motion with ``start_s < end_s``.
        """
        check_generation_args(samples, guidance, prior_weight)
        text = check_prompt(prompt)
        if not isinstance(motion, Motion) or motion.is_2d:
            raise ValueError("inpaint needs a 3D Motion")
        duration = motion.duration_s
        start, end = float(start_s), float(end_s)
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start or start >= duration:
            raise ValueError(f"the range must satisfy 0 <= start_s < end_s and start_s < the motion's duration "
                             f"({duration:.2f} s), got {start_s!r}..{end_s!r}")  # fmt: skip
        if duration > MAX_SECONDS:
            raise ValueError(f"the motion is {duration:.0f} s long; the limit is {MAX_SECONDS:g} s")
        base, _ = self.encode_motion(motion)
        n = base.shape[0]
        frames = min(n * self.frames_per_token, int(round(duration * FPS)))
        first = int(math.floor(start * FPS / self.frames_per_token))
        last = min(n, max(first + 1, int(math.ceil(min(end, duration) * FPS / self.frames_per_token))))
        codes = base[None].repeat(samples, 1, 1).clone()
        codes[:, first:last] = -1
        codes = self._fill(codes, np.zeros(n, dtype=np.int64), [text], float(guidance), steps, seed,
                           progress.sub(0.0, 0.8) if progress is not None else None, float(prior_weight))  # fmt: skip
        metadata = {"prompt": text, "seed": int(seed), "guidance": float(guidance),
                    "prior_weight": self.effective_prior_weight(prior_weight), "inpainted_s": [start, end],
                    "license": "CC BY-NC 4.0 (weights trained on Bandai Namco data)"}  # fmt: skip
        return self._to_motions(codes, frames, metadata, progress.sub(0.8, 1.0) if progress is not None else None)


def load_text_to_motion(run_dir: str | os.PathLike | None = None, *, device: str = "cpu",
                        runtime: str = "torch") -> TextToMotion:  # fmt: skip
    """Load a text-to-motion generator from a run folder (``vq.pt``, ``mask.pt``, ``residual.pt``, ``length.pt``).

    Args:
        run_dir: a ``baton train t2m`` output folder; ``None``: the shipped default weights
            (``models/instruct/weights/default``, CC BY-NC 4.0).
        device: torch device.
        runtime: ``"torch"`` or ``"ort"`` (onnxruntime on CPU for the transformers and the decoder).

    Raises:
        WeightsNotAvailable: when the folder lacks the weights (the message says how to train them).
        ValueError: for an unknown runtime or a corrupt checkpoint.
    """
    folder = Path(run_dir).expanduser() if run_dir is not None else DEFAULT_WEIGHTS
    missing = [f for f in RUN_FILES if not (folder / f).is_file()]
    if missing:
        raise WeightsNotAvailable(
            f"text-to-motion weights not available in {folder} (missing {', '.join(missing)}); train them with "
            "`baton train t2m -o RUN_DIR` and pass that folder"
        )
    return TextToMotion(folder, device=device, runtime=runtime)
