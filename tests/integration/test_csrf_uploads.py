"""CSRF with real uploads, served by uvicorn in a subprocess: a 100 MB file reaches the app
byte for byte with the server's peak RSS growing at most 16 MB, whether the token field comes
before the file or after it; a refusal is logged where uvicorn's default logging shows it.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..servers import LOOPBACK, ServerProcess, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BOUNDARY = "----asgisessionUploadBoundary7MA4YWxkTrZu0gW"
MB = 1024 * 1024
FILE_SIZE = 100 * MB
BLOCK = 256 * 1024
#: The allowed growth of the server's peak RSS over one 100 MB upload.
MAX_GROWTH = 16 * MB


@pytest.fixture(scope="module")
def served() -> Iterator[ServerProcess]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory",
            "tests.integration.csrf_upload_app:create_app",
            "--host", LOOPBACK, "--port", str(port)]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SECRET_KEY_BASE", secrets.token_hex(32))
        server = ServerProcess(argv, port, cwd=ROOT).start()
    try:
        yield server
    finally:
        server.stop()


def memory(server: ServerProcess, key: str) -> int:
    """``VmHWM`` (peak) or ``VmRSS`` of the server process, in bytes."""
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(key + ":"))
    return int(line.split()[1]) * 1024


def part(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def send_upload(
    http: httpx.Client, token: str, size: int, *, token_first: bool
) -> tuple[httpx.Response, int, str]:
    """POST a form with ``size`` random file bytes; the body's length and SHA-256 as sent."""
    file_head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="upload"; '
        'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    close = f"--{BOUNDARY}--\r\n".encode()
    if token_first:
        head, tail = part("authenticity_token", token) + file_head, b"\r\n" + close
    else:
        head, tail = file_head, b"\r\n" + part("authenticity_token", token) + close
    length = len(head) + size + len(tail)
    digest = hashlib.sha256()
    rng = random.Random(size)

    def blocks() -> Iterator[bytes]:
        yield head
        digest.update(head)
        for at in range(0, size, BLOCK):
            block = rng.randbytes(min(BLOCK, size - at))
            digest.update(block)
            yield block
        digest.update(tail)
        yield tail

    response = http.post(
        "/upload",
        content=blocks(),
        headers={
            "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            "content-length": str(length),
        },
    )
    return response, length, digest.hexdigest()


def session_client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=f"http://{LOOPBACK}:{server.port}", timeout=120)


def fetch_token(http: httpx.Client) -> str:
    token: str = http.get("/token").json()["token"]
    return token


@pytest.mark.parametrize("token_first", [True, False], ids=["token-first", "file-first"])
def test_a_100_mb_upload_reaches_the_app_whole_in_bounded_memory(
    served: ServerProcess, token_first: bool
) -> None:
    with session_client(served) as http:
        token = fetch_token(http)
        warm, _, _ = send_upload(http, token, 2 * MB, token_first=token_first)
        assert 200 == warm.status_code, warm.text
        before = memory(served, "VmHWM")
        response, length, digest = send_upload(http, token, FILE_SIZE, token_first=token_first)
        after = memory(served, "VmHWM")
    assert 200 == response.status_code, response.text
    assert {"length": length, "sha256": digest} == response.json()
    growth = after - before
    print(f"peak RSS growth, {FILE_SIZE // MB} MB upload, token_first={token_first}: {growth}")
    assert growth <= MAX_GROWTH


def test_a_refusal_is_logged_under_uvicorns_default_logging(served: ServerProcess) -> None:
    with session_client(served) as http:
        fetch_token(http)
        refused = http.post("/upload", data={"authenticity_token": "nope", "a": "1"})
        missing = http.post("/upload", files={"upload": ("a.txt", b"hello")})
    assert 403 == refused.status_code
    assert 403 == missing.status_code
    assert "Forbidden" in refused.text
    assert "bad_token" not in refused.text  # expose_reason is off
    assert served.log is not None
    served.log.seek(0)
    log = served.log.read().decode(errors="replace")
    assert "CSRF check failed: POST /upload refused (bad_token)" in log
    assert "CSRF check failed: POST /upload refused (missing_token)" in log
    assert "authenticity_token form field" in log
