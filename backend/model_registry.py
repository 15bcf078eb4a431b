"""Lazily loaded models, one instance each, and one inference lock per device.

A :class:`ModelSpec` says how to load a model and how to tell whether its weights are present; the registry loads
it on first use (under a per-model lock, so two jobs never load the same model twice), hands the same instance to
every later caller, and releases instances on request (``POST /models/release``) to free memory. Jobs that run a
model hold :meth:`ModelRegistry.device_lock` for the device it lives on, so one device runs one inference at a time
while other jobs (audio analysis, retargeting) proceed in parallel.

Device and runtime: the registry resolves ``settings.device`` once, when it is created (:func:`resolve_device`:
``auto`` becomes ``cuda`` or ``cpu``; a GPU torch cannot see is an error, so ``baton serve --device cuda`` on a
machine without CUDA fails at start), checks ``settings.runtime`` against what is installed
(:func:`check_runtime`), and hands both to every loader. What ``GET /capabilities`` reports comes from the loaded
instances themselves (:func:`instance_runtime`: the torch device of their parameters, the providers of their
onnxruntime sessions), not from the settings.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.errors import BatonError
from backend.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """How to load one model.

    Attributes:
        name: registry name, e.g. ``conductor:diffusion`` or ``library``.
        kind: what it is for (``conductor``, ``retrieval``, ``library``).
        loader: ``loader(settings, device) -> instance``; may be slow (weights, sessions). ``device`` is the resolved
            device (``cpu``, ``cuda``, ``cuda:N`` or ``mps``, never ``auto``); the runtime is ``settings.runtime``.
        available: ``available(settings) -> (bool, detail)``, cheap: are the weights present (for the configured
            runtime)?
        uses_device: whether inference runs on the configured device (then jobs hold its lock).
        runtime_of: ``runtime_of(instance) -> {"device", "runtime", "providers"}`` for an instance whose networks sit
            inside it (the library's retrieval model); default :func:`instance_runtime`.
    """

    name: str
    kind: str
    loader: Callable[[Settings, str], Any]
    available: Callable[[Settings], tuple[bool, str]] = field(default=lambda settings: (True, "no weights needed"))
    uses_device: bool = True
    runtime_of: Callable[[Any], dict] | None = None


class ModelRegistry:
    """Loaded models for one server. Thread-safe.

    Raises:
        backend.errors.BatonError: when ``settings.device`` names a device this machine does not have, or
            ``settings.runtime`` cannot run on it (see :func:`resolve_device`, :func:`check_runtime`).
    """

    def __init__(self, settings: Settings, specs: list[ModelSpec] | None = None) -> None:
        self.settings = settings
        self._specs: dict[str, ModelSpec] = {}
        self._instances: dict[str, Any] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._device_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._device = resolve_device(settings.device)
        check_runtime(settings.runtime, self._device)
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
        """The device models are loaded on: ``settings.device`` resolved by :func:`resolve_device`."""
        return self._device

    @property
    def runtime(self) -> str:
        """The inference runtime loaders are asked for (``settings.runtime``: ``torch`` or ``onnx``)."""
        return self.settings.runtime

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
        """``{name: {"kind", "available", "detail", "loaded", "device", "runtime", "providers"}}`` for
        ``GET /capabilities``. ``device`` / ``runtime`` / ``providers`` describe the loaded instance
        (:func:`instance_runtime`); they are ``None`` / ``[]`` for a model that is not loaded."""
        with self._lock:
            instances = dict(self._instances)
        out = {}
        for name, spec in sorted(self._specs.items()):
            try:
                available, detail = spec.available(self.settings)
            except Exception as exc:  # a broken availability check is reported, not raised
                available, detail = False, f"{type(exc).__name__}: {exc}"
            running = self._runtime_of(name, instances[name]) if name in instances else {}
            out[name] = {"kind": spec.kind, "available": bool(available), "detail": str(detail),
                         "loaded": name in instances, "device": running.get("device"),
                         "runtime": running.get("runtime"), "providers": running.get("providers", [])}  # fmt: skip
        return out

    def onnx_providers(self) -> dict[str, list[str]]:
        """ONNX Runtime execution providers: ``available`` (what the installed onnxruntime offers; empty without
        onnxruntime) and ``in_use`` (what the sessions of the loaded models really run on, ``session.get_providers()``
        in order of first use; empty while no ONNX model is loaded)."""
        with self._lock:
            instances = [(name, self._instances[name]) for name in sorted(self._instances)]
        in_use: list[str] = []
        for name, instance in instances:
            in_use += [p for p in self._runtime_of(name, instance)["providers"] if p not in in_use]
        return {"available": available_onnx_providers(), "in_use": in_use}

    def _runtime_of(self, name: str, instance: Any) -> dict:
        spec = self._specs[name]
        found = spec.runtime_of(instance) if spec.runtime_of is not None else instance_runtime(instance)
        return {"device": found.get("device"), "runtime": found.get("runtime"),
                "providers": list(found.get("providers") or [])}  # fmt: skip


def cuda_device_count() -> int:
    """Number of CUDA devices torch sees (0 when torch is CPU-only)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def devices() -> list[str]:
    """Devices this machine offers to torch: ``cpu`` plus ``cuda:N`` for each GPU."""
    return ["cpu"] + [f"cuda:{i}" for i in range(cuda_device_count())]


def resolve_device(requested: str) -> str:
    """The device a setting names, checked against what torch sees on this machine.

    Args:
        requested: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (as :class:`backend.settings.Settings`
            validates it).

    Returns:
        ``cpu`` (without importing torch), ``cuda`` / ``cuda:N`` / ``mps`` when present; ``auto`` gives ``cuda``
        when torch sees a GPU, else ``cpu``.

    Raises:
        BatonError: a CUDA device torch cannot see (no GPU, a CPU-only torch build, or an index past the last
            GPU) or ``mps`` where torch has no MPS backend; the message says what torch sees.
    """
    device = requested.strip().lower()
    if device == "cpu":
        return "cpu"
    count = cuda_device_count()
    if device == "auto":
        return "cuda" if count > 0 else "cpu"
    if device == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise BatonError("device 'mps' requested but torch has no MPS backend on this machine; "
                             "use --device cpu")  # fmt: skip
        return "mps"
    head, _, index = device.partition(":")
    if head != "cuda":
        raise BatonError(f"unknown device {requested!r}; use cpu, cuda, cuda:N, mps or auto")
    if count == 0:
        import torch

        build = f"torch {torch.__version__} " + ("is a CPU-only build" if torch.version.cuda is None
                                                  else f"(CUDA {torch.version.cuda}) sees no GPU")  # fmt: skip
        raise BatonError(f"device {requested!r} requested but CUDA is not available here: {build}; "
                         "use --device cpu (or auto)")  # fmt: skip
    if index and int(index) >= count:
        raise BatonError(f"device {requested!r} requested but torch sees {count} GPU(s): "
                         f"{', '.join(f'cuda:{i}' for i in range(count))}")  # fmt: skip
    return device


def available_onnx_providers() -> list[str]:
    """The execution providers the installed onnxruntime offers (``[]`` without onnxruntime). onnxruntime-gpu
    lists CUDA even on machines without a GPU: only a session's ``get_providers()`` says what really runs."""
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def check_runtime(runtime: str, device: str) -> None:
    """Refuse a runtime that cannot run on ``device`` here (called when a server starts).

    ``torch`` runs everywhere torch does. ``onnx`` needs onnxruntime, and on a CUDA device its
    ``CUDAExecutionProvider`` (the onnxruntime-gpu build); sessions check ``get_providers()`` again when they are
    created, since a listed provider may still fail to start.

    Raises:
        BatonError: onnxruntime missing, a CUDA device without the CUDA provider, or ``mps`` with ``onnx``.
    """
    if runtime == "torch":
        return
    if runtime != "onnx":
        raise BatonError(f"unknown runtime {runtime!r}; use torch or onnx")
    available = available_onnx_providers()
    if not available:
        raise BatonError("--runtime onnx needs onnxruntime, which is not installed in this environment")
    if device.startswith("cuda") and "CUDAExecutionProvider" not in available:
        raise BatonError(f"--runtime onnx on {device} needs onnxruntime's CUDAExecutionProvider (the "
                         f"onnxruntime-gpu package); this onnxruntime offers {', '.join(available)}")  # fmt: skip
    if device == "mps":
        raise BatonError("--runtime onnx does not run on mps in this build; use --runtime torch or --device cpu")


def instance_runtime(instance: Any) -> dict:
    """What a loaded model really runs on: ``{"device", "runtime", "providers"}``.

    An instance with a ``runtime_info()`` method answers for itself (the conductor generators, the library's
    embedder); otherwise its ``device`` / ``runtime`` / ``providers`` attributes are read, and a torch module's
    device is the device of its first parameter. Missing values are ``None`` (``[]`` for providers).
    """
    info = getattr(instance, "runtime_info", None)
    if callable(info):
        found = dict(info())
    else:
        found = {key: getattr(instance, key, None) for key in ("device", "runtime", "providers")}
        if found["device"] is None and callable(getattr(instance, "parameters", None)):
            first = next(iter(instance.parameters()), None)
            found["device"] = None if first is None else first.device
    device = found.get("device")
    return {"device": None if device is None else str(device), "runtime": found.get("runtime"),
            "providers": list(found.get("providers") or [])}  # fmt: skip
