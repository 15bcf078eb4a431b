"""Server paths in requests: only files under the configured allowed roots, never a way out of them."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from backend.api_errors import ApiError
from backend.settings import Settings

_ROOTS_HINT = "start the server with --root DIR (BATON_ALLOWED_ROOTS) for folders jobs may read, or upload the file"


def resolve_allowed_path(raw: str, settings: Settings, field: str = "path") -> Path:
    """The real path of ``raw`` if it names an existing file under one of ``settings.allowed_roots``.

    Relative paths are taken relative to each root in turn. Symbolic links are resolved before the check, so a link
    inside a root that points outside is refused too.

    Raises:
        ApiError 400 ``path_not_allowed``: no roots configured, a ``..`` component, a NUL byte, or a path (after
            resolving links) outside every root.
        ApiError 404 ``file_not_found``: inside a root but not an existing file.
    """
    if not settings.allowed_roots:
        raise ApiError(400, "path_not_allowed", f"{field}: this server reads no server paths", _ROOTS_HINT)
    if not raw or "\x00" in raw:
        raise ApiError(400, "path_not_allowed", f"{field}: empty path or NUL byte")
    pure = PurePath(raw)
    if ".." in pure.parts or ".." in Path(raw.replace("\\", "/")).parts:
        raise ApiError(400, "path_not_allowed", f"{field}: '..' is not allowed in server paths", _ROOTS_HINT)
    candidates = [Path(raw)] if pure.is_absolute() else [root / raw for root in settings.allowed_roots]
    inside, escapes = [], False
    for candidate in candidates:
        try:
            real = candidate.resolve(strict=False)
        except (OSError, RuntimeError, ValueError):  # symlink loops, over-long names
            continue
        if any(real.is_relative_to(root) for root in settings.allowed_roots):
            inside.append(real)
        elif os.path.lexists(candidate):
            escapes = True  # a link inside a root pointing out of it
    if escapes or not inside:
        raise ApiError(400, "path_not_allowed", f"{field}: {raw!r} is outside the server's allowed roots", _ROOTS_HINT)
    for real in inside:
        try:
            if real.is_file():
                return real
        except OSError:
            continue
    raise ApiError(404, "file_not_found", f"{field}: no file {raw!r} under the allowed roots")
