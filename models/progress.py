"""Progress reporting and cooperative cancellation for long work (generation, training, import, rendering).

Long functions take an optional ``progress: Progress`` and call ``progress.update(fraction, stage)`` between steps;
the backend's job queue and the command line supply one. ``update`` raises :class:`Cancelled` once cancellation was
requested, so work stops at the next step boundary and nothing half-done is saved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class Cancelled(Exception):
    """Raised inside long work when its caller asked it to stop."""


@dataclass
class Progress:
    """A progress sink with a cancel flag.

    Attributes:
        callback: called as ``callback(fraction in [0, 1], stage name)`` on every update (may be ``None``).
        cancel_event: set it (``cancel()``) to ask the work to stop.
    """

    callback: Callable[[float, str], None] | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    fraction: float = 0.0
    stage: str = ""
    started_at: float = field(default_factory=time.monotonic)

    def update(self, fraction: float, stage: str | None = None) -> None:
        """Record progress (clamped to [0, 1]); raises :class:`Cancelled` if cancellation was requested."""
        if self.cancel_event.is_set():
            raise Cancelled(f"cancelled during {stage or self.stage or 'work'}")
        self.fraction = min(1.0, max(0.0, float(fraction)))
        if stage is not None:
            self.stage = stage
        if self.callback is not None:
            self.callback(self.fraction, self.stage)

    def sub(self, start: float, end: float) -> Progress:
        """A child sink mapping its own 0..1 onto ``start..end`` of this one (shares the cancel flag)."""

        def forward(fraction: float, stage: str) -> None:
            self.update(start + (end - start) * fraction, stage)

        return Progress(callback=forward, cancel_event=self.cancel_event)

    def cancel(self) -> None:
        """Ask the work to stop at its next :meth:`update`."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def eta_s(self) -> float | None:
        """Seconds left, extrapolated from elapsed time and fraction done (``None`` before any progress)."""
        if self.fraction <= 0.0:
            return None
        elapsed = time.monotonic() - self.started_at
        return elapsed * (1.0 - self.fraction) / self.fraction
