"""Security of the live server: token, path traversal, upload limits, bind address, one error shape."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.server_process import REPO, server_env, start_server
from backend.settings import Settings
from blender_addon.client import BatonClient, BatonClientError

LIMIT_MB = 0.25  # the server's upload limit in these tests (MiB)


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, Path]:
    """Two allowed roots: the shared audio folder, and a temp folder holding a link that points out of it."""
    sandbox = tmp_path_factory.mktemp("root")
    (sandbox / "escape.ogg").symlink_to(REPO / "pyproject.toml")
    (sandbox / "inner").mkdir()
    return {"audio": shared_data / "librosa_example_audio", "sandbox": sandbox}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, roots: dict[str, Path]):
    live = start_server(tmp_path_factory.mktemp("server"), "--root", str(roots["audio"]), "--root",
                        str(roots["sandbox"]), "--max-upload-mb", str(LIMIT_MB))  # fmt: skip
    yield live
    live.stop()


def _raw(server, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def _assert_error_body(body: dict, code: str | None = None) -> None:
    assert set(body) == {"error", "detail", "hint"} and isinstance(body["detail"], str) and body["detail"]
    if code is not None:
        assert body["error"] == code, body


def test_token_file_is_private_and_stable(server):
    path = server.config_dir / "token"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600 and len(server.token) >= 32
    assert BatonClient(server.url, token_file=path).token == server.token


@pytest.mark.parametrize("route", [("GET", "/capabilities"), ("GET", "/jobs"), ("GET", "/openapi.json"),
                                   ("POST", "/jobs/echo"), ("GET", "/no/such/route")])  # fmt: skip
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token-wrong-token-wrong", "Basic abc", "Bearer "])
def test_missing_or_wrong_token_is_401(server, route, auth):
    headers = {"Content-Type": "application/json"} | ({"Authorization": auth} if auth else {})
    status, body = _raw(server, route[0], route[1], headers, b"{}" if route[0] == "POST" else None)
    assert status == 401
    _assert_error_body(body, "unauthorized")


def test_health_is_public_and_the_right_token_works(server):
    assert BatonClient(server.url, token="").health() == {"status": "ok", "version": "0.1.0"}
    caps = BatonClient(server.url, token=server.token).capabilities()
    assert {"models", "rigs", "devices", "onnx_providers", "version"} <= set(caps)
    with pytest.raises(BatonClientError) as info:
        BatonClient(server.url, token="x" * 40).capabilities()
    assert info.value.status == 401


@pytest.mark.parametrize(
    "field,value",
    [
        ("audio_path", "../../../../etc/passwd"),
        ("audio_path", "/etc/passwd"),
        ("audio_path", "{audio}/../../../etc/passwd"),
        ("audio_path", "inner/../../escape"),
        ("audio_path", "escape.ogg"),  # a symlink inside a root pointing outside it
        ("audio_path", "{sandbox}/escape.ogg"),
        ("audio_path", "..\\..\\etc\\passwd"),
        ("source_path", "../../etc/passwd"),
        ("source_path", "/etc/hostname"),
        ("motion_path", "/proc/self/environ"),
        ("motion_path", "../" * 12 + "etc/shadow"),
    ],
)
def test_path_traversal_in_any_path_field_is_400(server, roots, field, value):
    value = value.format(audio=roots["audio"], sandbox=roots["sandbox"])
    body = {
        "audio_path": {"audio_path": value},
        "source_path": {"source_path": value, "target": "smpl24"},
        "motion_path": {"motion_path": value},
    }[field]
    route = {"audio_path": "/jobs/conduct", "source_path": "/jobs/retarget", "motion_path": "/jobs/search"}[field]
    status, answer = _raw(server, "POST", route, {"Authorization": f"Bearer {server.token}",
                                                  "Content-Type": "application/json"}, json.dumps(body).encode())
    assert status == 400, answer
    _assert_error_body(answer, "path_not_allowed")


def test_missing_file_inside_a_root_is_404(server, roots):
    status, body = _raw(server, "POST", "/jobs/conduct", {"Authorization": f"Bearer {server.token}",
                        "Content-Type": "application/json"}, json.dumps({"audio_path": "no_such.ogg"}).encode())
    assert status == 404
    _assert_error_body(body, "file_not_found")


def _read_response(sock: socket.socket) -> tuple[str, dict]:
    """Status line and JSON body of one HTTP response read from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"\r\n\r\n"
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
    while len(body) < length:
        more = sock.recv(65536)
        if not more:
            break
        body += more
    return lines[0].decode(), json.loads(body[:length])


def _upload_dir(server) -> Path:
    return server.work_dir / "uploads"


