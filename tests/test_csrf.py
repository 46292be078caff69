"""Tests for asgisession.csrf: token helpers, CSRFMiddleware's attack battery, and fuzzing.

The battery drives one protected app through httpx.ASGITransport with a real session
cookie; every row states the request and the expected status, and a call counter proves
the handler never ran on a rejection.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI, Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from asgisession import (
    ConfigurationError,
    CSRFMiddleware,
    CSRFReason,
    Session,
    SessionMiddleware,
    csrf_token,
)
from asgisession._types import ASGIApp, Message, Receive, Scope, Send
from asgisession.crypto import b64url_decode, b64url_encode
from asgisession.csrf import SESSION_KEY, mask_token, token_matches
from asgisession.session import LoadedState

TRUSTED = ["https://*.example.com", "https://partner.test"]


# -- helpers ------------------------------------------------------------------------------


def masked(secret: bytes, value: bytes) -> str:
    """``value`` masked with a random pad, the way Rails masks tokens."""
    pad = secrets.token_bytes(32)
    return b64url_encode(pad + bytes(a ^ b for a, b in zip(pad, value, strict=True)))


def global_token(secret: bytes) -> bytes:
    return hmac.new(secret, b"!real_csrf_token", hashlib.sha256).digest()


class Handler:
    """The protected app: counts its calls and echoes the body it received."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: list[bytes] = []
        self.sessions: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        session = scope["session"]
        if scope["path"] == "/token":
            token = csrf_token(scope)
            payload = {"token": token, "raw": session[SESSION_KEY]}
            await _respond(send, json.dumps(payload).encode())
            return
        self.calls += 1
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(b"".join(chunks))
        if scope["path"] == "/regenerate":
            session.regenerate()
        elif scope["path"] == "/reset":
            session.reset()
        elif scope["path"] == "/write":
            session["written"] = True
        self.sessions.append(dict(session))
        await _respond(send, b"".join(chunks), [(b"vary", b"Accept-Encoding, origin")])


async def _respond(send: Send, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


def build(secret: str, handler: ASGIApp, **options: Any) -> ASGIApp:
    options.setdefault("trusted_origins", TRUSTED)
    options.setdefault("exempt", ["/webhooks/"])
    options.setdefault("max_body_size", 4096)
    return SessionMiddleware(CSRFMiddleware(handler, **options), secret_key_base=secret)


def client(app: ASGIApp, scheme: str = "http") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://testserver"
    )


async def fetch_token(http: httpx.AsyncClient) -> tuple[str, bytes]:
    """A masked token and the raw secret, from the app's /token page."""
    response = await http.get("/token")
    data = response.json()
    return data["token"], b64url_decode(data["raw"])


