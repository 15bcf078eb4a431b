"""Lazily loaded models, one instance each, and one inference lock per device.

A :class:`ModelSpec` says how to load a model and how to tell whether its weights are present; the registry loads
it on first use (under a per-model lock, so two jobs never load the same model twice), hands the same instance to
every later caller, and releases instances on request (``POST /models/release``) to free memory. Jobs that run a
model hold :meth:`ModelRegistry.device_lock` for the device it lives on, so one device runs one inference at a time
while other jobs (audio analysis, retargeting) proceed in parallel.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """How to load one model.

    Attributes:
        name: registry name, e.g. ``conductor:diffusion`` or ``library``.
        kind: what it is for (``conductor``, ``retrieval``, ``library``).
        loader: ``loader(settings, device) -> instance``; may be slow (weights, sessions).
        available: ``available(settings) -> (bool, detail)``, cheap: are the weights present?
        uses_device: whether inference runs on the configured device (then jobs hold its lock).
    """

    name: str
    kind: str
    loader: Callable[[Settings, str], Any]
    available: Callable[[Settings], tuple[bool, str]] = field(default=lambda settings: (True, "no weights needed"))
    uses_device: bool = True


class ModelRegistry:
    """Loaded models for one server. Thread-safe."""

    def __init__(self, settings: Settings, specs: list[ModelSpec] | None = None) -> None:
        self.settings = settings
        self._specs: dict[str, ModelSpec] = {}
        self._instances: dict[str, Any] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._device_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._device: str | None = None
        for spec in specs or ():
            self.register(spec)

    def register(self, spec: ModelSpec) -> None:
        """Add a model (replacing one of the same name that is not loaded).

        Raises:
            ValueError: when a model of that name is loaded right now.
        """
        with self._lock:
            if spec.name in self._instances:
                raise ValueError(f"model {spec.name!r} is loaded; release it before registering another")
            self._specs[spec.name] = spec
            self._load_locks.setdefault(spec.name, threading.Lock())

    @property
    def names(self) -> list[str]:
        return sorted(self._specs)

    @property
    def device(self) -> str:
        """The configured device, ``auto`` resolved to ``cuda`` when torch sees a GPU, else ``cpu``."""
        if self._device is None:
            device = self.settings.device
            if device == "auto":
                device = "cuda" if cuda_device_count() > 0 else "cpu"
            self._device = device
        return self._device

    def uses_device(self, name: str) -> bool:
        """Whether model ``name`` runs on the device (then inference holds :meth:`device_lock`)."""
        spec = self._specs.get(name)
        return spec is not None and spec.uses_device

    def device_lock(self, device: str | None = None) -> threading.Lock:
        """The inference lock of ``device`` (default: the configured one); one per device, created on demand."""
        device = device or self.device
        with self._lock:
            return self._device_locks.setdefault(device, threading.Lock())

    def get(self, name: str) -> Any:
        """The instance of model ``name``, loading it on first use.

        Raises:
            KeyError: for an unknown name (message lists the known ones).
            Whatever the loader raises (e.g. ``NotAvailableError`` when weights are missing); nothing is cached then.
        """
        spec = self._specs.get(name)
        if spec is None:
            raise KeyError(f"unknown model {name!r}; known: {', '.join(self.names) or 'none'}")
        instance = self._instances.get(name)
        if instance is not None:
            return instance
        with self._load_locks[name]:
            instance = self._instances.get(name)
            if instance is None:
                log.info("loading model %s on %s (%s)", name, self.device, self.settings.runtime)
                instance = spec.loader(self.settings, self.device)
                with self._lock:
                    self._instances[name] = instance
            return instance

    def loaded(self) -> list[str]:
        """Names of the models loaded now."""
        with self._lock:
            return sorted(self._instances)

    def release(self, names: list[str] | None = None) -> list[str]:
        """Drop loaded instances (all when ``names`` is None) so their memory can be freed; returns what was released.

        An instance with a ``close()`` method is closed. A model in use by a running job stays alive until that job
        finishes (it holds its own reference); the next job loads a fresh instance.

        Raises:
            KeyError: when ``names`` lists a model that is not registered.
        """
        unknown = [n for n in names or () if n not in self._specs]
        if unknown:
            raise KeyError(f"unknown models {unknown}; known: {', '.join(self.names)}")
        with self._lock:
            chosen = list(self._instances) if names is None else [n for n in names if n in self._instances]
            dropped = [(n, self._instances.pop(n)) for n in chosen]
        for name, instance in dropped:
            close = getattr(instance, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # a failing close must not keep the others loaded
                    log.exception("closing model %s failed", name)
        del dropped
        gc.collect()
        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        return sorted(chosen)

    def describe(self) -> dict[str, dict]:
        """``{name: {"kind", "available", "detail", "loaded"}}`` for ``GET /capabilities``."""
        out = {}
        for name, spec in sorted(self._specs.items()):
            try:
                available, detail = spec.available(self.settings)
            except Exception as exc:  # a broken availability check is reported, not raised
                available, detail = False, f"{type(exc).__name__}: {exc}"
            out[name] = {"kind": spec.kind, "available": bool(available), "detail": str(detail),
                         "loaded": name in self._instances}  # fmt: skip
        return out


def cuda_device_count() -> int:
    """Number of CUDA devices torch sees (0 when torch is CPU-only)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def devices() -> list[str]:
    """Devices this machine offers to torch: ``cpu`` plus ``cuda:N`` for each GPU."""
    return ["cpu"] + [f"cuda:{i}" for i in range(cuda_device_count())]


def onnx_providers(settings: Settings) -> dict[str, list[str]]:
    """ONNX Runtime execution providers: ``available`` (installed) and ``in_use`` (what sessions will ask for, in
    order; CUDA only when the configured device is a GPU). Empty lists when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return {"available": [], "in_use": []}
    available = list(onnxruntime.get_available_providers())
    wanted = ["CPUExecutionProvider"]
    if settings.device.startswith(("cuda", "auto")) and "CUDAExecutionProvider" in available:
        wanted.insert(0, "CUDAExecutionProvider")
    return {"available": available, "in_use": [p for p in wanted if p in available]}
