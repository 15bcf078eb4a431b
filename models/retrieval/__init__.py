"""Text <-> motion retrieval (DESIGN §5): skeleton-normalised body-part features, TMR-style and Motion Patches
(ViT) motion encoders, a frozen sentence encoder with a trainable projection, contrastive training with negative
filtering, and the TMR evaluation protocols. See docs/retrieval.md.

Inference API: ``model = load_retrieval_model(installed_model_dir())`` (the user's trained default, else the
shipped weights in ``models/retrieval/weights/default``); ``model.embed_text(list[str]) -> (N, 256)`` and
``model.embed_motion(list[Motion]) -> (N, 256)``, float32, L2-normalised (cosine = dot product).
"""

from models.retrieval.model import (
    SHIPPED_MODEL_DIR,
    RetrievalConfig,
    RetrievalModel,
    default_model_dir,
    installed_model_dir,
    load_retrieval_model,
)

__all__ = ["SHIPPED_MODEL_DIR", "RetrievalConfig", "RetrievalModel", "default_model_dir", "installed_model_dir",
           "load_retrieval_model"]  # fmt: skip
