"""The backend's bearer token: where it lives, creating it on first start, and checking requests.

The token file is ``token`` in Baton's config folder (:func:`models.paths.user_config_dir`: ``$XDG_CONFIG_HOME/baton``
when ``XDG_CONFIG_HOME`` is set, else ``~/.config/baton`` on Linux, ``~/Library/Application Support/baton`` on macOS,
``%APPDATA%\\baton`` on Windows). The add-on's client (``blender_addon/client.py``) finds it by the same rule.
"""

from __future__ import annotations

import hmac
import os
import secrets
import tempfile
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from backend.settings import Settings
from models.paths import user_config_dir

#: Paths served without a token.
PUBLIC_PATHS = frozenset({"/health"})


def token_path(settings: Settings | None = None) -> Path:
    """``<config dir>/baton/token`` (``settings.config_dir`` replaces ``<config dir>/baton`` when set)."""
    if settings is not None and settings.config_dir is not None:
        return Path(settings.config_dir) / "token"
    return user_config_dir() / "token"


def load_or_create_token(settings: Settings) -> str:
    """The token the server accepts: ``settings.token`` if given, else the token file, created on first start.

    A new token is 32 random bytes (URL-safe base64), written atomically with mode 0600 in a 0700 folder.

    Raises:
        ValueError: when an existing token file is empty or too short (delete it to get a new one).
    """
    if settings.token:
        return settings.token
    path = token_path(settings)
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < 16:
            raise ValueError(f"token file {path} holds no usable token (< 16 characters); delete it to make a new one")
        return token
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    fd, tmp = tempfile.mkstemp(prefix=".token.", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
        try:
            os.link(tmp, path)  # never replace a token another server wrote meanwhile
        except FileExistsError:
            return load_or_create_token(settings)
        except OSError:
            os.replace(tmp, path)  # file systems without hard links
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return token


class BearerAuthMiddleware:
    """ASGI middleware: every HTTP request except :data:`PUBLIC_PATHS` needs ``Authorization: Bearer <token>``.

    It runs before routing, so unknown paths answer 401 (not 404) to callers without the token. The comparison is
    constant-time (``hmac.compare_digest``).
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
                break
        if not hmac.compare_digest(given, self.expected):
            from backend.api_errors import error_response

            detail = "missing Authorization header" if not given else "wrong bearer token"
            hint = "send 'Authorization: Bearer <token>'; the token is in <user config dir>/baton/token on the server"
            response = error_response(401, "unauthorized", detail, hint)
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
