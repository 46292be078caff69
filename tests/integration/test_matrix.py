# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""The conformance matrix: every case, in every framework, on every store it concerns, served.

A cell is one framework over one store, served by a real server in a subprocess
(:mod:`.matrix_cells`): the app of :mod:`.matrix_apps` in the framework's own idiom
(:mod:`.matrix_frameworks`), with its own error handling in the loop, over a real store (a
SQLite file, a redis-server or memcached process, or the cookie). Every case of the cell
runs against that one served app, over real HTTP. The servers rotate over the cells, so that
each framework and each store meets uvicorn, hypercorn and granian.

Add a case by writing a ``def case(cell)`` and listing it in :data:`CASES` with the stores it
concerns. ``scripts/matrix.py`` runs this module and writes its result into
docs/frameworks.md.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from .matrix_apps import FRAMEWORKS, NOTICE
from .matrix_cells import SERVER_STORES, SERVERS, STORES, Cell, Cells, server_for

pytestmark = pytest.mark.integration

#: The upload: a few MB sent before the token field (the 100 MB run is test_csrf_uploads.py).
UPLOAD = random.Random(14).randbytes(3 * 1024 * 1024)


@pytest.fixture(scope="module")
def cells(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cells]:
    """The served cells, in the order this session's selected cases use them."""
    order: list[tuple[str, str]] = []
    module = request.node.nodeid
    for item in request.session.items:
        params = getattr(item, "callspec", None)
        if item.nodeid.startswith(f"{module}::") and params and "framework" in params.params:
            key = (params.params["framework"], params.params["store"])
            if key not in order:
                order.append(key)
    served = Cells(order, tmp_path_factory.mktemp)
    try:
        yield served
    finally:
        served.close()


# -- the cases -------------------------------------------------------------------------------


def token(c: httpx.Client) -> str:
    response = c.get("/csrf")
    assert 200 == response.status_code, response.text
    value: str = response.json()["token"]
    return value


def start_session(c: httpx.Client) -> str:
    response = c.get("/count")
    assert {"count": 1} == response.json(), response.text
    cookie: str = c.cookies["session"]
    return cookie


def log_in(c: httpx.Client, user: str = "alice") -> httpx.Response:
    return c.post("/login", json={"user": user}, headers={"x-csrf-token": token(c)})


def survives_requests(cell: Cell) -> None:
    """A write is read back on later requests, through the browser's cookie."""
    with cell.client() as c:
        for expected in (1, 2, 3):
            assert {"count": expected} == c.get("/count").json()
        assert {"count": 3} == c.get("/me").json()
        assert {"count": 3} == cell.me_with(c.cookies["session"]).json()


def login_regenerates(cell: Cell) -> None:
    """Login regenerates: a new cookie, data kept; the old cookie does not open the logged-in
    session (server stores: it opens nothing, its record is gone); the old CSRF token fails."""
    with cell.client() as c:
        anonymous = start_session(c)
        before = token(c)
        anonymous = c.cookies["session"]  # the token's secret is a session write
        response = c.post("/login", json={"user": "alice"}, headers={"x-csrf-token": before})
        assert 200 == response.status_code, response.text
        assert {"count": 1, "user": "alice"} == response.json()
        logged_in = c.cookies["session"]
        assert anonymous != logged_in
        assert {"count": 1, "user": "alice"} == cell.me_with(logged_in).json()
        replayed = cell.me_with(anonymous).json()
        assert ({} if cell.server_side else {"count": 1}) == replayed
        assert 403 == c.post("/logout", headers={"x-csrf-token": before}).status_code


def logout_kills_cookie(cell: Cell) -> None:
    """Logout resets: the browser's cookie is deleted and its next request is anonymous. On
    a server store the pre-logout cookie, replayed, opens nothing. The cookie store cannot
    revoke a copy without a revocation_store: docs/stores.md says ``reset()`` "clears only
    the cookie in that browser, and a copied cookie stays valid until it expires", so there
    the replay still opens the logged-in session, as documented."""
    with cell.client() as c:
        assert 200 == log_in(c).status_code
        fresh = token(c)
        before_logout = c.cookies["session"]
        response = c.post("/logout", headers={"x-csrf-token": fresh})
        assert 200 == response.status_code, response.text
        assert response.headers.get_list("set-cookie")
        assert "session" not in c.cookies
        assert {} == c.get("/me").json()
        replayed = cell.me_with(before_logout).json()
        assert ({} if cell.server_side else {"user": "alice"}) == replayed


def flash_shown_once(cell: Cell) -> None:
    """A flash set on one request is shown on the next one, then gone."""
    with cell.client() as c:
        response = c.post("/flash", headers={"x-csrf-token": token(c)})
        assert 200 == response.status_code, response.text
        assert {"flash": {"notice": NOTICE}} == c.get("/flash").json()
        assert {"flash": {}} == c.get("/flash").json()
        assert {"flash": {}} == c.get("/flash").json()


def csrf_form(cell: Cell) -> None:
    """A form with the token field passes and the app reads its fields; without, 403."""
    with cell.client() as c:
        form = {"comment": "hello", "authenticity_token": token(c)}
        response = c.post("/form", data=form)
        assert 200 == response.status_code, response.text
        assert {"comment": "hello"} == response.json()
        refused = c.post("/form", data={"comment": "hello"})
        assert 403 == refused.status_code, refused.text
        forged = c.post("/form", data={**form, "authenticity_token": "A" * 86})
        assert 403 == forged.status_code, forged.text


