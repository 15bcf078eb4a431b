"""The interface every conductor generator implements (``procedural``, ``diffusion``, ``m2sgan``)."""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from models.conductor.audio import MusicFeatures
from models.motion import Motion
from models.progress import Progress


@runtime_checkable
class ConductorGenerator(Protocol):
    """Music features + seed -> a conductor's performance.

    Implementations are constructed as ``Cls(checkpoint=None)`` (raising ``FileNotFoundError`` / ``ValueError``
    when their weights are missing or unreadable) and report, without loading anything heavy, whether they can run
    through the class method ``availability(checkpoint=None) -> (bool, detail)``.
    """

    name: str

    @classmethod
    def availability(cls, checkpoint: str | os.PathLike | None = None) -> tuple[bool, str]: ...

    def generate(
        self,
        features: MusicFeatures,
        *,
        seed: int = 0,
        steps: int = 20,
        guidance: float | None = None,
        progress: Progress | None = None,
    ) -> Motion:
        """A :class:`Motion` on ``coco13`` at 30 fps, positions ``(T, 13, 2)`` float32 in [0, 1] image coordinates
        (y down), ``T = round(features.duration_s * 30)``."""
        ...
