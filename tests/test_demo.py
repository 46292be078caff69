"""The demo app (``python -m asgisession demo``): every action, on every store, in-process.

The app runs under httpx's ASGI transport on the cookie store, a real SQLite file, and
real redis-server and memcached processes; the command line is run for its argument
errors, and once for real (served by uvicorn, stopped with Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from asgisession.backends.cookie import CookieBackend
from asgisession.backends.server import ServerBackend
from asgisession.cli import main
from asgisession.cookies import CookieOptions
from asgisession.crypto import Keyring, MessageEncryptor
from asgisession.demo.app import COOKIE_NAME, build_app
from asgisession.demo.serve import DEFAULT_SQLITE_PATH, StoreChoice, parse_store
from asgisession.stores import SQLiteStore, Store, from_url

from .asgi_helpers import client
from .servers import LOOPBACK, ServerProcess, free_port
from .stores_under_test import open_store


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the demo is tested on SQLite, Redis and memcached, asyncio-only clients."""
    return "asyncio"


ORIGIN = "http://127.0.0.1:8000"
TOKEN = re.compile(r'name="authenticity_token" value="([^"]+)"')


@pytest.fixture(params=["cookie", "sqlite", "redis", "memcached"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store | None]:
    made = open_store(request.param, request, tmp_path)
    yield made
    if made is not None:
        await made.aclose()


@pytest.fixture(params=["sqlite", "redis", "memcached"])
async def server_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made = open_store(request.param, request, tmp_path)
    assert made is not None
    yield made
    await made.aclose()


class Browser:
    """One user agent on the demo: a cookie jar, and the last page's authenticity token."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.page = ""
        self.token = ""

    async def get(self) -> str:
        response = await self.http.get("/")
        assert 200 == response.status_code
        self.page = response.text
        self.token = TOKEN.findall(self.page)[0]
        return self.page

    async def post(
        self, path: str, fields: dict[str, str] | None = None, *, with_token: bool = True
    ) -> httpx.Response:
        data = dict(fields or {})
        if with_token:
            data["authenticity_token"] = self.token
        origin = str(self.http.base_url).rstrip("/")
        return await self.http.post(path, data=data, headers={"origin": origin})

    async def act(self, path: str, **fields: str) -> str:
        """Post a form from the current page, follow the redirect, return the new page."""
        response = await self.post(path, fields)
        assert 303 == response.status_code, response.text
        assert "/" == response.headers["location"]
        return await self.get()

    def cookie(self) -> str | None:
        return self.http.cookies.get(COOKIE_NAME)


async def browser(app: httpx.AsyncClient) -> Browser:
    user = Browser(app)
    await user.get()
    return user


def demo_client(store: Store | None, secret: str) -> httpx.AsyncClient:
    return client(build_app(secret, store, description="the test store"), base_url=ORIGIN)


def flashes(page: str) -> list[str]:
    return re.findall(r'<p class="flash [a-z]+" role="status">([^<]*)</p>', page)


def session_pre(page: str) -> str:
    found = re.search(r'<pre id="session">(.*?)</pre>', page, re.DOTALL)
    assert found is not None
    return found.group(1)


def internal_keys(page: str) -> str:
    found = re.search(r'<p id="internal-keys">(.*?)</p>', page, re.DOTALL)
    assert found is not None
    return found.group(1)


async def csrf_secret(store: Store | None, secret: str, cookie: str) -> str:
    """The session's raw CSRF secret, read as the middleware reads it (its own backend)."""
    codec = MessageEncryptor(Keyring(secret))
    options = CookieOptions(name=COOKIE_NAME)
    backend: CookieBackend | ServerBackend
    if store is None:
        backend = CookieBackend(codec, options, lifetime=86400)
    else:
        backend = ServerBackend(store, codec, options, lifetime=86400)
    state = await backend.load([cookie], int(time.time()))
    assert state.rejection is None, state.rejection
    value = state.data["_csrf_token"]
    assert isinstance(value, str)
    return value


def marked_this_browser(page: str) -> list[str]:
    """The store keys (last 12 characters) of the list's items marked "this browser"."""
    return re.findall(
        r'<li class="this-browser"><code>([^<]+)</code> <b>\(this browser\)</b>', page
    )


def listed(page: str) -> list[str]:
    return re.findall(r"<li[^>]*><code>([^<]+)</code>", page)


def sessions_hint(page: str) -> str:
    found = re.search(r'<p id="sessions-hint">([^<]*)</p>', page)
    assert found is not None
    return found.group(1)


@pytest.mark.anyio
async def test_login_shows_a_flash_once_and_regenerates_the_session(
    store: Store | None, secret: str
) -> None:
    async with demo_client(store, secret) as http:
        user = await browser(http)
        assert "Not logged in." in user.page
        before = user.cookie()
        old_token = user.token
        page = await user.act("/login", username="<alice>")
        assert "Logged in as <b>&lt;alice&gt;</b>." in page
        assert ["Logged in as &lt;alice&gt;. The session got a new identity."] == flashes(page)
        assert before != user.cookie()
        assert [] == flashes(await user.get())
        assert "Logged in as <b>&lt;alice&gt;</b>." in user.page
        # regenerate() dropped the CSRF secret: a token from before the login is refused
        user.token = old_token
        assert 403 == (await user.post("/note", {"note": "stale"})).status_code


@pytest.mark.anyio
async def test_the_page_shows_the_session_and_the_cookie_size(
    store: Store | None, secret: str
) -> None:
    async with demo_client(store, secret) as http:
        user = await browser(http)
        await user.act("/login", username="bob")
        page = await user.get()  # shows the cookie it came with, and changes nothing
        cookie = user.cookie()
        assert cookie is not None
        shown = re.search(r'<b id="cookie-size">(\d+)</b> of 4096 bytes', page)
        assert shown is not None
        assert len(COOKIE_NAME) + len(cookie) == int(shown.group(1))
        assert "&quot;user&quot;: &quot;bob&quot;" in session_pre(page)
        # the CSRF secret is named as there, and its value is nowhere on the page
        assert "_csrf_token" not in session_pre(page)
        assert "<code>_csrf_token</code>" in internal_keys(page)
        secret_value = await csrf_secret(store, secret, cookie)
        assert 43 == len(secret_value)
        assert secret_value not in page


@pytest.mark.anyio
async def test_the_csrf_form_posts_with_its_token_only(store: Store | None, secret: str) -> None:
    async with demo_client(store, secret) as http:
        user = await browser(http)
        page = await user.act("/note", note="hello <b>")
        assert "&quot;note&quot;: &quot;hello &lt;b&gt;&quot;" in session_pre(page)
        assert ["Note saved: the form carried a valid authenticity token."] == flashes(page)
        refused = await user.post("/note", {"note": "no token"}, with_token=False)
        assert 403 == refused.status_code
        # the demo's own page: its layout, the reason, and the way back
        assert "<h1>asgisession demo</h1>" in refused.text
        assert "failed the CSRF check (missing_token)" in refused.text
        assert '<a href="/">Back</a>' in refused.text
        foreign = await http.post(
            "/note",
            data={"authenticity_token": user.token, "note": "cross-site"},
            headers={"origin": "http://localhost:9999"},
        )
        assert 403 == foreign.status_code
        assert "(cross_site)" in foreign.text or "(bad_origin)" in foreign.text
        assert "hello &lt;b&gt;" in session_pre(await user.get())


@pytest.mark.anyio
async def test_logout_ends_the_session(store: Store | None, secret: str) -> None:
    async with demo_client(store, secret) as http:
        user = await browser(http)
        await user.act("/login", username="carol")
        logged_in = user.cookie()
        page = await user.act("/logout")
        assert "Not logged in." in page
        assert ["Logged out: the session and its cookie are gone."] == flashes(page)
        assert '"user"' not in session_pre(page)
    if store is not None:  # the old cookie names a record that is gone
        async with demo_client(store, secret) as http:
            http.cookies.set(COOKIE_NAME, logged_in or "")
            assert "Not logged in." in (await http.get("/")).text


def wait_for_the_next_second() -> None:
    """Revocation times are whole seconds: a cookie issued in the revoking second stays."""
    time.sleep(1 - time.time() % 1 + 0.01)


@pytest.mark.anyio
async def test_log_out_everywhere_ends_the_users_other_sessions(
    store: Store | None, secret: str
) -> None:
    app = build_app(secret, store, description="the test store")
    async with client(app, ORIGIN) as laptop_http, client(app, ORIGIN) as phone_http:
        laptop, phone = await browser(laptop_http), await browser(phone_http)
        await laptop.act("/login", username="dave")
        await phone.act("/login", username="dave")
        page = await laptop.get()
        if store is None:
            assert "Cookie sessions live only in browsers" in page
            wait_for_the_next_second()
        else:
            assert "Your sessions (2)" in page
        page = await laptop.act("/logout-everywhere")
        assert "Not logged in." in page
        ended = "" if store is None else " (2 server-side sessions ended)"
        assert [f"Logged out everywhere{ended}."] == flashes(page)
        assert "Not logged in." in await phone.get()


@pytest.mark.anyio
async def test_one_session_of_the_list_can_be_ended(server_store: Store, secret: str) -> None:
    app = build_app(secret, server_store, description="the test store")
    async with client(app, ORIGIN) as laptop_http, client(app, ORIGIN) as phone_http:
        laptop, phone = await browser(laptop_http), await browser(phone_http)
        mine = set(
            re.findall(r'name="key" value="([^"]+)"', await laptop.act("/login", username="eve"))
        )
        await phone.act("/login", username="eve")
        both = set(re.findall(r'name="key" value="([^"]+)"', await laptop.get()))
        assert 1 == len(mine)
        assert 2 == len(both)
        [phones] = both - mine
        page = await laptop.act("/sessions/end", key=phones)
        assert ["That session has ended."] == flashes(page)
        assert "Your sessions (1)" in page
        assert "Not logged in." in await phone.get()
        assert ["No such session of yours."] == flashes(
            await laptop.act("/sessions/end", key=phones)
        )


@pytest.mark.anyio
async def test_growing_the_session_ends_in_cookie_overflow_on_the_cookie_store(
    store: Store | None, secret: str
) -> None:
    async with demo_client(store, secret) as http:
        user = await browser(http)
        for clicks in range(1, 20):
            response = await user.post("/grow")
            if response.status_code != 303:
                break
            page = await user.get()
            assert [f"The session holds {512 * clicks} bytes of ballast."] == flashes(page)
            if store is not None and clicks == 10:
                assert int(re.findall(r'id="cookie-size">(\d+)<', page)[0]) < 300
                return  # a server store takes it all; the cookie holds only an id
        assert store is None
        assert 413 == response.status_code
        assert "over the 4096-byte limit browsers keep" in response.text
        assert "&#x27;ballast&#x27;" in response.text  # the largest key is named, escaped
        # nothing was sent: the browser still has the last cookie that fit
        kept = re.search(
            r"&quot;ballast&quot;: &quot;([0-9a-f]*)&quot;", session_pre(await user.get())
        )
        assert kept is not None
        assert 512 * (clicks - 1) == len(kept.group(1))
        page = await user.act("/shrink")
        assert ["Ballast dropped."] == flashes(page)
        assert "ballast" not in session_pre(page)


@pytest.mark.anyio
async def test_an_unknown_path_is_a_404(secret: str) -> None:
    async with demo_client(None, secret) as http:
        response = await http.get("/nothing<here>")
        assert 404 == response.status_code
        assert "/nothing&lt;here&gt;" in response.text


# -- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cookie", StoreChoice("cookie")),
        ("sqlite", StoreChoice("sqlite", f"sqlite:///{DEFAULT_SQLITE_PATH}")),
        ("sqlite:///demo.db", StoreChoice("sqlite", "sqlite:///demo.db")),
        ("sqlite:////srv/demo.db", StoreChoice("sqlite", "sqlite:////srv/demo.db")),
        ("redis://127.0.0.1:6379/0", StoreChoice("redis", "redis://127.0.0.1:6379/0")),
        ("rediss://cache:6380/1", StoreChoice("redis", "rediss://cache:6380/1")),
        ("memcached://127.0.0.1:11211", StoreChoice("memcached", "memcached://127.0.0.1:11211")),
    ],
)
def test_store_choices(value: str, expected: StoreChoice) -> None:
    assert expected == parse_store(value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "relative_to_cwd"), [("sqlite:///data/demo.db", True), ("sqlite:////X/demo.db", False)]
)
async def test_a_sqlite_url_means_to_the_demo_what_it_means_to_the_library(
    url: str, relative_to_cwd: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule: the path follows the third slash (sqlite:///rel, sqlite:////abs)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    url = url.replace("/X/", f"{tmp_path}/")
    choice = parse_store(url)
    store = choice.open()
    library = from_url(url)
    assert isinstance(store, SQLiteStore)
    assert isinstance(library, SQLiteStore)
    try:
        assert library.path == store.path
        assert str(tmp_path / "data" / "demo.db" if relative_to_cwd else tmp_path / "demo.db") in (
            choice.describe()
        )
        assert ("data/demo.db" if relative_to_cwd else str(tmp_path / "demo.db")) == str(store.path)
    finally:
        await store.aclose()
        await library.aclose()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--store", "mysql://db"],
            "'mysql://db' is not a store the demo knows; use cookie, sqlite",
        ),
        (["--port", "0"], "'0' is not a port (1 to 65535)"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", *argv])
    assert 2 == exit_info.value.code
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://host:port", "the port 'port' is not a number"),
        ("memcached://h/path", "a memcached URL has no path"),
        ("sqlite://host", "a SQLite URL has no host"),
        ("redis://u:hunter2@h:1/0?bogus=1", "'redis://u:***@h:1/0?bogus=1': the query parameter"),
    ],
)
def test_a_url_the_store_refuses_exits_2_with_the_librarys_reason(
    url: str, message: str, capsys: pytest.CaptureFixture[str], secret: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The store judges its URL (the library's rules and words), before anything is served."""
    monkeypatch.setenv("SECRET_KEY_BASE", secret)
    assert 2 == main(["demo", "--store", url])
    err = capsys.readouterr().err
    assert err.startswith("asgisession: error: ")
    assert message in err
    assert "hunter2" not in err


def test_a_weak_secret_is_refused_before_serving(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SECRET_KEY_BASE", "short")
    monkeypatch.delenv("SECRET_KEY_BASE_FILE", raising=False)
    assert 2 == main(["demo", "--store", "cookie"])
    assert capsys.readouterr().err.startswith("asgisession: error: ")


def test_serves_until_ctrl_c(tmp_path: Path) -> None:
    """The real command: prints its URL, serves, and exits 0 on SIGINT with the store closed."""
    port = free_port()
    database = tmp_path / "demo.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRET_KEY_BASE")}
    # an absolute path: the fourth slash (sqlite:///demo.db would be ./demo.db)
    argv = [sys.executable, "-m", "asgisession", "demo", "--store", f"sqlite:///{database}"]
    with subprocess.Popen(
        [*argv, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            first_line = process.stdout.readline()
            assert f"asgisession demo: http://127.0.0.1:{port}/" in first_line
            assert str(database) in first_line
            response = _get_when_up(f"http://127.0.0.1:{port}/", process)
            assert 200 == response.status_code
            assert "SQLite file" in response.text
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert 0 == process.returncode, err
    assert "SECRET_KEY_BASE is not set" in err
    assert "Traceback" not in err
    assert database.exists()


@contextlib.contextmanager
def served(store_url: str, secret: str) -> Iterator[str]:
    """``python -m asgisession demo --store store_url`` on a free port; yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRET_KEY_BASE")}
    env["SECRET_KEY_BASE"] = secret
    argv = [sys.executable, "-m", "asgisession", "demo", "--store", store_url]
    with subprocess.Popen(
        [*argv, "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    ) as process:  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            assert 200 == _get_when_up(url + "/", process).status_code
            yield url
        finally:
            process.send_signal(signal.SIGINT)
            try:
                _, err = process.communicate(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
    assert 0 == process.returncode, err
    assert "Traceback" not in err


@pytest.mark.integration
@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["redis", "memcached"])
async def test_served_on_redis_and_memcached_two_browsers_each_see_this_browser_marked(
    kind: str, request: pytest.FixtureRequest, secret: str, tmp_path: Path
) -> None:
    """The real command on a real server: two cookie jars log in as one user.

    Each sees both sessions, its own marked "this browser" (a different one for each), and
    a hint that counts the other browser; no page carries the raw CSRF secret.
    """
    proc: ServerProcess = request.getfixturevalue(f"{kind}_proc")
    store_url = f"{kind}://{LOOPBACK}:{proc.port}" + ("/0" if kind == "redis" else "")
    user = f"served-{tmp_path.name}"  # the demo's default namespace: a user of its own
    with served(store_url, secret) as url:
        async with httpx.AsyncClient(base_url=url) as one, httpx.AsyncClient(base_url=url) as two:
            first, second = await browser(one), await browser(two)
            page = await first.act("/login", username=user)
            assert 1 == len(listed(page))
            assert listed(page) == marked_this_browser(page)
            assert sessions_hint(page).startswith("Log in as the same name from another browser")
            await second.act("/login", username=user)
            first_page, second_page = await first.get(), await second.get()
            for page in (first_page, second_page):
                assert "Your sessions (2)" in page
                assert 2 == len(set(listed(page)))
                assert 1 == len(marked_this_browser(page))
                assert "1 other browser is logged in as you" in sessions_hint(page)
            assert marked_this_browser(first_page) != marked_this_browser(second_page)
            assert set(listed(first_page)) == set(listed(second_page))
            store = from_url(store_url)
            try:
                for jar, page in ((first, first_page), (second, second_page)):
                    cookie = jar.cookie()
                    assert cookie is not None
                    raw = await csrf_secret(store, secret, cookie)
                    assert raw not in page
                    assert "<code>_csrf_token</code>" in internal_keys(page)
            finally:
                await store.aclose()


def _get_when_up(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"the demo did not answer on {url} within 20 s")