def multipart(token: str | None) -> tuple[bytes, str]:
    """A browser's upload form: the file part first, then the token field (if any)."""
    boundary = "matrix-" + secrets.token_hex(16)
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=upload; filename=blob.bin\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = head.encode() + UPLOAD + b"\r\n"
    if token is not None:
        field = 'Content-Disposition: form-data; name="authenticity_token"'
        body += f"--{boundary}\r\n{field}\r\n\r\n{token}\r\n".encode()
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def csrf_upload(cell: Cell) -> None:
    """A few MB file before the token field passes, and the app gets its bytes intact (raw
    ASGI, with no form parser, hashes the whole body); without the token, 403."""
    with cell.client() as c:
        body, content_type = multipart(token(c))
        response = c.post("/upload", content=body, headers={"content-type": content_type})
        assert 200 == response.status_code, response.text
        sent = body if cell.framework == "raw" else UPLOAD
        assert {"length": len(sent), "sha256": hashlib.sha256(sent).hexdigest()} == (
            response.json()
        )
        body, content_type = multipart(None)
        refused = c.post("/upload", content=body, headers={"content-type": content_type})
        assert 403 == refused.status_code, refused.text


def store_outage_is_503(cell: Cell) -> None:
    """The store down and a request that uses its session: 503 + Retry-After, no cookie."""
    with cell.client() as c:
        start_session(c)
        with cell.kit.outage():
            for path in ("/me", "/count"):
                response = c.get(path)
                assert 503 == response.status_code, (path, response.text)
                assert "5" == response.headers["retry-after"]
                assert "set-cookie" not in response.headers
                assert "session store" in response.text


def store_outage_anonymous(cell: Cell) -> None:
    """on_store_error="anonymous": an empty session, served, never written."""
    with cell.client("anonymous") as c:
        start_session(c)
        with cell.kit.outage():
            response = c.get("/count")
            assert 200 == response.status_code, response.text
            assert {"count": 1} == response.json()
            assert "set-cookie" not in response.headers


def kept_cookie_after(cell: Cell, path: str, variant: str, status: int, text: str) -> None:
    """``path`` fails to commit: ``status`` (and ``text``), no Set-Cookie, the old session
    intact."""
    with cell.client(variant) as c:
        cookie = start_session(c)
        response = c.get(path)
        assert status == response.status_code, response.text
        assert text in response.text
        assert "set-cookie" not in response.headers
        assert cookie == c.cookies["session"]
    # A new connection: after an error reached it, the server may close this one (uvicorn
    # does, and Starlette's 500 does not say "Connection: close").
    assert {"count": 1} == cell.me_with(cookie).json()


def overflow_through_hook(cell: Cell) -> None:
    kept_cookie_after(cell, "/big", "", 400, "<p>CookieOverflow</p>")


def non_json_through_hook(cell: Cell) -> None:
    kept_cookie_after(cell, "/bad", "", 400, "<p>SerializationError</p>")


def non_json_without_hook(cell: Cell) -> None:
    """Without on_commit_error the error is raised into the app's send: the framework's (or
    the server's) 500, nothing of the session sent."""
    kept_cookie_after(cell, "/bad", "nohook", 500, "")


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    run: Callable[[Cell], None]
    stores: tuple[str, ...] = STORES


CASES = (
    Case("login-regenerate", "login with `regenerate()`: new cookie, old one not logged in, "
         "old CSRF token refused", login_regenerates),
    Case("survives-requests", "session survives several requests", survives_requests),
    Case("logout", "logout: cookie deleted; the pre-logout cookie replayed opens nothing "
         "(server stores) / still opens (cookie store, as documented)", logout_kills_cookie),
    Case("flash-once", "flash shown once", flash_shown_once),
    Case("csrf-form", "CSRF form: with token 200 (fields read by the app), without or forged "
         "403", csrf_form),
    Case("csrf-upload", "CSRF upload, 3 MB file before the token: bytes intact; without "
         "token 403", csrf_upload),
    Case("non-json-hook", "non-JSON value: `SerializationError` through `on_commit_error`, "
         "old cookie kept", non_json_through_hook),
    Case("non-json-no-hook", "non-JSON value, no hook: the framework's 500, old cookie kept",
         non_json_without_hook),
    Case("overflow-hook", "overflow: `CookieOverflow` through `on_commit_error`, old cookie "
         "kept", overflow_through_hook, ("cookie",)),
    Case("store-outage-503", "store outage: 503 + `Retry-After`, no `Set-Cookie`",
         store_outage_is_503, SERVER_STORES),
    Case("store-outage-anonymous", "store outage, `on_store_error=\"anonymous\"`: empty "
         "session, not written", store_outage_anonymous, SERVER_STORES),
)  # fmt: skip
PARAMS = [
    pytest.param(framework, store, case, id=f"{framework}-{store}-{case.name}")
    for framework in FRAMEWORKS
    for store in STORES
    for case in CASES
    if store in case.stores
]


@pytest.mark.parametrize(("framework", "store", "case"), PARAMS)
def test_matrix(framework: str, store: str, case: Case, cells: Cells) -> None:
    case.run(cells.get(framework, store))


def test_every_case_runs_somewhere() -> None:
    """A case listed with no store would silently test nothing; every server serves every
    framework and every store somewhere."""
    assert all(case.stores for case in CASES)
    cells = {(framework, store) for framework in FRAMEWORKS for store in STORES}
    for framework in FRAMEWORKS:
        assert set(SERVERS) == {server_for(framework, s) for s in STORES}
    for store in STORES:
        assert set(SERVERS) == {server_for(f, store) for f in FRAMEWORKS}
    assert cells == {param.values[:2] for param in PARAMS}
