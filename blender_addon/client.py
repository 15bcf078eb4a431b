"""HTTP client of the Baton backend, standard library only (urllib): used by the add-on and by tests.

Usage::

    client = BatonClient("http://127.0.0.1:8765")          # token read from <user config dir>/baton/token
    job_id = client.submit_conduct("music.ogg", model="procedural", seed=0)
    result = client.wait(job_id, on_progress=lambda status: print(status["progress"], status["stage"]))
    motion = blender_addon.wire.decode_motion(result["motion"])

Every failure raises :class:`BatonClientError` (``status``, ``error``, ``detail``, ``hint`` from the server's
structured error body); :class:`BackendUnavailable` when nothing answers at the URL.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8765"
#: Request limits of ``POST /jobs/generate`` (the backend's schema imports these): the longest text prompt
#: (characters) and the most variations per job.
MAX_PROMPT_CHARS = 1000
MAX_SAMPLES = 16
#: Default classifier-free guidance of text / voice generation (the generator's ``DEFAULT_GUIDANCE``).
TEXT_GUIDANCE = 3.0

#: The procedural conductor's controls in ``POST /jobs/conduct`` (the backend's schema and the add-on's sliders
#: use these): name -> (min, max, default). They are ``models.conductor.ProceduralStyle.CONTROLS``.
CONDUCTOR_CONTROLS: dict[str, tuple[float, float, float]] = {
    "energy": (0.0, 1.0, 0.5), "size": (0.25, 2.0, 1.0), "legato": (0.0, 1.0, 0.5)}

_AUDIO_TYPES = {".wav": "audio/wav", ".wave": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg",
                ".oga": "audio/ogg", ".mp3": "audio/mpeg", ".aif": "audio/aiff", ".aiff": "audio/aiff"}  # fmt: skip


class BatonClientError(Exception):
    """A failed request: HTTP ``status`` (0 when there was no answer) and the server's ``error``/``detail``/``hint``."""

    def __init__(self, status: int, error: str, detail: str, hint: str | None = None) -> None:
        super().__init__(f"{detail} ({error}, HTTP {status})" + (f"; {hint}" if hint else ""))
        self.status, self.error, self.detail, self.hint = status, error, detail, hint


class BackendUnavailable(BatonClientError):
    """Nothing answers at the backend URL (not started, wrong port, or it died)."""


class JobFailed(BatonClientError):
    """The job ended in state ``failed``; ``detail`` is the server's reason."""


class JobCancelled(BatonClientError):
    """The job was cancelled."""


