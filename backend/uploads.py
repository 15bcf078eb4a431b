"""Uploaded audio: streamed to a temporary file under a size limit, probed, and handed to one job.

The request body is written chunk by chunk as it arrives, so an upload never sits whole in memory; the byte limit
is enforced while streaming (and up front from ``Content-Length`` by :class:`backend.app.BodyLimitMiddleware`).
An upload not used by a job within ``settings.result_ttl_s`` is deleted.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from backend.api_errors import ApiError
from backend.settings import AUDIO_CONTENT_TYPES, Settings

log = logging.getLogger(__name__)

_SUFFIXES = {"wav": ".wav", "wave": ".wav", "flac": ".flac", "ogg": ".ogg", "vorbis": ".ogg", "mpeg": ".mp3",
             "mp3": ".mp3", "aiff": ".aiff"}  # fmt: skip


@dataclass
class Upload:
    id: str
    path: Path
    content_type: str
    bytes: int
    duration_s: float | None
    created_at: float


def audio_content_type(header: str | None) -> str:
    """The media type of a ``Content-Type`` header, lower-case without parameters.

    Raises:
        ApiError 415: when it is missing or not an accepted audio type.
    """
    media = (header or "").split(";", 1)[0].strip().lower()
    if media not in AUDIO_CONTENT_TYPES:
        raise ApiError(
            415, "unsupported_media_type", f"Content-Type {media or '(none)'!r} is not an accepted audio type",
            f"send the file's bytes with one of: {', '.join(AUDIO_CONTENT_TYPES)}",
        )  # fmt: skip
    return media


def probe_duration(path: Path) -> float | None:
    """Audio duration in seconds from the file header (soundfile), or ``None`` when soundfile cannot read it."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except Exception:  # soundfile raises its own error types (LibsndfileError, RuntimeError)
        return None
    return float(info.frames) / float(info.samplerate) if info.samplerate else None


class UploadStore:
    """Uploads waiting for a job. Thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = Path(settings.work_dir) / "uploads"
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    async def save(self, chunks: AsyncIterator[bytes], content_type: str) -> Upload:
        """Stream ``chunks`` into a new temporary file; abort with 413 past ``settings.max_upload_bytes``.

        Raises:
            ApiError 413 ``payload_too_large``: too many bytes (the partial file is deleted).
            ApiError 400 ``empty_upload``: no bytes at all.
        """
        self.sweep()
        self.folder.mkdir(parents=True, exist_ok=True)
        suffix = _SUFFIXES.get(content_type.split("/", 1)[1].removeprefix("x-"), ".audio")
        upload_id = uuid.uuid4().hex
        fd, name = tempfile.mkstemp(prefix=f"{upload_id}.", suffix=suffix, dir=self.folder)
        path, size, limit = Path(name), 0, self.settings.max_upload_bytes
        try:
            with os.fdopen(fd, "wb") as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(413, "payload_too_large", f"upload exceeds {limit} bytes",
                                       "raise --max-upload-mb or use a server path under an allowed root")  # fmt: skip
                    handle.write(chunk)
            if size == 0:
                raise ApiError(400, "empty_upload", "the request body holds no audio bytes")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        upload = Upload(upload_id, path, content_type, size, None, time.time())
        with self._lock:
            self._uploads[upload_id] = upload
        return upload

    def add_file(self, suffix: str, write: Callable[[Path], None], content_type: str = "audio/wav") -> Upload:
        """A server-made upload (e.g. a microphone recording): ``write(path)`` fills a new temporary file, which is
        then registered like a received upload (deleted if ``write`` raises)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        upload_id = uuid.uuid4().hex
        fd, name = tempfile.mkstemp(prefix=f"{upload_id}.", suffix=suffix, dir=self.folder)
        os.close(fd)
        path = Path(name)
        try:
            write(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        upload = Upload(upload_id, path, content_type, path.stat().st_size, probe_duration(path), time.time())
        with self._lock:
            self._uploads[upload_id] = upload
        return upload

    def take(self, upload_id: str) -> Upload:
        """Hand the upload to a job (removed from the store; the job deletes the file when it ends).

        Raises:
            ApiError 404 ``upload_not_found``: unknown, expired or already used.
        """
        with self._lock:
            upload = self._uploads.pop(upload_id, None)
        if upload is None:
            raise ApiError(404, "upload_not_found", f"no upload {upload_id!r}",
                           "uploads are used once and expire; upload the audio again")  # fmt: skip
        return upload

    def discard(self, upload: Upload) -> None:
        with self._lock:
            self._uploads.pop(upload.id, None)
        upload.path.unlink(missing_ok=True)

    def sweep(self, now: float | None = None) -> int:
        """Delete uploads older than ``settings.result_ttl_s``; returns how many."""
        now = time.time() if now is None else now
        with self._lock:
            old = [u for u in self._uploads.values() if now - u.created_at > self.settings.result_ttl_s]
            for upload in old:
                del self._uploads[upload.id]
        for upload in old:
            upload.path.unlink(missing_ok=True)
        return len(old)

    def clear(self) -> None:
        """Delete every waiting upload (server shutdown)."""
        self.sweep(now=float("inf"))