def multipart(boundary: str, fields: Sequence[tuple[str, str]], filename: bool = False) -> bytes:
    out = b""
    for name, value in fields:
        disposition = f'form-data; name="{name}"' + ('; filename="a.txt"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n".encode()
    return out + f"--{boundary}--\r\n".encode()


# -- 1. token helpers ---------------------------------------------------------------------


def test_masked_tokens_are_86_chars_and_never_repeat() -> None:
    """Each mask_token() call gives a new 86-character token for the same secret."""
    secret = secrets.token_bytes(32)
    tokens = {mask_token(secret) for _ in range(20)}
    assert 20 == len(tokens)
    assert {86} == {len(token) for token in tokens}


def test_masked_token_unmasks_to_the_rails_global_token() -> None:
    """pad + (pad XOR HMAC-SHA256(secret, '!real_csrf_token')), as Rails 6.1+ builds it."""
    secret = secrets.token_bytes(32)
    decoded = b64url_decode(mask_token(secret))
    unmasked = bytes(a ^ b for a, b in zip(decoded[:32], decoded[32:], strict=True))
    assert global_token(secret) == unmasked


def test_rails_style_tokens_are_accepted() -> None:
    """A token masked independently (Rails' way), of the global or the raw token, passes."""
    secret = secrets.token_bytes(32)
    assert token_matches(secret, masked(secret, global_token(secret)))
    assert token_matches(secret, masked(secret, secret))


def test_unmasked_secret_needs_allow_unmasked() -> None:
    """The raw 43-character secret is refused unless allow_unmasked is set."""
    secret = secrets.token_bytes(32)
    assert False is token_matches(secret, b64url_encode(secret))
    assert True is token_matches(secret, b64url_encode(secret), allow_unmasked=True)


@pytest.mark.parametrize(
    "token",
    ["", "x", "a" * 85, "a" * 87, "é" * 86, "+" * 86, "=" * 86, "a" * 86 + "==", "\x00" * 86],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    """Wrong lengths, foreign characters and padding are refused without an error."""
    assert False is token_matches(secrets.token_bytes(32), token)


def test_csrf_token_creates_the_secret_once() -> None:
    """The first call stores a 43-character secret; later calls reuse it."""
    session = Session(lambda: LoadedState())
    scope: Scope = {"type": "http", "session": session}
    first = csrf_token(scope)
    stored = session[SESSION_KEY]
    second = csrf_token(scope)
    assert 43 == len(stored)
    assert stored == session[SESSION_KEY]
    assert first != second
    secret = b64url_decode(stored)
    assert token_matches(secret, first)
    assert token_matches(secret, second)


def test_csrf_token_reads_rails_61_padded_secrets() -> None:
    """A secret stored by Rails 6.1 (44 characters with '=') is used, not replaced."""
    secret = secrets.token_bytes(32)
    padded = base64.urlsafe_b64encode(secret).decode()
    session = Session(lambda: LoadedState(data={SESSION_KEY: padded}))
    token = csrf_token({"type": "http", "session": session})
    assert padded == session[SESSION_KEY]
    assert token_matches(secret, token)


def test_csrf_token_without_session_middleware_is_a_configuration_error() -> None:
    """Calling csrf_token() with no session in the scope names the fix."""
    with pytest.raises(ConfigurationError, match="SessionMiddleware"):
        csrf_token({"type": "http"})


# -- 2-5. the attack battery --------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request against the protected app and the status it must get."""

    status: int
    method: str = "POST"
    path: str = "/submit"
    headers: Sequence[tuple[str, str | bytes]] = ()
    body: str = ""
    scheme: str = "http"


FORM = "application/x-www-form-urlencoded"
MP = "multipart/form-data; boundary=XyZ"
TOKEN = [("x-csrf-token", "{token}")]
SAME = [("sec-fetch-site", "same-origin")]

BATTERY: dict[str, Case] = {
    # Safe methods pass without a token.
    "get-no-token": Case(200, method="GET"),
    "head-no-token": Case(200, method="HEAD"),
    "options-no-token": Case(200, method="OPTIONS"),
    # Unsafe methods need the token.
    "post-no-token": Case(403),
    "put-no-token": Case(403, method="PUT"),
    "patch-no-token": Case(403, method="PATCH"),
    "delete-no-token": Case(403, method="DELETE"),
    "post-header-token": Case(200, headers=TOKEN),
    "delete-header-token": Case(200, method="DELETE", headers=TOKEN),
    "form-token": Case(200, headers=[("content-type", FORM)], body="a=1&authenticity_token={q}"),
    "form-token-charset": Case(
        200, headers=[("content-type", FORM + "; charset=UTF-8")], body="authenticity_token={q}"
    ),
    "multipart-token": Case(200, headers=[("content-type", MP)], body="{multipart}"),
    "header-wrong-form-right": Case(
        200,
        headers=[("x-csrf-token", "{other}"), ("content-type", FORM)],
        body="authenticity_token={q}",
    ),
    # Wrong tokens.
    "other-session-header": Case(403, headers=[("x-csrf-token", "{other}")]),
    "other-session-form": Case(
        403, headers=[("content-type", FORM)], body="authenticity_token={other}"
    ),
    "unmasked-raw-secret": Case(403, headers=[("x-csrf-token", "{raw}")]),
    "masked-raw-secret": Case(200, headers=[("x-csrf-token", "{masked_raw}")]),
    "truncated-token": Case(403, headers=[("x-csrf-token", "{token85}")]),
    "padded-token": Case(403, headers=[("x-csrf-token", "{token}==")]),
    "std-alphabet-token": Case(403, headers=[("x-csrf-token", "{token_std}")]),
    "garbage-token": Case(403, headers=[("x-csrf-token", "not a token")]),
    "non-ascii-header": Case(403, headers=[("x-csrf-token", b"\xff" * 86)]),
    "non-ascii-form": Case(403, headers=[("content-type", FORM)], body="authenticity_token=%FF"),
    "repeated-header": Case(403, headers=[("x-csrf-token", "{token}"), *TOKEN]),
    "repeated-form-field": Case(
        403,
        headers=[("content-type", FORM)],
        body="authenticity_token={q}&authenticity_token={q}",
    ),
    "array-form-field": Case(
        403, headers=[("content-type", FORM)], body="authenticity_token[]={q}"
    ),
    "hash-form-field": Case(
        403, headers=[("content-type", FORM)], body="authenticity_token[a]={q}"
    ),
    "repeated-multipart-field": Case(403, headers=[("content-type", MP)], body="{multipart_twice}"),
    "multipart-file-field": Case(403, headers=[("content-type", MP)], body="{multipart_file}"),
    "multipart-no-boundary": Case(
        403, headers=[("content-type", "multipart/form-data")], body="{multipart}"
    ),
    # The content type never replaces the token.
    "text-plain-body-token": Case(
        403, headers=[("content-type", "text/plain")], body="authenticity_token={q}"
    ),
    "json-body-token": Case(
        403, headers=[("content-type", "application/json")], body='{"authenticity_token":"{t}"}'
    ),
    "json-header-token": Case(
        200, headers=[("content-type", "application/json"), *TOKEN], body="{}"
    ),
    "two-content-types": Case(
        403,
        headers=[("content-type", FORM), ("content-type", FORM)],
        body="authenticity_token={q}",
    ),
    # Method overrides never make a request safe.
    "method-param-get": Case(403, headers=[("content-type", FORM)], body="_method=GET"),
    "method-override-header": Case(403, headers=[("x-http-method-override", "GET")]),
    # Sec-Fetch-Site.
    "sfs-same-origin": Case(200, headers=[*SAME, *TOKEN]),
    "sfs-same-origin-upper": Case(200, headers=[("sec-fetch-site", "Same-Origin"), *TOKEN]),
    "sfs-none": Case(200, headers=[("sec-fetch-site", "none"), *TOKEN]),
    "sfs-cross-site": Case(403, headers=[("sec-fetch-site", "cross-site"), *TOKEN]),
    "sfs-cross-site-upper": Case(403, headers=[("sec-fetch-site", "CROSS-SITE"), *TOKEN]),
    "sfs-same-site": Case(403, headers=[("sec-fetch-site", "same-site"), *TOKEN]),
    "sfs-unknown": Case(403, headers=[("sec-fetch-site", "whatever"), *TOKEN]),
    "sfs-repeated": Case(403, headers=[*SAME, ("sec-fetch-site", "cross-site"), *TOKEN]),
    "sfs-cross-trusted-wildcard": Case(
        200,
        headers=[("sec-fetch-site", "cross-site"), ("origin", "https://app.example.com"), *TOKEN],
    ),
    "sfs-cross-trusted-exact": Case(
        200, headers=[("sec-fetch-site", "cross-site"), ("origin", "https://partner.test"), *TOKEN]
    ),
    "sfs-cross-apex-not-trusted": Case(
        403, headers=[("sec-fetch-site", "cross-site"), ("origin", "https://example.com"), *TOKEN]
    ),
    "sfs-cross-lookalike": Case(
        403,
        headers=[("sec-fetch-site", "cross-site"), ("origin", "https://evilexample.com"), *TOKEN],
    ),
    "sfs-cross-wrong-scheme": Case(
        403,
        headers=[("sec-fetch-site", "cross-site"), ("origin", "http://app.example.com"), *TOKEN],
    ),
    "sfs-same-origin-no-token": Case(403, headers=SAME),
    # Origin without Sec-Fetch-Site.
    "origin-own": Case(200, headers=[("origin", "http://testserver"), *TOKEN]),
    "origin-own-upper": Case(200, headers=[("origin", "HTTP://TESTSERVER:80"), *TOKEN]),
    "origin-foreign": Case(403, headers=[("origin", "https://evil.test"), *TOKEN]),
    "origin-other-port": Case(403, headers=[("origin", "http://testserver:8080"), *TOKEN]),
    "origin-other-scheme": Case(403, headers=[("origin", "https://testserver"), *TOKEN]),
    "origin-null": Case(403, headers=[("origin", "null"), *TOKEN]),
    "origin-garbage": Case(403, headers=[("origin", "http://[bad"), *TOKEN]),
    "origin-trusted": Case(200, headers=[("origin", "https://partner.test"), *TOKEN]),
    "origin-repeated": Case(
        403, headers=[("origin", "http://testserver"), ("origin", "http://testserver"), *TOKEN]
    ),
    "forwarded-host-not-trusted": Case(
        403,
        headers=[("x-forwarded-host", "evil.test"), ("origin", "http://evil.test"), *TOKEN],
    ),
    # https: Referer when there is no Origin.
    "https-no-origin-no-referer": Case(403, headers=TOKEN, scheme="https"),
    "https-referer-own": Case(
        200, headers=[("referer", "https://testserver/form"), *TOKEN], scheme="https"
    ),
    "https-referer-foreign": Case(
        403, headers=[("referer", "https://evil.test/form"), *TOKEN], scheme="https"
    ),
    "https-referer-http": Case(
        403, headers=[("referer", "http://testserver/form"), *TOKEN], scheme="https"
    ),
    "https-referer-trusted": Case(
        200, headers=[("referer", "https://a.example.com/x"), *TOKEN], scheme="https"
    ),
    "https-origin-own": Case(
        200, headers=[("origin", "https://testserver"), *TOKEN], scheme="https"
    ),
    # Exemptions.
    "exempt-prefix": Case(200, path="/webhooks/stripe"),
    "exempt-prefix-bare": Case(200, path="/webhooks"),
    "exempt-lookalike": Case(403, path="/webhooksevil"),
    "exempt-encoded-slash": Case(403, path="/webhooks%2F..%2Fsubmit"),
    "exempt-double-slash": Case(403, path="/webhooks//x"),
    # Body size.
    "form-too-large": Case(
        413, headers=[("content-type", FORM)], body="authenticity_token={q}&x=" + "a" * 5000
    ),
    "non-form-large-body": Case(200, headers=TOKEN, body="a" * 5000),
}


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(BATTERY.values()), ids=list(BATTERY))
async def test_attack_battery(case: Case, secret: str) -> None:
    """Each request gets its expected status; on a rejection the handler never runs."""
    handler = Handler()
    app = build(secret, handler)
    async with client(app, case.scheme) as http, client(app, case.scheme) as other:
        token, raw = await fetch_token(http)
        other_token, _ = await fetch_token(other)
        values = {
            "token85": token[:85],
            "token_std": token[:10] + "+" + token[11:],  # a standard-alphabet character
            "token": token,
            "other": other_token,
            "raw": b64url_encode(raw),
            "masked_raw": masked(raw, raw),
            "q": token,
            "t": token,
        }
        values["multipart"] = multipart("XyZ", [("a", "1"), ("authenticity_token", token)]).decode()
        values["multipart_twice"] = multipart(
            "XyZ", [("authenticity_token", token), ("authenticity_token", token)]
        ).decode()
        values["multipart_file"] = multipart("XyZ", [("authenticity_token", token)], True).decode()
        headers = [
            (k.encode(), fill(v, values).encode() if isinstance(v, str) else v)
            for k, v in case.headers
        ]
        body = fill(case.body, values).encode()
        response = await http.request(case.method, case.path, headers=headers, content=body)
    assert case.status == response.status_code, response.text
    if case.status == 200:
        assert 1 == handler.calls
        assert [body] == handler.bodies  # the exact bytes reach the app
    else:
        assert 0 == handler.calls


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
async def test_forbidden_body_is_short_plain_text_and_logged(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 403 carries a short text/plain body; the reason goes to the log."""
    app = build(secret, Handler())
    caplog.set_level("INFO", logger="asgisession.csrf")
    async with client(app) as http:
        response = await http.post("/submit")
    assert 403 == response.status_code
    assert response.headers["content-type"].startswith("text/plain")
    assert len(response.content) < 100
    assert "missing_token" in caplog.text


@pytest.mark.anyio
async def test_forwarded_headers_are_used_only_when_trusted(secret: str) -> None:
    """With trust_forwarded_headers, the proxy's host and scheme make the own origin."""
    handler = Handler()
    app = build(secret, handler, trust_forwarded_headers=True)
    async with client(app) as http:
        token, _ = await fetch_token(http)
        headers = {
            "x-forwarded-proto": "https",
            "x-forwarded-host": "shop.test",
            "origin": "https://shop.test",
            "x-csrf-token": token,
        }
        response = await http.post("/submit", headers=headers)
    assert 200 == response.status_code


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("forwarded_host", "origin", "status"),
    [
        ("evil.test, shop.test", "https://shop.test", 200),
        ("evil.test, shop.test", "https://evil.test", 403),
    ],
    ids=["proxy-value-wins", "client-value-ignored"],
)
async def test_appended_forwarded_headers_use_the_proxy_value(
    secret: str, forwarded_host: str, origin: str, status: int
) -> None:
    """When a proxy appends to X-Forwarded-*, the last (proxy's) value is the own origin."""
    app = build(secret, Handler(), trust_forwarded_headers=True)
    async with client(app) as http:
        token, _ = await fetch_token(http)
        headers = {
            "x-forwarded-proto": "http, https",
            "x-forwarded-host": forwarded_host,
            "origin": origin,
            "x-csrf-token": token,
        }
        response = await http.post("/submit", headers=headers)
    assert status == response.status_code


@pytest.mark.anyio
async def test_same_site_passes_when_allowed(secret: str) -> None:
    """allow_same_site=True lets Sec-Fetch-Site: same-site through the origin check."""
    app = build(secret, Handler(), allow_same_site=True)
    async with client(app) as http:
        token, _ = await fetch_token(http)
        response = await http.post(
            "/submit", headers={"sec-fetch-site": "same-site", "x-csrf-token": token}
        )
    assert 200 == response.status_code


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/regenerate", "/reset"])
async def test_token_rotates_with_regenerate_and_reset(secret: str, path: str) -> None:
    """After session.regenerate() or reset(), a token handed out earlier fails."""
    app = build(secret, Handler())
    async with client(app) as http:
        token, _ = await fetch_token(http)
        assert 200 == (await http.post(path, headers={"x-csrf-token": token})).status_code
        assert 403 == (await http.post("/submit", headers={"x-csrf-token": token})).status_code
        fresh, _ = await fetch_token(http)
        assert 200 == (await http.post("/submit", headers={"x-csrf-token": fresh})).status_code


@pytest.mark.anyio
async def test_safe_methods_never_rotate_the_token(secret: str) -> None:
    """GET requests keep the same secret; every token stays valid."""
    app = build(secret, Handler())
    async with client(app) as http:
        first, raw1 = await fetch_token(http)
        await http.get("/submit")
        _, raw2 = await fetch_token(http)
        assert raw1 == raw2
        assert 200 == (await http.post("/submit", headers={"x-csrf-token": first})).status_code


# -- 4. failure strategies and exemptions -------------------------------------------------


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


@pytest.mark.anyio
async def test_exempt_predicate_sees_the_normalised_path(secret: str) -> None:
    """A predicate exemption is called with the path and can exempt it."""
    seen: list[str] = []

    def exempt(path: str) -> bool:
        seen.append(path)
        return path.startswith("/api/")

    app = build(secret, Handler(), exempt=exempt)
    async with client(app) as http:
        assert 200 == (await http.post("/api/x")).status_code
        assert 403 == (await http.post("/other")).status_code
    assert ["/api/x", "/other"] == seen


@pytest.mark.parametrize(
    ("path", "raw_path", "exempt"),
    [
        ("/webhooks/a", b"/webhooks/a", True),
        ("/webhooks/../admin", b"/webhooks/../admin", False),
        ("/webhooks/./a", b"/webhooks/./a", False),
        ("//webhooks/a", b"//webhooks/a", False),
        ("/webhooks/a/b", b"/webhooks%2Fa/b", False),
        ("/webhooks\\..\\admin", b"/webhooks%5C..%5Cadmin", False),
        ("/webhooks/\x00", b"/webhooks/%00", False),
    ],
)
@pytest.mark.anyio
async def test_exemption_path_tricks(path: str, raw_path: bytes, exempt: bool) -> None:
    """Only a path already in normal form can be exempt; tricks get the full checks."""
    handler = Handler()
    app = CSRFMiddleware(handler, exempt=["/webhooks/"])
    scope = _scope(path=path, raw_path=raw_path)
    sent = await _call(app, scope)
    assert (200 if exempt else 403) == sent[0]["status"]


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
        await _call(CSRFMiddleware(Handler()), _scope(session=False))


@pytest.mark.anyio
async def test_lifespan_passes_through() -> None:
    """Non-HTTP scopes reach the app untouched, with no session needed."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await CSRFMiddleware(app)({"type": "lifespan"}, _receive([]), _sink([]))
    assert ["lifespan"] == seen


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("origin", "opt_in", "accepted"),
    [
        (b"https://evil.test", True, False),
        (b"http://testserver", True, True),
        (b"https://evil.test", False, True),
        (b"", True, True),  # no Origin on wss: not a browser, and no Referer rule
    ],
)
async def test_websocket_origin_check_is_opt_in(
    origin: bytes, opt_in: bool, accepted: bool
) -> None:
    """check_websocket_origin refuses a foreign Origin at the handshake."""
    ran: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ran.append(True)

    scope = _scope(scope_type="websocket", headers=[(b"origin", origin)] if origin else [])
    if origin == b"":
        scope["scheme"] = "wss"
    sent: list[Message] = []
    await CSRFMiddleware(app, check_websocket_origin=opt_in)(scope, _receive([]), _sink(sent))
    assert accepted == bool(ran)
    assert ([] if accepted else [{"type": "websocket.close", "code": 1008}]) == sent


@pytest.mark.anyio
async def test_body_is_replayed_in_chunks_and_disconnect_follows(secret: str) -> None:
    """A chunked form body is read whole, replayed once, then receive() goes on."""
    raw = secrets.token_bytes(32)
    token = mask_token(raw)
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())
        await _respond(send, b"ok")

    body = f"authenticity_token={token}&x=1".encode()
    incoming: list[Message] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:], "more_body": False},
        {"type": "http.disconnect"},
    ]
    scope = _scope(raw=raw, headers=[(b"content-type", FORM.encode())])
    sent: list[Message] = []
    await CSRFMiddleware(app)(scope, _receive(incoming), _sink(sent))
    assert 200 == sent[0]["status"]
    assert {"type": "http.request", "body": body, "more_body": False} == seen[0]
    assert "http.disconnect" == seen[1]["type"]


@pytest.mark.anyio
async def test_content_length_over_the_limit_is_413_before_reading() -> None:
    """A declared Content-Length over max_body_size gets 413 without reading the body."""
    incoming: list[Message] = [{"type": "http.request", "body": b"x"}]
    headers = [(b"content-type", FORM.encode()), (b"content-length", b"999999")]
    sent = await _call(
        CSRFMiddleware(Handler(), max_body_size=10), _scope(headers=headers), incoming
    )
    assert 413 == sent[0]["status"]
    assert 1 == len(incoming)


@pytest.mark.anyio
async def test_client_disconnect_while_reading_ends_quietly() -> None:
    """A client that leaves mid-body gets no response, and the app never runs."""
    handler = Handler()
    incoming: list[Message] = [
        {"type": "http.request", "body": b"a=", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent = await _call(
        CSRFMiddleware(handler), _scope(headers=[(b"content-type", FORM.encode())]), incoming
    )
    assert [] == sent
    assert 0 == handler.calls


# -- raw ASGI helpers ---------------------------------------------------------------------


def _scope(
    *,
    path: str = "/submit",
    raw_path: bytes | None = None,
    method: str = "POST",
    headers: Sequence[tuple[bytes, bytes]] = (),
    scope_type: str = "http",
    session: bool = True,
    raw: bytes | None = None,
) -> Scope:
    scope: Scope = {
        "type": scope_type,
        "method": method,
        "scheme": "http" if scope_type == "http" else "ws",
        "path": path,
        "raw_path": path.encode() if raw_path is None else raw_path,
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "server": ("testserver", 80),
    }
    if session:
        data = {} if raw is None else {SESSION_KEY: b64url_encode(raw)}
        scope["session"] = Session(lambda: LoadedState(data=dict(data)))
    return scope


def _receive(incoming: list[Message]) -> Receive:
    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        return {"type": "http.disconnect"}

    return receive


def _sink(sent: list[Message]) -> Send:
    async def send(message: Message) -> None:
        sent.append(message)

    return send


async def _call(app: ASGIApp, scope: Scope, incoming: list[Message] | None = None) -> list[Message]:
    sent: list[Message] = []
    messages: list[Message] = (
        [{"type": "http.request", "body": b""}] if incoming is None else incoming
    )
    await app(scope, _receive(messages), _sink(sent))
    return sent


# -- 6. fuzzing ---------------------------------------------------------------------------

_BCHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?"


async def _status(content_type: bytes, body: bytes, raw: bytes) -> int:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await _respond(send, b"ok")

    headers = [(b"content-type", content_type)]
    sent = await _call(
        CSRFMiddleware(app, max_body_size=2048),
        _scope(raw=raw, headers=headers),
        [{"type": "http.request", "body": body}],
    )
    status: int = sent[0]["status"]
    return status


@pytest.mark.anyio
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content_type=st.one_of(
        st.binary(max_size=80),
        st.builds(
            lambda kind, params: kind + params,
            st.sampled_from(
                [
                    b"multipart/form-data",
                    b"application/x-www-form-urlencoded",
                    b"MULTIPART/Form-Data",
                ]
            ),
            st.text(alphabet='; =" \\\tboundaryXyZ\x00é', max_size=40).map(
                lambda s: s.encode("utf-8")
            ),
        ),
    ),
    body=st.binary(max_size=300),
)
async def test_fuzzed_content_types_never_crash(content_type: bytes, body: bytes) -> None:
    """Any Content-Type and body gives 2xx, 403 or another 4xx, never an exception or 5xx."""
    status = await _status(content_type, body, secrets.token_bytes(32))
    assert 200 <= status < 500


@pytest.mark.anyio
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    boundary=st.text(alphabet=_BCHARS, min_size=1, max_size=70).filter(
        lambda b: not b.endswith(" ")
    ),
    others=st.lists(
        st.tuples(st.text(alphabet="abcxyz_[]", min_size=1, max_size=8), st.text(max_size=20)),
        max_size=4,
    ),
    position=st.integers(min_value=0, max_value=4),
    quoted=st.booleans(),
)
async def test_fuzzed_valid_multipart_finds_the_token(
    boundary: str, others: list[tuple[str, str]], position: int, quoted: bool
) -> None:
    """A well-formed multipart body with one token field passes, whatever the boundary."""
    raw = secrets.token_bytes(32)
    fields = [
        (name, value.replace("\r", "").replace("\n", "").replace("-", ""))
        for name, value in others
        if not name.startswith("authenticity_token")
    ]
    fields.insert(min(position, len(fields)), ("authenticity_token", mask_token(raw)))
    spelled = f'"{boundary}"' if quoted or " " in boundary else boundary
    content_type = f"multipart/form-data; boundary={spelled}".encode()
    body = multipart(boundary, fields)
    if len(body) > 2048:
        return
    assert 200 == await _status(content_type, body, raw)


@pytest.mark.anyio
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # (position, new byte) pairs; positions wrap around the body's length. Drawn up front:
    # st.data() inside an async test leaks hypothesis' StopTest into the event loop.
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
    cut=st.integers(min_value=0, max_value=400),
)
async def test_fuzzed_broken_multipart_never_crashes(
    flips: list[tuple[int, int]], cut: int
) -> None:
    """Truncated or corrupted multipart bodies are 403 or 200, never a crash."""
    raw = secrets.token_bytes(32)
    body = bytearray(multipart("Bd", [("a", "1"), ("authenticity_token", mask_token(raw))]))
    for position, value in flips:
        body[position % len(body)] = value
    status = await _status(b"multipart/form-data; boundary=Bd", bytes(body[:cut]), raw)
    assert status in (200, 403)


def test_urlencoded_bodies_parse_like_the_stdlib() -> None:
    """The form reader finds the same single value as urllib.parse.parse_qsl."""
    token = mask_token(secrets.token_bytes(32))
    body = f"a=1&b=%20x+y&authenticity_token={token}&c="
    expected = [v for k, v in parse_qsl(body, keep_blank_values=True) if k == "authenticity_token"]
    assert [token] == expected
    assert re.fullmatch(r"[A-Za-z0-9_-]{86}", token)


# -- real frameworks ----------------------------------------------------------------------

_HIDDEN = re.compile(r'name="authenticity_token" value="([A-Za-z0-9_-]+)"')


def starlette_app(secret: str) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    async def form(request: Request) -> HTMLResponse:
        token = csrf_token(request.scope)
        return HTMLResponse(
            '<form method="post" action="/comment">'
            f'<input type="hidden" name="authenticity_token" value="{token}">'
            '<input name="text"></form>'
        )

    async def comment(request: Request) -> JSONResponse:
        fields = dict(parse_qsl((await request.body()).decode()))
        request.session.setdefault("comments", [])
        request.session["comments"] = [*request.session["comments"], fields["text"]]
        return JSONResponse(request.session["comments"])

    async def login(request: Request) -> JSONResponse:
        session: Session = request.scope["session"]
        session.regenerate()
        session["user"] = "ada"
        return JSONResponse({"user": "ada"})

    return Starlette(
        routes=[
            Route("/form", form),
            Route("/comment", comment, methods=["POST"]),
            Route("/login", login, methods=["POST"]),
        ],
        middleware=[
            Middleware(SessionMiddleware, secret_key_base=secret),
            Middleware(CSRFMiddleware, trusted_origins=TRUSTED),
        ],
    )


@pytest.mark.anyio
@pytest.mark.integration
async def test_starlette_html_form_posts_the_token_across_requests(secret: str) -> None:
    """A Starlette page's hidden field token lets the form post; login makes it stale."""
    async with client(starlette_app(secret)) as http:
        page = await http.get("/form")
        match = _HIDDEN.search(page.text)
        assert match is not None
        token = match.group(1)
        first = await http.post("/comment", data={"authenticity_token": token, "text": "hi"})
        again = await http.post("/comment", data={"authenticity_token": token, "text": "yo"})
        bare = await http.post("/comment", data={"text": "forged"})
        assert 200 == (await http.post("/login", headers={"x-csrf-token": token})).status_code
        stale = await http.post("/comment", data={"authenticity_token": token, "text": "x"})
    assert (200, ["hi"]) == (first.status_code, first.json())
    assert (200, ["hi", "yo"]) == (again.status_code, again.json())
    assert 403 == bare.status_code
    assert 403 == stale.status_code


class Item(BaseModel):
    """A FastAPI body model (module level, so FastAPI can resolve the annotations)."""

    name: str


api = FastAPI()


@api.get("/csrf")
async def fastapi_token(request: Request) -> dict[str, str]:
    return {"token": csrf_token(request.scope)}


@api.post("/items")
async def fastapi_create(item: Item) -> dict[str, str]:
    return {"created": item.name}


@api.post("/raw")
async def fastapi_raw(request: Request) -> dict[str, str]:
    return {"body": (await request.body()).decode()}


@pytest.mark.anyio
@pytest.mark.integration
async def test_fastapi_header_and_form_tokens(secret: str) -> None:
    """FastAPI: a JSON body with X-CSRF-Token passes; a form body reaches the handler intact."""
    app = SessionMiddleware(CSRFMiddleware(api), secret_key_base=secret)
    async with client(app) as http:
        value = (await http.get("/csrf")).json()["token"]
        created = await http.post("/items", json={"name": "a"}, headers={"x-csrf-token": value})
        refused = await http.post("/items", json={"name": "b"})
        form = await http.post("/raw", data={"authenticity_token": value, "q": "1 2"})
    assert (200, {"created": "a"}) == (created.status_code, created.json())
    assert 403 == refused.status_code
    assert {"body": f"authenticity_token={value}&q=1+2"} == form.json()


@pytest.mark.anyio
@pytest.mark.parametrize("defer", [False, True])
async def test_server_side_sessions_work_loaded_or_deferred(secret: str, defer: bool) -> None:
    """With a server-side store the secret is read even when the session load was deferred."""
    from asgisession.stores.memory import MemoryStore

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


# Recorded from real Rails 6.1 and 7.x apps (shared/rails/vectors.json, "csrf"): the stored
# secret, the global token and one masked token with its pad.
RAILS_VECTORS = [
    pytest.param(
        "fAkIh0DoUOX4iiGxynzKFhh0W0Gafng479TZ6eUAhHk=",
        "3903a697b478ce6aa71e264f3a048d6bddc4aef40583ff7c9e09588d3062d50b",
        "OQOml7R4zmqnHiZPOgSNa93ErvQFg_98nglYjTBi1QvuVKRT4Grh0gA33oKshhHIUSwVxNemPBUz8nt3cEIQTQ",
        id="rails-6.1-padded",
    ),
    pytest.param(
        "fAkIh0DoUOX4iiGxynzKFhh0W0Gafng479TZ6eUAhHk",
        "921e72812c599d4008ffa120190841997c9a08c68e06e91d01d2d61552474d65",
        "kh5ygSxZnUAI_6EgGQhBmXyaCMaOBukdAdLWFVJHTWVFSXBFeEuy-K_WWe2Pit068HKz9lwjKnSsKfXvEmeIIw",
        id="rails-7-unpadded",
    ),
]
RAILS_RAW = "7c09088740e850e5f88a21b1ca7cca1618745b419a7e7838efd4d9e9e5008479"
RAILS_GLOBAL = "d75702c454122fb8a729f8cd96829ca38ce8bb30d225c369adfb23fa4020c546"


@pytest.mark.parametrize(("stored", "pad_hex", "rails_masked"), RAILS_VECTORS)
def test_rails_recorded_tokens(stored: str, pad_hex: str, rails_masked: str) -> None:
    """Rails' stored secret decodes, its masked token verifies, and ours masks identically."""
    from asgisession.csrf import _decode_secret, _global_token

    secret = _decode_secret(stored)
    assert bytes.fromhex(RAILS_RAW) == secret
    assert bytes.fromhex(RAILS_GLOBAL) == _global_token(secret)
    assert token_matches(secret, rails_masked)
    pad = bytes.fromhex(pad_hex)
    assert rails_masked == b64url_encode(
        pad + bytes(a ^ b for a, b in zip(pad, _global_token(secret), strict=True))
    )


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
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.binary(max_size=120), in_header=st.booleans())
async def test_fuzzed_token_values_are_refused_quietly(value: bytes, in_header: bool) -> None:
    """Arbitrary bytes as the header or form token give 403, never an error."""
    raw = secrets.token_bytes(32)
    headers = [(b"content-type", FORM.encode())]
    body = b"authenticity_token=" + value
    if in_header:
        headers, body = [(HEADER, value)], b""
    sent = await _call(
        CSRFMiddleware(Handler()),
        _scope(raw=raw, headers=headers),
        [{"type": "http.request", "body": body}],
    )
    assert 403 == sent[0]["status"]


HEADER = b"x-csrf-token"
