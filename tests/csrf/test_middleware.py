"""Tests for asgisession.csrf.middleware: which requests are checked, Vary, logging, the
failure strategies, configuration, and sessions loaded late.
"""

from __future__ import annotations

from typing import Any

import pytest

from asgisession import ConfigurationError, CSRFMiddleware, CSRFReason, SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.csrf import SESSION_KEY, mask_token
from asgisession.stores.memory import MemoryStore

from .helpers import (
    FORM,
    Case,
    Handler,
    build,
    call,
    client,
    fetch_token,
    request_scope,
    run_case,
)

METHOD_CASES: dict[str, Case] = {
    # Safe methods pass without a token.
    "get-no-token": Case(200, method="GET"),
    "head-no-token": Case(200, method="HEAD"),
    "options-no-token": Case(200, method="OPTIONS"),
    # Unsafe methods need the token.
    "post-no-token": Case(403),
    "put-no-token": Case(403, method="PUT"),
    "patch-no-token": Case(403, method="PATCH"),
    "delete-no-token": Case(403, method="DELETE"),
    # Method overrides never make a request safe.
    "method-param-get": Case(403, headers=[("content-type", FORM)], body="_method=GET"),
    "method-override-header": Case(403, headers=[("x-http-method-override", "GET")]),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(METHOD_CASES.values()), ids=list(METHOD_CASES))
async def test_method_battery(case: Case, secret: str) -> None:
    """Each request gets its expected status; on a rejection the handler never runs."""
    await run_case(case, secret)


@pytest.mark.anyio
async def test_protected_response_varies_on_the_headers_it_checked(secret: str) -> None:
    """Vary lists Origin, Sec-Fetch-Site and X-CSRF-Token once each, merged with the app's."""
    app = build(secret, Handler())
    async with client(app) as http:
        token, _ = await fetch_token(http)
        response = await http.post("/submit", headers={"x-csrf-token": token})
    tokens = [t.strip().lower() for t in ",".join(response.headers.get_list("vary")).split(",")]
    assert sorted(set(tokens)) == sorted(tokens)
    assert {"origin", "sec-fetch-site", "x-csrf-token", "cookie", "accept-encoding"} <= set(tokens)


@pytest.mark.anyio
async def test_safe_requests_leave_the_session_untouched(secret: str) -> None:
    """A GET is not checked: no Set-Cookie from the middleware and no CSRF Vary entries."""
    app = build(secret, Handler())
    async with client(app) as http:
        await fetch_token(http)
        response = await http.get("/submit")
    assert "set-cookie" not in response.headers
    # The handler reads the session, hence Cookie; nothing CSRF-specific was added.
    assert "Accept-Encoding, origin, Cookie" == response.headers["vary"]


