# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""The core under Trio for real: hypercorn's trio worker serves tests/integration/trio_app.py.

Session, CSRF (the form body read and replayed to the app) and flash run inside Trio's event
loop, with the cookie store and with MemoryStore (whose calls go through bounded()'s timeout).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..servers import LOOPBACK, free_port, serving

pytestmark = pytest.mark.integration


@pytest.fixture(params=["cookie", "memory"])
def served(request: pytest.FixtureRequest, secret: str, tmp_path: Path) -> Iterator[str]:
    """The base URL of trio_app under ``hypercorn --worker-class trio``; stopped afterwards."""
    port = free_port()
    log = tmp_path / "hypercorn.log"
    command = [sys.executable, "-m", "hypercorn", "--worker-class", "trio"]
    command += ["--bind", f"{LOOPBACK}:{port}", "tests.integration.trio_app:create_app()"]
    env = {**os.environ, "SECRET_KEY_BASE": secret, "TRIO_APP_STORE": request.param}
    with serving(command, port, "/me", log, env) as base_url:
        yield base_url
    assert "Traceback" not in log.read_text(), log.read_text()


def test_login_flash_and_csrf_under_trio(served: str) -> None:
    """Log in with a CSRF-protected form, read the session and flash back, all under Trio."""
    with httpx.Client(base_url=served, timeout=10.0) as client:
        page = client.get("/form").json()
        assert {"user": None, "flash": {}, "trio": True} == {
            k: v for k, v in page.items() if k != "token"
        }

        refused = client.post("/login", data={"user": "mallory"})
        assert 403 == refused.status_code
        forged = client.post("/login", data={"user": "mallory", "authenticity_token": "x" * 86})
        assert 403 == forged.status_code

        response = client.post(
            "/login", data={"user": "alice", "authenticity_token": page["token"]}
        )
        assert 200 == response.status_code, response.text
        assert {"user": "alice"} == response.json()

        expected = {"user": "alice", "flash": {"notice": "welcome, alice"}, "trio": True}
        assert expected == client.get("/me").json()
        assert {"user": "alice", "flash": {}, "trio": True} == client.get("/me").json()
