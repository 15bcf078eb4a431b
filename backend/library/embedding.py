"""The bridge between the library and a retrieval model (``models.retrieval``).

The library needs only an :class:`Embedder`: a model key (``"<name>@<version>"``, so embeddings of different models
or weights never mix), the embedding size, and two batch functions into one joint space. :func:`load_embedder`
wraps the retrieval model loaded by ``models.retrieval.load_retrieval_model(path)``; tests and benchmarks may pass
any object with the same attributes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from models.motion.motion import Motion

#: Environment variable naming the default retrieval model (a run folder or weights file).
MODEL_ENV = "BATON_RETRIEVAL_MODEL"


@runtime_checkable
class Embedder(Protocol):
    """What the library needs from a retrieval model.

    Attributes:
        model_key: ``"<name>@<version>"``; identifies the embedding space in the store.
        dim: embedding size ``D``.
    """

    model_key: str
    dim: int

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """``(N, D)`` float32 unit vectors for ``N`` texts."""

    def embed_motion(self, motions: list[Motion]) -> np.ndarray:
        """``(N, D)`` float32 unit vectors for ``N`` motions (any skeleton the model supports)."""


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); zero rows stay zero.

    Raises:
        ValueError: when ``vectors`` is not 2-D or holds NaN / infinity.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError("embeddings contain NaN or infinity")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class RetrievalModelEmbedder:
    """An :class:`Embedder` around a ``models.retrieval`` model object.

    The model must provide ``embed_text(list[str])`` and ``embed_motion(list[Motion])`` returning ``(N, D)`` arrays
    (numpy or torch). Its key is ``model.model_key`` when present, else ``"<model.name or folder name>@<version or
    the first 12 hex digits of the weights' sha256>"``.
    """

    def __init__(self, model, path: Path | None = None) -> None:
        for method in ("embed_text", "embed_motion"):
            if not callable(getattr(model, method, None)):
                raise TypeError(f"retrieval model {type(model).__name__} has no {method}() method")
        self.model = model
        key = getattr(model, "model_key", None)
        if not key:
            name = getattr(model, "name", None) or (path.stem if path else type(model).__name__)
            version = getattr(model, "version", None) or (_weights_digest(path) if path else "0")
            key = f"{name}@{version}"
        self.model_key = str(key)
        dim = getattr(getattr(model, "config", None), "embed_dim", None) or getattr(model, "dim", None)
        self.dim = int(dim) if dim else int(self.embed_text(["a person walks"]).shape[1])

    def embed_text(self, texts: list[str]) -> np.ndarray:
        return normalise(_to_numpy(self.model.embed_text(list(texts))))

    def runtime_info(self) -> dict:
        """What the model runs on, for ``/capabilities``: ``{"device", "runtime", "providers"}``. A torch module
        answers with its first parameter's device and ``torch``; another model with its ``device`` / ``runtime``
        attributes (``None`` when it has none)."""
        parameters = getattr(self.model, "parameters", None)
        first = next(iter(parameters()), None) if callable(parameters) else None
        if first is not None:
            return {"device": str(first.device), "runtime": "torch", "providers": []}
        return {"device": getattr(self.model, "device", None), "runtime": getattr(self.model, "runtime", None),
                "providers": list(getattr(self.model, "providers", None) or [])}  # fmt: skip

    def embed_motion(self, motions: list[Motion]) -> np.ndarray:
        return normalise(_to_numpy(self.model.embed_motion(list(motions))))

    def embed_video(self, poses: list[Motion]) -> np.ndarray:
        """``(N, D)`` unit vectors for video windows lifted by the pose front end (``pose_to_windows``): the model's
        video encoder when it has one (``embed_video``), else its motion encoder."""
        embed = getattr(self.model, "embed_video", None)
        return normalise(_to_numpy(embed(list(poses)) if callable(embed) else self.model.embed_motion(list(poses))))


def _to_numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float32)


def _weights_digest(path: Path) -> str:
    """First 12 hex digits of the sha256 of the weights and config (``config.json``, ``*.safetensors``, ``*.pt``)."""
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.iterdir() if p.name == "config.json" or p.suffix in (".safetensors", ".pt"))
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def load_embedder(path: str | os.PathLike | None = None, device: str = "cpu") -> Embedder:
    """Load a retrieval model as an :class:`Embedder`.

    Args:
        path: the model's run folder (``config.json`` + ``model.safetensors``); ``None`` uses
            ``$BATON_RETRIEVAL_MODEL``, then ``models.retrieval.model.installed_model_dir()`` (the user's trained
            default, else the weights shipped in ``models/retrieval/weights/default``).
        device: torch device the model runs on (``cpu``, ``cuda``, ``cuda:N``; the server passes its resolved
            ``--device``).

    Raises:
        backend.errors.NotAvailableError: when no retrieval model is available (train one: ``baton train
            retrieval``), or the named path does not exist.
    """
    from backend.errors import NotAvailableError

    if path is None and os.environ.get(MODEL_ENV):
        path = os.environ[MODEL_ENV]
    try:
        from models.retrieval.model import installed_model_dir, load_retrieval_model
    except ImportError as exc:
        raise NotAvailableError(f"the retrieval models are not available ({exc})") from None
    run_dir = Path(path if path is not None else installed_model_dir()).expanduser()
    try:
        model = load_retrieval_model(run_dir, device=device)
    except FileNotFoundError as exc:
        raise NotAvailableError(f"{exc} (or name one with --model / ${MODEL_ENV})") from None
    return RetrievalModelEmbedder(model, run_dir)
