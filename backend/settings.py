"""Settings of the local backend (pydantic-settings).

Sources, highest priority first: keyword arguments (what ``baton serve`` passes from its command-line flags), the
environment (``BATON_*``, e.g. ``BATON_PORT=9000``; lists as JSON, ``BATON_ALLOWED_ROOTS='["/data/music"]'``), an
optional settings file (TOML or JSON, named by ``config_file=`` / ``BATON_CONFIG_FILE``), then the defaults below.

Security defaults: the server binds ``127.0.0.1``; a non-loopback ``host`` is refused unless ``allow_remote`` is
set (see docs/backend.md, "Security model").
"""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

#: Content types accepted for uploaded audio (``Content-Type`` of ``POST /jobs/conduct/audio``).
AUDIO_CONTENT_TYPES = (
    "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/flac", "audio/x-flac", "audio/ogg",
    "audio/vorbis", "application/ogg", "audio/mpeg", "audio/mp3", "audio/aiff", "audio/x-aiff",
)  # fmt: skip


def is_loopback_host(host: str) -> bool:
    """True when ``host`` is ``localhost`` or a loopback IP literal (``127.0.0.0/8``, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: treated as remote


class _SettingsFileSource(PydanticBaseSettingsSource):
    """Values from a TOML or JSON settings file (``config_file`` keyword or ``BATON_CONFIG_FILE``)."""

    def __init__(self, settings_cls: type[BaseSettings], path: str | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path:
            return {}
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise ValueError(f"settings file not found: {path}")
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"settings file {path} is not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from None
        if "baton" in data and isinstance(data["baton"], dict):  # allow a [baton] table
            data = data["baton"]
        unknown = sorted(set(data) - set(self.settings_cls.model_fields))
        if unknown:
            raise ValueError(f"settings file {path}: unknown settings {unknown}")
        return data


class Settings(BaseSettings):
    """Everything the backend can be configured with. Field descriptions double as ``baton serve --help`` text."""

    model_config = SettingsConfigDict(env_prefix="BATON_", extra="forbid", validate_default=True)

    config_file: str | None = Field(None, description="TOML or JSON settings file (lower priority than env/flags)")
    host: str = Field("127.0.0.1", description="address to bind; non-loopback needs allow_remote")
    port: int = Field(8765, ge=0, le=65535, description="TCP port (0: any free port)")
    allow_remote: bool = Field(False, description="allow binding a non-loopback address (LAN GPU box)")
    token: str | None = Field(
        None, min_length=16, description="bearer token; default: read or create <config dir>/baton/token"
    )
    config_dir: Path | None = Field(None, description="where the token lives; default: user config dir/baton")
    work_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "baton-backend",
        description="temporary files (uploads); removed when their job ends",
    )
    allowed_roots: list[Path] = Field(
        default_factory=list, description="folders whose files jobs may read by server path (none by default)"
    )
    library_url: str | None = Field(None, description="motion library: sqlite:///path or postgresql://...")
    max_upload_mb: float = Field(200.0, gt=0, le=10_000, description="largest audio upload (MiB)")
    max_json_mb: float = Field(64.0, gt=0, le=10_000, description="largest JSON request body (MiB)")
    max_audio_duration_s: float = Field(1200.0, gt=0, description="longest audio accepted (s)")
    result_ttl_s: float = Field(3600.0, gt=0, description="how long finished jobs and results are kept (s)")
    max_jobs: int = Field(256, ge=1, description="most jobs kept at once (queued + running + finished)")
    workers: int = Field(2, ge=1, le=64, description="worker threads running jobs")
    device: str = Field("cpu", description="device models run on: cpu, cuda, cuda:N, mps or auto (checked against "
                        "this machine when the server starts: a GPU torch cannot see is an error)")
    gil_switch_interval_ms: float = Field(
        0.5, ge=0.05, le=100.0, description="Python thread switch interval set by `baton serve` (responsive event loop "
        "while worker threads run Python-heavy model code; CPython's default is 5 ms)",
    )  # fmt: skip
    torch_threads: int | None = Field(
        None, ge=1, le=256, description="torch intra-op threads per inference (default: torch's choice, one per core); "
        "1 suits many concurrent jobs on few cores",
    )  # fmt: skip
    runtime: Literal["torch", "onnx"] = Field(
        "torch", description="inference runtime of the generators: torch, or onnx (onnxruntime sessions of their "
        "exported graphs, CUDA execution provider on a cuda device; models without an ONNX path are unavailable)",
    )  # fmt: skip
    retrieval_model: str | None = Field(None, description="retrieval model run folder for library search")
    checkpoints: dict[str, str] = Field(
        default_factory=dict, description='weights per model, e.g. {"diffusion": "/models/conductor.pt"}'
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = getattr(init_settings, "init_kwargs", {}).get("config_file") or os.environ.get("BATON_CONFIG_FILE")
        return init_settings, env_settings, _SettingsFileSource(settings_cls, path)

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        value = value.strip().lower()
        head, _, index = value.partition(":")
        if head not in ("cpu", "cuda", "mps", "auto") or (index and not index.isdigit()):
            raise ValueError(f"device must be cpu, cuda, cuda:N, mps or auto, got {value!r}")
        return value

    @field_validator("allowed_roots")
    @classmethod
    def _check_roots(cls, roots: list[Path]) -> list[Path]:
        resolved = []
        for root in roots:
            path = Path(root).expanduser()
            if not path.is_dir():
                raise ValueError(f"allowed root {str(root)!r} is not an existing folder")
            resolved.append(path.resolve())
        return resolved

    @model_validator(mode="after")
    def _check_bind(self) -> Settings:
        if not is_loopback_host(self.host) and not self.allow_remote:
            raise ValueError(
                f"refusing to bind non-loopback address {self.host!r}: anyone on the network could reach the "
                "backend; pass --allow-remote (BATON_ALLOW_REMOTE=1) to do this on purpose"
            )
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_json_bytes(self) -> int:
        return int(self.max_json_mb * 1024 * 1024)


__all__ = ["AUDIO_CONTENT_TYPES", "Settings", "is_loopback_host"]