@pytest.mark.anyio
async def test_forbidden_body_is_short_plain_text_and_logged(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 403 carries a short text/plain body without the reason; the reason goes to the
    log at WARNING, with the method and the path."""
    app = build(secret, Handler())
    caplog.set_level("WARNING", logger="asgisession.csrf")
    async with client(app) as http:
        response = await http.post("/submit")
    assert 403 == response.status_code
    assert response.headers["content-type"].startswith("text/plain")
    assert len(response.content) < 100
    assert "missing_token" not in response.text
    [record] = caplog.records
    assert "WARNING" == record.levelname
    assert "POST /submit refused (missing_token)" in record.getMessage()


@pytest.mark.anyio
async def test_expose_reason_puts_the_reason_in_the_403(secret: str) -> None:
    async with client(build(secret, Handler(), expose_reason=True)) as http:
        missing = await http.post("/submit")
        token, _ = await fetch_token(http)
        forged = token[:-2] + ("BA" if token.endswith("AA") else "AA")  # never the token itself
        bad = await http.post("/submit", headers={"x-csrf-token": forged})
    assert 403 == missing.status_code
    assert "Reason: missing_token: no token in the X-CSRF-Token header" in missing.text
    assert "Reason: bad_token" in bad.text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("field", "header"),
    [("csrfmiddlewaretoken", "X-CSRFToken"), ("csrf_token", "X-CSRFToken")],
    ids=["django", "flask-wtf"],
)
async def test_field_and_header_names_are_configurable(
    secret: str, field: str, header: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Django's and Flask-WTF's names work; the default names then do not."""
    handler = Handler()
    app = build(secret, handler, field_name=field, header_name=header)
    async with client(app) as http:
        token, _ = await fetch_token(http)
        by_field = await http.post("/submit", data={field: token})
        by_header = await http.post("/submit", headers={header: token})
        multipart = await http.post("/submit", data={field: token}, files={"f": b"x"})
        old_field = await http.post("/submit", data={"authenticity_token": token})
        old_header = await http.post("/submit", headers={"x-csrf-token": token})
    assert [200, 200, 200] == [r.status_code for r in (by_field, by_header, multipart)]
    assert [403, 403] == [old_field.status_code, old_header.status_code]
    assert 3 == handler.calls
    assert header in by_header.headers["vary"]
    assert f"no token in the {header} header or the {field} form field" in caplog.text


@pytest.mark.parametrize(
    "options",
    [{"field_name": ""}, {"header_name": "X CSRF"}, {"header_name": ""}, {"field_name": 1}],
)
def test_bad_names_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        CSRFMiddleware(Handler(), **options)


# -- failure strategies -------------------------------------------------------------------


@pytest.mark.anyio
async def test_null_session_runs_with_an_empty_unsaved_session(secret: str) -> None:
    """on_failure='null_session': the app runs, sees no session data, and writes are lost."""
    handler = Handler()
    app = build(secret, handler, on_failure="null_session")
    async with client(app) as http:
        token, _ = await fetch_token(http)
        response = await http.post("/write")
        assert 200 == response.status_code
        assert [{"written": True}] == handler.sessions  # empty before the app wrote to it
        await http.post("/write-check", headers={"x-csrf-token": token})
    assert "written" not in handler.sessions[-1]
    assert SESSION_KEY in handler.sessions[-1]


@pytest.mark.anyio
async def test_reset_session_resets_then_runs(secret: str) -> None:
    """on_failure='reset_session': the session is emptied, the app runs, the token is dead."""
    handler = Handler()
    app = build(secret, handler, on_failure="reset_session")
    async with client(app) as http:
        token, _ = await fetch_token(http)
        assert 200 == (await http.post("/submit")).status_code
        assert [{}] == handler.sessions
        await http.post("/submit", headers={"x-csrf-token": token})
    assert {} == handler.sessions[-1]


@pytest.mark.anyio
async def test_user_failure_handler_gets_the_reason(secret: str) -> None:
    """A callable on_failure answers instead of the app, with the CSRFReason."""
    handler = Handler()
    reasons: list[CSRFReason] = []

    async def on_failure(scope: Scope, receive: Receive, send: Send, reason: CSRFReason) -> None:
        reasons.append(reason)
        await send({"type": "http.response.start", "status": 422, "headers": []})
        await send({"type": "http.response.body", "body": b"nope"})

    app = build(secret, handler, on_failure=on_failure)
    async with client(app) as http:
        response = await http.post("/submit", headers={"origin": "null"})
    assert 422 == response.status_code
    assert [CSRFReason.NULL_ORIGIN] == reasons
    assert 0 == handler.calls


# -- configuration and scopes -------------------------------------------------------------


def test_bad_configuration_is_refused() -> None:
    """Invalid settings raise ConfigurationError at construction."""
    handler = Handler()
    for kwargs in (
        {"trusted_origins": "https://a.test"},
        {"trusted_origins": ["a.test"]},
        {"trusted_origins": ["https://a.*.test"]},
        {"trusted_origins": ["https://a.test/path"]},
        {"exempt": "/hooks"},
        {"exempt": ["hooks"]},
        {"on_failure": "explode"},
        {"max_body_size": 0},
        {"max_body_size": True},
    ):
        with pytest.raises(ConfigurationError):
            CSRFMiddleware(handler, **kwargs)


@pytest.mark.anyio
async def test_missing_session_middleware_is_a_configuration_error() -> None:
    """Without SessionMiddleware outside, the first request raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match="SessionMiddleware"):
        await call(CSRFMiddleware(Handler()), request_scope(session=False))


@pytest.mark.anyio
async def test_lifespan_passes_through() -> None:
    """Non-HTTP scopes reach the app untouched, with no session needed."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await call(CSRFMiddleware(app), {"type": "lifespan"})
    assert ["lifespan"] == seen


@pytest.mark.anyio
@pytest.mark.parametrize("defer", [False, True])
async def test_server_side_sessions_work_loaded_or_deferred(secret: str, defer: bool) -> None:
    """With a server-side store the secret is read even when the session load was deferred."""
    handler = Handler()
    csrf = CSRFMiddleware(handler)
    app = SessionMiddleware(
        csrf, secret_key_base=secret, store=MemoryStore(), defer_load=["/submit"] if defer else []
    )
    async with client(app) as http:
        token, _ = await fetch_token(http)
        good = await http.post("/submit", headers={"x-csrf-token": token})
        bad = await http.post("/submit", headers={"x-csrf-token": mask_token(b"\0" * 32)})
    assert (200, 403) == (good.status_code, bad.status_code)
    assert 1 == handler.calls