def test_oversized_upload_refused_from_content_length_without_reading_the_body(server):
    """The server answers 413 while the client has sent only headers: it never waited for the 50 MiB body."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        head = (f"POST /uploads/audio HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
                f"Content-Type: audio/ogg\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode())
        status, body = _read_response(sock)
    finally:
        sock.close()
    assert status.startswith("HTTP/1.1 413"), status
    _assert_error_body(body, "payload_too_large")


def test_oversized_chunked_upload_is_cut_off_while_streaming(server):
    """Chunked body without a length: the server stops at the limit and answers 413 before the body ends."""
    limit = int(LIMIT_MB * 1024 * 1024)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall((f"POST /uploads/audio HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
                      "Content-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n").encode())  # fmt: skip
        chunk = b"\0" * 65536
        sent = 0
        while sent <= limit + len(chunk):  # past the limit, but the terminating chunk is never sent
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
        status, body = _read_response(sock)
    finally:
        sock.close()
    assert status.startswith("HTTP/1.1 413"), status
    _assert_error_body(body, "payload_too_large")
    time.sleep(0.2)
    assert not any(_upload_dir(server).glob("*")), "the partial upload must be deleted"


def test_upload_content_type_and_json_body_limits(server, shared_data):
    client = BatonClient(server.url, token=server.token)
    with pytest.raises(BatonClientError) as info:
        client.upload_audio(REPO / "pyproject.toml", content_type="text/plain")
    assert info.value.status == 415 and info.value.error == "unsupported_media_type"
    with pytest.raises(BatonClientError) as info:  # 584 KiB > 0.25 MiB
        client.upload_audio(next((shared_data / "librosa_example_audio").glob("Hungarian*.hq.ogg")))
    assert info.value.status == 413
    small = client.upload_audio(next((shared_data / "librosa_example_audio").glob("Hungarian*[!q].ogg")))
    assert small["bytes"] > 0 and 45 < small["duration_s"] < 47


def test_validation_404_and_405_use_the_error_body(server):
    auth = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    for method, path, body, status, code in [
        ("POST", "/jobs/echo", b'{"message": 5}', 422, "invalid_request"),
        ("POST", "/jobs/echo", b"{not json", 422, "invalid_request"),
        ("POST", "/jobs/conduct", b'{"audio_path": "a.ogg", "upload_id": "' + b"0" * 32 + b'"}', 422, None),
        ("GET", "/jobs/does-not-exist", None, 404, "job_not_found"),
        ("GET", "/nowhere", None, 404, "not_found"),
        ("DELETE", "/capabilities", None, 405, "method_not_allowed"),
        ("POST", "/models/release", b'{"names": ["no-such-model"]}', 404, "model_not_found"),
    ]:
        got, answer = _raw(server, method, path, auth, body)
        assert got == status, (path, answer)
        _assert_error_body(answer, code)


def test_non_loopback_bind_needs_allow_remote(tmp_path: Path):
    with pytest.raises(ValidationError, match="allow-remote"):
        Settings(host="0.0.0.0", token="t" * 32)
    with pytest.raises(ValidationError, match="allow-remote"):
        Settings(host="192.168.1.20", token="t" * 32)
    assert Settings(host="0.0.0.0", allow_remote=True, token="t" * 32).host == "0.0.0.0"
    assert Settings(host="::1", token="t" * 32).host == "::1"
    env = server_env(tmp_path / "config", tmp_path / "work")
    done = subprocess.run([sys.executable, "-m", "backend.commands.serve", "--host", "0.0.0.0", "--port", "1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "--allow-remote" in done.stderr
    assert not (tmp_path / "config" / "baton" / "token").exists()  # refused before anything was written
    env["BATON_HOST"] = "10.0.0.1"
    done = subprocess.run([sys.executable, "-m", "backend.commands.serve", "--port", "1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "non-loopback" in done.stderr


def test_settings_precedence_flags_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "baton.toml"
    config.write_text('port = 9001\nworkers = 3\nresult_ttl_s = 10.0\n')
    monkeypatch.setenv("BATON_CONFIG_FILE", str(config))
    monkeypatch.setenv("BATON_WORKERS", "5")
    settings = Settings(result_ttl_s=20.0)
    assert (settings.port, settings.workers, settings.result_ttl_s) == (9001, 5, 20.0)
    config.write_text("prot = 1\n")
    with pytest.raises(ValueError, match="unknown settings"):
        Settings()
    monkeypatch.delenv("BATON_CONFIG_FILE")
    monkeypatch.setenv("BATON_ALLOWED_ROOTS", json.dumps([str(tmp_path)]))
    assert Settings().allowed_roots == [tmp_path.resolve()]
    monkeypatch.setenv("BATON_ALLOWED_ROOTS", json.dumps([str(tmp_path / "missing")]))
    with pytest.raises(ValidationError, match="not an existing folder"):
        Settings()


def test_token_created_once_under_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from backend.auth import load_or_create_token, token_path
    from blender_addon.client import default_token_path

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    settings = Settings()
    assert token_path(settings) == default_token_path() == tmp_path / "baton" / "token"
    first = load_or_create_token(settings)
    assert load_or_create_token(settings) == first and default_token_path().read_text().strip() == first
    assert os.stat(tmp_path / "baton").st_mode & 0o077 == 0


def test_unexpected_failures_answer_500_with_the_error_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A bug inside a request handler never leaks a traceback: 500 with the structured body."""
    from fastapi.testclient import TestClient

    import backend.app

    def broken(request, settings):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(backend.app, "prepare_retarget", broken)
    app = backend.app.create_app(Settings(token="s" * 32, work_dir=tmp_path))
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = http.post("/jobs/retarget", json={"source_clip_id": 1, "target": "smpl24"},
                           headers={"Authorization": "Bearer " + "s" * 32})  # fmt: skip
    assert answer.status_code == 500
    _assert_error_body(answer.json(), "internal_error")
    assert "Traceback" not in answer.text and "solver exploded" in answer.json()["detail"]
