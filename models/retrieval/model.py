"""The text-motion retrieval model: config, embedding API, save and :func:`load_retrieval_model`.

A run directory holds ``config.json`` (the fully resolved :class:`RetrievalConfig`), ``model.safetensors`` (text
projection + motion encoder + input statistics; the frozen sentence encoder is not copied), ``metrics.json`` and
``MODEL_CARD.md``. ``load_retrieval_model(run_dir)`` rebuilds the model from the config alone (TMR habit).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.motion.motion import Motion
from models.retrieval.encoders import PatchConfig, PatchMotionEncoder, TMRConfig, TMRMotionEncoder
from models.retrieval.features import canonical_points, crop_or_pad, patch_image, tmr_frames
from models.retrieval.text import DEFAULT_TEXT_ENCODER, SentenceEncoder, TextProjection

ENCODERS = ("tmr", "patches")


@dataclass
class TrainingConfig:
    """Optimisation settings (saved with the run)."""

    steps: int = 800
    batch_size: int = 64
    learning_rate: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    temperature: float = 0.1
    filter_threshold: float = 0.6
    captions_per_label: int = 48
    mirror: bool = True
    seed: int = 0
    sources: tuple[str, ...] = ("bandai1", "bandai2", "cmu131")
    limit_per_group: int | None = None
    #: cross-skeleton views (:data:`models.retrieval.augment.VIEW_SKELETONS`); empty: train on the clips' own
    #: skeletons only. ``baton train retrieval`` uses all of them by default.
    views: tuple[str, ...] = ()
    #: probability that a training sample uses one of its clip's views instead of the clip itself.
    view_probability: float = 0.5


@dataclass
class RetrievalConfig:
    """Everything needed to rebuild a retrieval model.

    Attributes:
        encoder: ``tmr`` or ``patches``.
        embed_dim: joint embedding size (256).
        text_encoder: :data:`~models.retrieval.text.DEFAULT_TEXT_ENCODER` or a local Hugging Face folder.
        text_dim: the sentence encoder's output size (384 for MiniLM).
        fps: feature frame rate.
        tmr / patches: encoder sizes (only the chosen one is used).
        training: optimisation settings.
        video_encoder: whether the model has a video encoder (LAVIMO's third modality,
            :mod:`models.retrieval.trimodal`): the pose front end's keypoints of a video (lifted to the ``mediapipe21``
            skeleton, :mod:`models.video.pose`) in the same body-part features as motions, through its own TMR
            transformer (same size as the motion encoder). ``tmr`` encoder only.
    """

    encoder: str = "tmr"
    embed_dim: int = 256
    text_encoder: str = DEFAULT_TEXT_ENCODER
    text_dim: int = 384
    fps: float = 10.0
    tmr: TMRConfig = field(default_factory=lambda: TMRConfig(d_model=128, layers=4, feedforward=512, max_frames=48))
    patches: PatchConfig = field(
        default_factory=lambda: PatchConfig(frames=64, hidden_size=128, layers=4, intermediate_size=512)
    )
    training: TrainingConfig = field(default_factory=TrainingConfig)
    video_encoder: bool = False

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.video_encoder and self.encoder != "tmr":
            raise ValueError("a video encoder needs the tmr motion encoder")
        if isinstance(self.tmr, dict):
            self.tmr = TMRConfig(**self.tmr)
        if isinstance(self.patches, dict):
            self.patches = PatchConfig(**self.patches)
        if isinstance(self.training, dict):
            training = dict(self.training)
            training["sources"] = tuple(training.get("sources", TrainingConfig.sources))
            training["views"] = tuple(training.get("views", ()))
            self.training = TrainingConfig(**training)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RetrievalConfig:
        """Rebuild from :meth:`to_dict` output. Raises ``ValueError`` on unknown keys."""
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"invalid retrieval config: {exc}") from None


class RetrievalModel(nn.Module):
    """Text and motion encoders into one L2-normalised ``embed_dim`` space.

    ``embed_text`` / ``embed_motion`` are the inference API; ``encode_text_features`` / ``encode_motion_batch``
    are the differentiable parts used in training.
    """

    def __init__(self, config: RetrievalConfig):
        super().__init__()
        self.config = config
        self.text_projection = TextProjection(config.text_dim, config.embed_dim)
        if config.encoder == "tmr":
            self.motion_encoder: nn.Module = TMRMotionEncoder(config.tmr, config.embed_dim)
        else:
            self.motion_encoder = PatchMotionEncoder(config.patches, config.embed_dim)
        self.video_encoder: nn.Module | None = (
            TMRMotionEncoder(config.tmr, config.embed_dim) if config.video_encoder else None
        )
        self._sentence_encoder: SentenceEncoder | None = None

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live: ``embed_text`` / ``embed_motion`` run there (inputs moved in,
        embeddings returned on the CPU), and so does the sentence encoder."""
        return next(self.parameters()).device

    @property
    def sentence_encoder(self) -> SentenceEncoder:
        """The frozen sentence encoder, loaded on first use (on :attr:`device`)."""
        if self._sentence_encoder is None:
            self._sentence_encoder = SentenceEncoder(self.config.text_encoder, device=str(self.device))
            if self._sentence_encoder.dim != self.config.text_dim:
                raise ValueError(f"text encoder {self.config.text_encoder!r} gives {self._sentence_encoder.dim}-d "
                                 f"embeddings but the config says text_dim={self.config.text_dim}")  # fmt: skip
        return self._sentence_encoder

    # --- differentiable parts ---------------------------------------------------------------------------------
    def encode_text_features(self, sentence_embeddings: torch.Tensor) -> torch.Tensor:
        """``(B, text_dim)`` frozen sentence embeddings -> ``(B, embed_dim)`` L2-normalised."""
        return nn.functional.normalize(self.text_projection(sentence_embeddings), dim=-1)

    def motion_inputs(self, points: list[np.ndarray], starts: list[int] | None = None) -> tuple[torch.Tensor, ...]:
        """Encoder inputs for a list of canonical point arrays ``(T_i, 80, 3)``.

        TMR: ``(frames (B, L, 246), mask (B, L))`` with ``L = min(max T_i, max_frames)``; patches: ``(image,)``
        ``(B, 3, frames, 80)``. Long clips are cropped (centred unless ``starts`` gives window starts).
        """
        if self.config.encoder == "tmr":
            length = min(max(len(p) for p in points), self.config.tmr.max_frames)
            frames, mask = [], []
            for i, p in enumerate(points):
                fitted, real = crop_or_pad(np.asarray(p, np.float32), length, None if starts is None else starts[i])
                frames.append(tmr_frames(fitted, self.config.fps))
                mask.append(np.arange(length) < real)
            return torch.from_numpy(np.stack(frames)), torch.from_numpy(np.stack(mask))
        images = []
        for i, p in enumerate(points):
            p = np.asarray(p, np.float32)
            if starts is not None and len(p) > self.config.patches.frames:
                p = p[starts[i] : starts[i] + self.config.patches.frames]
            images.append(patch_image(p, self.config.patches.frames))
        return (torch.from_numpy(np.stack(images)),)

    def window(self) -> int:
        """Frames the motion encoder sees at once."""
        return self.config.tmr.max_frames if self.config.encoder == "tmr" else self.config.patches.frames

    def encode_motion_batch(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Encoder inputs from :meth:`motion_inputs` -> ``(B, embed_dim)`` L2-normalised."""
        return nn.functional.normalize(self.motion_encoder(*inputs), dim=-1)

    def encode_video_batch(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Video encoder inputs (:meth:`motion_inputs` of the video's pose points) -> ``(B, embed_dim)``
        L2-normalised; the motion encoder when the model has no video encoder (the zero-shot path)."""
        encoder = self.video_encoder if self.video_encoder is not None else self.motion_encoder
        return nn.functional.normalize(encoder(*inputs), dim=-1)

    # --- inference API ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Text embeddings ``(N, embed_dim)`` float32, L2-normalised.

        Raises:
            TypeError: when ``texts`` is not a list of strings.
        """
        if isinstance(texts, str):
            raise TypeError("embed_text expects a list of strings, got a single string")
        if len(texts) == 0:
            return np.zeros((0, self.config.embed_dim), np.float32)
        self.eval()
        sentences = torch.from_numpy(self.sentence_encoder.encode(list(texts))).to(self.device)
        return self.encode_text_features(sentences).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def embed_points(self, points: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Motion embeddings ``(N, embed_dim)`` float32 from canonical points (see :meth:`embed_motion`)."""
        self.eval()
        out = np.zeros((len(points), self.config.embed_dim), np.float32)
        for start in range(0, len(points), batch_size):
            chunk = points[start : start + batch_size]
            inputs = [tensor.to(self.device) for tensor in self.motion_inputs(chunk)]
            out[start : start + len(chunk)] = self.encode_motion_batch(*inputs).cpu().numpy()
        return out

    @torch.no_grad()
    def embed_video_points(self, points: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Video embeddings ``(N, embed_dim)`` float32 from the canonical points of pose-lifted videos."""
        self.eval()
        out = np.zeros((len(points), self.config.embed_dim), np.float32)
        for start in range(0, len(points), batch_size):
            chunk = points[start : start + batch_size]
            inputs = [tensor.to(self.device) for tensor in self.motion_inputs(chunk)]
            out[start : start + len(chunk)] = self.encode_video_batch(*inputs).cpu().numpy()
        return out

    def embed_video(self, poses: list[Motion], batch_size: int = 64) -> np.ndarray:
        """Embeddings ``(N, embed_dim)`` float32, L2-normalised, of video windows lifted by the pose front end
        (:func:`models.video.pose.pose_to_windows`, ``mediapipe21`` Motions), in the space of :meth:`embed_motion`:
        through the video encoder when the model has one, else through the motion encoder.

        Raises:
            TypeError: when ``poses`` is not a list of Motion.
        """
        if isinstance(poses, Motion) or not all(isinstance(m, Motion) for m in poses):
            raise TypeError("embed_video expects a list of Motion objects (pose_to_windows output)")
        return self.embed_video_points([canonical_points(m, self.config.fps) for m in poses], batch_size)

    def embed_motion(self, motions: list[Motion], batch_size: int = 64) -> np.ndarray:
        """Motion embeddings ``(N, embed_dim)`` float32, L2-normalised, for 3D motions on any skeleton with legs,
        spine and arms (features: :func:`~models.retrieval.features.canonical_points`).

        Raises:
            TypeError: when ``motions`` is not a list of Motion.
            ValueError: for 2D motions or skeletons without identifiable limbs.
        """
        if isinstance(motions, Motion) or not all(isinstance(m, Motion) for m in motions):
            raise TypeError("embed_motion expects a list of Motion objects")
        return self.embed_points([canonical_points(m, self.config.fps) for m in motions], batch_size)

    # --- persistence ------------------------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``run_dir`` atomically. Returns the folder."""
        from safetensors.torch import save_file

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        _atomic(run_dir / "model.safetensors", lambda tmp: save_file(state, tmp))
        text = json.dumps(self.config.to_dict(), indent=2)
        _atomic(run_dir / "config.json", lambda tmp: Path(tmp).write_text(text))
        return run_dir


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_retrieval_model(run_dir: str | os.PathLike, device: str = "cpu") -> RetrievalModel:
    """Rebuild a trained model from its run directory (``config.json`` + ``model.safetensors``), in eval mode.

    Raises:
        FileNotFoundError: when the folder or its files are missing (the message says how to train one).
        ValueError: when the config or weights do not match.
    """
    from safetensors.torch import load_file

    run_dir = Path(run_dir).expanduser()
    config_path, weights_path = run_dir / "config.json", run_dir / "model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(
            f"no retrieval model in {run_dir} (needs config.json and model.safetensors); "
            "train one with `baton train retrieval -o DIR`"
        )
    model = RetrievalModel(RetrievalConfig.from_dict(json.loads(config_path.read_text())))
    missing, unexpected = model.load_state_dict(load_file(str(weights_path), device=device), strict=False)
    if missing or unexpected:
        raise ValueError(f"{weights_path}: weights do not match the config (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")  # fmt: skip
    return model.to(device).eval()


def default_model_dir() -> Path:
    """``<Baton data folder>/models/retrieval/default`` (:func:`models.paths.user_data_dir`): where ``baton train
    retrieval`` writes the user's own default model."""
    from models.paths import user_data_dir

    return user_data_dir() / "models" / "retrieval" / "default"


#: The default weights shipped with Baton (trained on CC BY-NC 4.0 data: non-commercial use, see the folder's
#: ``LICENSE`` and ``MODEL_CARD.md``; Baton's code stays Apache-2.0).
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "weights" / "default"


def is_model_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a retrieval model (``config.json`` and ``model.safetensors``)."""
    path = Path(path).expanduser()
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def installed_model_dir() -> Path:
    """The model used when none is named: the user's own default (:func:`default_model_dir`) once trained, else
    the shipped weights (:data:`SHIPPED_MODEL_DIR`)."""
    user = default_model_dir()
    return user if is_model_dir(user) or not is_model_dir(SHIPPED_MODEL_DIR) else SHIPPED_MODEL_DIR
