"""Text -> motion: a MoMask-style generator (RVQ-VAE tokens, masked + residual transformers, length estimator)
on the t2m SMPL-22 skeleton (../shared/DESIGN.md §6; docs/text-to-motion.md).

``load_text_to_motion(run_dir=None)`` loads the shipped default weights (``weights/default``, CC BY-NC 4.0:
trained on Bandai Namco data) or a ``baton train t2m`` run folder; ``TextToMotion.generate`` / ``inpaint`` return
:class:`models.motion.Motion` objects (smpl22, 20 fps, positions and rotations).
"""

from models.instruct.generator import (
    DEFAULT_GUIDANCE,
    MAX_SECONDS,
    MIN_SECONDS,
    TextToMotion,
    TimelineSegment,
    WeightsNotAvailable,
    load_text_to_motion,
)

__all__ = ["DEFAULT_GUIDANCE", "MAX_SECONDS", "MIN_SECONDS", "TextToMotion", "TimelineSegment", "WeightsNotAvailable",
           "load_text_to_motion"]  # fmt: skip
