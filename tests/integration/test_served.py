# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""The example app served for real by uvicorn on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..servers import free_port, serving

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 15.0


@pytest.fixture
def served(secret: str, tmp_path: Path) -> Iterator[str]:
    """The base URL of examples.cookie_app running under uvicorn; stopped afterwards."""
    port = free_port()
    log = tmp_path / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", "examples.cookie_app:app"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "SECRET_KEY_BASE": secret}
    with serving(command, port, "/api/session", log, env, seconds=STARTUP_SECONDS) as base_url:
        yield base_url


def test_login_and_logout_against_uvicorn(served: str) -> None:
    """Log in, read the session back over several requests, and log out, over real HTTP."""
    with httpx.Client(base_url=served, follow_redirects=True, timeout=5.0) as client:
        page = client.get("/")
        assert "Not logged in." in page.text
        assert "Visits in this session: 1" in page.text
        set_cookie = page.headers["set-cookie"]
        assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= {p.strip() for p in set_cookie.split(";")}
        assert "Secure" not in set_cookie

        response = client.post("/login", data={"username": "alice"})
        assert 303 == response.history[0].status_code
        assert "Logged in as <b>alice</b>." in response.text
        assert {"visits": 2, "user": "alice"} == client.get("/api/session").json()
        assert {"visits": 2, "user": "alice"} == client.get("/api/session").json()
        assert "Visits in this session: 3" in client.get("/").text

        response = client.post("/logout")
        assert "Not logged in." in response.text
        assert {"visits": 1} == client.get("/api/session").json()


def test_missing_secret_is_a_clear_error() -> None:
    """Importing the example without SECRET_KEY_BASE exits with a message saying what to do."""
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY_BASE"}
    result = subprocess.run(
        [sys.executable, "-c", "import examples.cookie_app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert 1 == result.returncode
    assert "SECRET_KEY_BASE is not set" in result.stderr
    assert "python -m asgisession secret" in result.stderr
    assert "Traceback" not in result.stderr