def default_token_path() -> Path:
    """``<user config dir>/baton/token`` by the server's rule (``XDG_CONFIG_HOME`` first; see backend/auth.py)."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        base = Path(xdg)
    elif sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path.home() / ".config"
    return base / "baton" / "token"


def read_token(path: str | os.PathLike | None = None) -> str | None:
    """The token in ``path`` (default :func:`default_token_path`), or ``None`` when the file does not exist."""
    path = Path(path) if path is not None else default_token_path()
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


class BatonClient:
    """A backend at ``url``. ``token=None`` reads the token file (the server writes it on first start)."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 30.0,
                 token_file: str | os.PathLike | None = None) -> None:  # fmt: skip
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"backend URL must be http(s)://host:port, got {url!r}")
        self.url = url.rstrip("/")
        self.token = token if token is not None else read_token(token_file)
        self.timeout = float(timeout)
        self._limits_cache: dict | None = None

    # -- plumbing ------------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, payload: Any = None, *, data: Any = None,
                 headers: dict[str, str] | None = None, timeout: float | None = None) -> Any:  # fmt: skip
        all_headers = {"Accept": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise _error_from(exc) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendUnavailable(0, "backend_unavailable", f"no answer from {self.url}: {reason}",
                                     "start it with `baton serve` (or the add-on's Start button)") from None
        return json.loads(body) if body else None

    # -- server --------------------------------------------------------------------------------------------------
    def health(self) -> dict:
        """``{"status": "ok", "version"}`` (needs no token)."""
        return self._request("GET", "/health")

    def capabilities(self) -> dict:
        """Models (with ``available``), rigs, devices, ONNX providers, limits, version."""
        return self._request("GET", "/capabilities")

    def release_models(self, names: list[str] | None = None) -> dict:
        """Free loaded models (all when ``names`` is None); returns ``{"released", "loaded"}``."""
        return self._request("POST", "/models/release", {"names": names})

    # -- submitting ----------------------------------------------------------------------------------------------
    def upload_audio(self, path: str | os.PathLike, content_type: str | None = None) -> dict:
        """Stream a local audio file to the server; returns ``{"upload_id", "bytes", "duration_s", ...}``."""
        path = Path(path)
        content_type = content_type or _AUDIO_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise ValueError(f"{path}: unknown audio type {path.suffix!r}; expected one of {', '.join(_AUDIO_TYPES)}")
        size = path.stat().st_size
        limit = self._limits().get("max_upload_bytes")
        if limit is not None and size > limit:
            raise BatonClientError(413, "payload_too_large", f"{path.name} has {size} bytes; the server accepts at "
                                   f"most {limit}", "use a server path (audio_path) or raise --max-upload-mb")
        with path.open("rb") as handle:
            try:
                return self._request("POST", "/uploads/audio", data=handle, timeout=max(self.timeout, 300.0),
                                     headers={"Content-Type": content_type, "Content-Length": str(size)})
            except BackendUnavailable as exc:  # the server hung up mid-upload: it refused the size
                if "pipe" in exc.detail.lower() or "reset" in exc.detail.lower():
                    raise BatonClientError(413, "payload_too_large", f"the server closed the upload of {path.name}",
                                           "it is probably over the server's upload limit") from None
                raise

    def _limits(self) -> dict:
        """The server's limits from ``GET /capabilities`` (fetched once per client)."""
        if self._limits_cache is None:
            self._limits_cache = dict(self.capabilities().get("limits", {}))
        return self._limits_cache

    def submit_conduct(self, audio: str | os.PathLike | None = None, *, audio_path: str | None = None,
                       model: str = "procedural", seed: int = 0, steps: int = 20, guidance: float | None = None,
                       target: str | dict | None = None, root: str = "full", foot_lock: bool = True,
                       smoothing: float = 0.0, energy: float | None = None, size: float | None = None,
                       legato: float | None = None) -> str:  # fmt: skip
        """Start generating a conductor's performance; returns the job id.

        Args:
            audio: a local audio file, uploaded first; or ``audio_path``: a file on the server under its roots.
            model, seed, steps, guidance: the generator and its sampling settings.
            energy, size, legato: the procedural conductor's controls (:data:`CONDUCTOR_CONTROLS`; ``None`` = the
                server's default; sent only when given).
            target: also retarget onto a built-in skeleton name or a rig dict (``TargetRig.to_dict()``).
            root, foot_lock, smoothing: retargeting options.
        """
        if (audio is None) == (audio_path is None):
            raise ValueError("give exactly one of audio (a local file to upload) and audio_path (a server path)")
        body: dict[str, Any] = {"model": model, "seed": seed, "steps": steps, "guidance": guidance, "target": target,
                                "retarget": {"root": root, "foot_lock": foot_lock, "smoothing": smoothing}}  # fmt: skip
        body.update({k: v for k, v in {"energy": energy, "size": size, "legato": legato}.items() if v is not None})
        if audio is not None:
            body["upload_id"] = self.upload_audio(audio)["upload_id"]
        else:
            body["audio_path"] = str(audio_path)
        return self._request("POST", "/jobs/conduct", body)["id"]

    def submit_retarget(self, source: dict | None = None, *, source_path: str | None = None,
                        source_clip_id: str | None = None, target: str | dict, mapping: dict | None = None,
                        root: str = "full", foot_lock: bool = True, smoothing: float = 0.0) -> str:  # fmt: skip
        """Start retargeting a motion payload (``wire.encode_motion``), server file or library clip; returns the id."""
        body = {"source": source, "source_path": source_path, "source_clip_id": source_clip_id, "target": target,
                "options": {"mapping": mapping, "root": root, "foot_lock": foot_lock, "smoothing": smoothing}}
        return self._request("POST", "/jobs/retarget", body)["id"]

    def submit_search(self, text: str | None = None, *, motion: dict | None = None, motion_path: str | None = None,
                      clip_id: int | None = None, k: int = 10, filters: dict | None = None,
                      exact: bool = False) -> str:  # fmt: skip
        """Start a library search by text, a motion payload (``wire.encode_motion``), a server file or a library
        clip (more like it); ``filters``: skeleton, min/max_duration_s, license, commercial_only. Returns the id."""
        body = {"text": text, "motion": motion, "motion_path": motion_path, "clip_id": clip_id, "k": k,
                "filters": filters or {}, "exact": exact}  # fmt: skip
        return self._request("POST", "/jobs/search", body)["id"]

    def submit_generate(self, prompt: str | None = None, *, timeline: list[dict] | None = None,
                        seconds: float | None = None, seed: int = 0, samples: int = 1, guidance: float = TEXT_GUIDANCE,
                        target: str | dict = "smpl24") -> str:  # fmt: skip
        """Start generating motion from a text prompt (or a timeline of prompts), retargeted onto ``target`` (a
        built-in skeleton name, a server ``.bvh`` path or a rig dict, ``TargetRig.to_dict()``); returns the job id.

        Args:
            prompt: what the person does (at most :data:`MAX_PROMPT_CHARS` characters); or ``timeline``:
                ``[{"text", "start_s", "end_s"}, ...]``, sorted, not overlapping, the first starting at 0.
            seconds: duration; ``None`` lets the model estimate it (the server states its limits when refusing).
            seed, samples, guidance: sampling seed, number of variations (1..:data:`MAX_SAMPLES`), classifier-free
                guidance scale.
        """
        body = {"prompt": prompt, "timeline": timeline, "seconds": seconds, "seed": seed, "samples": samples,
                "guidance": guidance, "target": target}  # fmt: skip
        return self._request("POST", "/jobs/generate", body)["id"]

    def submit_generate_speech(self, audio: str | os.PathLike | None = None, *, audio_path: str | None = None,
                               upload_id: str | None = None, path: str = "end2end", seconds: float | None = None,
                               seed: int = 0, samples: int = 1, guidance: float = TEXT_GUIDANCE,
                               target: str | dict = "smpl24") -> str:  # fmt: skip
        """Start generating motion from a spoken instruction (docs/voice.md); returns the job id.

        Args:
            audio: a local recording (0.5-10 s), uploaded first; or ``audio_path``: a file on the server under its
                roots; or ``upload_id``: a recording already on the server (:meth:`submit_record_speech`). Bad audio
                (unreadable, rate, length, silence) is refused with the server's reason.
            path: ``end2end`` (speech condition) or ``cascaded`` (transcript -> text generator).
            seconds, seed, samples, guidance, target: as :meth:`submit_generate`.
        """
        if sum(x is not None for x in (audio, audio_path, upload_id)) != 1:
            raise ValueError("give exactly one of audio (a local file to upload), audio_path (a server path) and "
                             "upload_id (a recording on the server)")  # fmt: skip
        body: dict[str, Any] = {"path": path, "seconds": seconds, "seed": seed, "samples": samples,
                                "guidance": guidance, "target": target}  # fmt: skip
        if audio is not None:
            body["upload_id"] = self.upload_audio(audio)["upload_id"]
        elif audio_path is not None:
            body["audio_path"] = str(audio_path)
        else:
            body["upload_id"] = upload_id
        return self._request("POST", "/jobs/generate_speech", body)["id"]

    def submit_record_speech(self, seconds: float = 4.0) -> str:
        """Start recording ``seconds`` from the backend machine's default microphone; returns the job id (its result:
        ``{"upload_id", "duration_s", "level_dbfs"}``). No input device: :class:`BatonClientError` 409."""
        return self._request("POST", "/jobs/record_speech", {"seconds": seconds})["id"]

    def submit_search_video(self, video_path: str, *, k: int = 10, filters: dict | None = None, exact: bool = False,
                            max_seconds: float = 180.0) -> str:  # fmt: skip
        """Start a library search with a video of a person; ``video_path`` is a file the server reads (under one of
        its allowed roots). The first ``max_seconds`` are analysed. Returns the job id."""
        body = {"video_path": str(video_path), "k": k, "filters": filters or {}, "exact": exact,
                "max_seconds": max_seconds}  # fmt: skip
        return self._request("POST", "/jobs/search_video", body)["id"]

    def submit_thumbnails(self, clip_ids: list[int], *, render: bool = True) -> str:
        """Start a thumbnails job for library clips (at most 100 ids; the result has ``thumbnails``: ``[{"clip_id",
        "png_base64", "rendered"}]``). Unknown ids: :class:`BatonClientError` 404. Returns the job id."""
        body = {"clip_ids": [int(i) for i in clip_ids], "render": bool(render)}
        return self._request("POST", "/jobs/thumbnails", body)["id"]

    def submit_echo(self, message: str = "") -> str:
        """Start the empty job (answers ``message``); returns the job id."""
        return self._request("POST", "/jobs/echo", {"message": message})["id"]

    # -- following jobs ------------------------------------------------------------------------------------------
    def status(self, job_id: str, wait_s: float = 0.0) -> dict:
        """``{"id", "kind", "state", "progress", "stage", "eta_s", "error", ...}``. With ``wait_s > 0`` the server
        answers as soon as the job finishes, or after ``wait_s`` seconds (long poll, at most 30)."""
        query = f"?wait_s={wait_s:g}" if wait_s > 0 else ""
        return self._request("GET", f"/jobs/{urllib.parse.quote(job_id, safe='')}{query}",
                             timeout=self.timeout + wait_s)  # fmt: skip

    def jobs(self) -> list[dict]:
        return self._request("GET", "/jobs")

    def cancel(self, job_id: str) -> dict:
        """Ask the job to stop; returns its status."""
        return self._request("POST", f"/jobs/{urllib.parse.quote(job_id, safe='')}/cancel")

    def result(self, job_id: str) -> dict:
        """The result of a succeeded job (the ``result`` object). Raises :class:`BatonClientError` 409 otherwise."""
        return self._request("GET", f"/jobs/{urllib.parse.quote(job_id, safe='')}/result")["result"]

    def wait(self, job_id: str, on_progress: Callable[[dict], None] | None = None, timeout: float = 600.0,
             poll_interval: float = 0.2) -> dict:  # fmt: skip
        """Follow the job until it finishes and return its result. Each poll is a long poll of ``poll_interval`` s,
        so completion is seen at once while ``on_progress(status)`` still gets an update every ``poll_interval``.

        Raises:
            JobFailed / JobCancelled: when it ended that way. TimeoutError: still running after ``timeout`` s.
        """
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(job_id, wait_s=min(poll_interval, 30.0))
            if on_progress is not None:
                on_progress(status)
            state = status["state"]
            if state == "succeeded":
                return self.result(job_id)
            if state == "failed":
                error = status.get("error") or {}
                raise JobFailed(200, error.get("error", "job_failed"), error.get("detail", "the job failed"),
                                error.get("hint"))  # fmt: skip
            if state == "cancelled":
                raise JobCancelled(200, "job_cancelled", f"job {job_id} was cancelled")
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {state} after {timeout} s")


def _error_from(exc: urllib.error.HTTPError) -> BatonClientError:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    return BatonClientError(exc.code, str(body.get("error", f"http_{exc.code}")),
                            str(body.get("detail", exc.reason)), body.get("hint"))  # fmt: skip
