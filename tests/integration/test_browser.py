"""The demo in a real browser: Debian's headless chromium, driven by Playwright.

``python -m asgisession demo`` runs in a subprocess on a free loopback port (SQLite store);
an attacker page is served on ``localhost`` (another site than ``127.0.0.1``). Nothing is
installed at run time: without ``chromium`` (apt-get install chromium) or the ``playwright``
package (the test dependency group) the tests skip, and fail under
``ASGISESSION_REQUIRE_SERVERS=1``. Screenshots go to ``$ASGISESSION_ARTIFACTS/browser`` or
the test's tmp_path; the path is printed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from ..servers import LOOPBACK, free_port, require_binary, require_module

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.integration

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module", autouse=True)
def chromium() -> str:
    """Debian's chromium and the playwright package, checked before any server starts."""
    require_module("playwright", "pip install playwright (in the test dependency group)")
    return require_binary("chromium", "chromium")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m asgisession demo`` on a free port and a fresh SQLite file; Ctrl-C at the end."""
    workdir = tmp_path_factory.mktemp("browser-demo")
    port = free_port()
    argv = [sys.executable, "-m", "asgisession", "demo", "--port", str(port)]
    argv += ["--store", f"sqlite:///{workdir / 'demo.sqlite3'}"]  # absolute: four slashes
    env = {**os.environ, "SECRET_KEY_BASE": os.urandom(64).hex()}
    log_path = workdir / "demo.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{LOOPBACK}:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo did not come up on {url}:\n{log_path.read_text()}")
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def attacker_url(demo_url: str) -> Iterator[str]:
    """A page on http://localhost:<other port> whose form posts a note to the demo."""
    page = (
        "<!doctype html><title>totally harmless</title>"
        f'<form method="post" action="{demo_url}note">'
        '<input name="note" value="pwned"><button id="attack">Win a prize</button></form>'
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def screenshots(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    """Where this test's screenshots go; printed so they can be found."""
    base = os.environ.get("ASGISESSION_ARTIFACTS")
    name: str = request.node.name
    folder = (Path(base) / "browser" if base else tmp_path) / name
    folder.mkdir(parents=True, exist_ok=True)
    with capsys.disabled():
        print(f"\n[browser screenshots: {folder}]")
    return folder


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[BrowserContext]:
    """A headless chromium with a fresh profile: Debian's binary, never a downloaded one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def flash_texts(page: Page) -> list[str]:
    return page.locator(".flash").all_inner_texts()


def test_login_flash_navigation_csrf_form_and_logout(
    browser: BrowserContext, demo_url: str, screenshots: Path
) -> None:
    page = browser.new_page()
    page.goto(demo_url)
    assert "Not logged in." == page.inner_text("#who")
    page.screenshot(path=screenshots / "1-home.png", full_page=True)

    page.fill("input[name=username]", "alice")
    page.click("text=Log in")
    assert "Logged in as alice." == page.inner_text("#who")
    assert ["Logged in as alice. The session got a new identity."] == flash_texts(page)
    page.screenshot(path=screenshots / "2-logged-in.png", full_page=True)

    page.reload()
    assert [] == flash_texts(page)  # shown once, gone after a reload
    assert "Logged in as alice." == page.inner_text("#who")

    page.goto(demo_url + "elsewhere")
    assert "Nothing at /elsewhere." == page.inner_text(".error")
    page.click("text=Back")
    assert "Logged in as alice." == page.inner_text("#who")  # the session survived

    # the session cookie is HttpOnly: the browser has it, JavaScript cannot see it
    [cookie] = [c for c in browser.cookies() if c["name"] == "session"]
    assert cookie["httpOnly"]
    assert "Lax" == cookie["sameSite"]
    assert "session=" not in page.evaluate("document.cookie")

    page.fill("#note input[name=note]", "hello from chromium")
    page.click("text=Save note")
    assert ["Note saved: the form carried a valid authenticity token."] == flash_texts(page)
    assert "hello from chromium" in page.inner_text("#session")
    page.screenshot(path=screenshots / "3-note-saved.png", full_page=True)

    with page.expect_response(demo_url + "note") as refused:
        page.click("text=Save note without the token")
    assert 403 == refused.value.status
    assert "failed the CSRF check (missing_token)" in page.inner_text("body")
    assert "asgisession demo" == page.inner_text("h1")
    page.screenshot(path=screenshots / "4-no-token-refused.png", full_page=True)
    page.click("text=Back")
    assert "hello from chromium" in page.inner_text("#session")

    page.goto(demo_url)
    page.click("text=Log out")
    assert "Not logged in." == page.inner_text("#who")
    assert ["Logged out: the session and its cookie are gone."] == flash_texts(page)
    assert "alice" not in page.inner_text("#session")
    page.screenshot(path=screenshots / "5-logged-out.png", full_page=True)

    # the logged-in cookie, put back, opens nothing: its server-side record is gone
    browser.add_cookies([{"name": "session", "value": cookie["value"], "url": demo_url}])
    page.reload()
    assert "Not logged in." == page.inner_text("#who")


def test_a_cross_site_form_post_is_refused(
    browser: BrowserContext, demo_url: str, attacker_url: str, screenshots: Path
) -> None:
    page = browser.new_page()
    page.goto(demo_url)
    page.fill("input[name=username]", "bob")
    page.click("text=Log in")
    assert "Logged in as bob." == page.inner_text("#who")

    page.goto(attacker_url)
    page.screenshot(path=screenshots / "1-attacker-page.png")
    with page.expect_response(demo_url + "note") as refused:
        page.click("#attack")
    assert 403 == refused.value.status
    assert "cross-site" == refused.value.request.all_headers().get("sec-fetch-site")
    page.screenshot(path=screenshots / "2-refused.png")

    page.goto(demo_url)
    assert "Logged in as bob." == page.inner_text("#who")
    assert "pwned" not in page.inner_text("#session")
