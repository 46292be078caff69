"""Tests for asgisession.csrf.tokens: masking, matching, csrf_token, and the token's life.

The battery rows here send the token in the X-CSRF-Token header; form bodies are in
test_forms.py, origins in test_origin.py.
"""

from __future__ import annotations

import base64
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgisession import ConfigurationError, CSRFMiddleware, Session, csrf_token
from asgisession._types import Scope
from asgisession.crypto import b64url_decode, b64url_encode
from asgisession.csrf import SESSION_KEY, mask_token, token_matches
from asgisession.csrf.tokens import _decode_secret, _global_token
from asgisession.session import LoadedState

from .helpers import (
    FORM,
    TOKEN,
    Case,
    Handler,
    build,
    call,
    client,
    fetch_token,
    global_token,
    masked,
    request_scope,
    run_case,
)

HEADER = b"x-csrf-token"


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
    secret = _decode_secret(stored)
    assert secret is not None
    assert bytes.fromhex(RAILS_RAW) == secret
    assert bytes.fromhex(RAILS_GLOBAL) == _global_token(secret)
    assert token_matches(secret, rails_masked)
    pad = bytes.fromhex(pad_hex)
    assert rails_masked == b64url_encode(
        pad + bytes(a ^ b for a, b in zip(pad, _global_token(secret), strict=True))
    )


# -- the header token through the middleware ----------------------------------------------

TOKEN_CASES: dict[str, Case] = {
    "post-header-token": Case(200, headers=TOKEN),
    "delete-header-token": Case(200, method="DELETE", headers=TOKEN),
    "json-header-token": Case(
        200, headers=[("content-type", "application/json"), *TOKEN], body="{}"
    ),
    # Wrong tokens.
    "other-session-header": Case(403, headers=[("x-csrf-token", "{other}")]),
    "unmasked-raw-secret": Case(403, headers=[("x-csrf-token", "{raw}")]),
    "masked-raw-secret": Case(200, headers=[("x-csrf-token", "{masked_raw}")]),
    "truncated-token": Case(403, headers=[("x-csrf-token", "{token85}")]),
    "padded-token": Case(403, headers=[("x-csrf-token", "{token}==")]),
    "std-alphabet-token": Case(403, headers=[("x-csrf-token", "{token_std}")]),
    "garbage-token": Case(403, headers=[("x-csrf-token", "not a token")]),
    "non-ascii-header": Case(403, headers=[("x-csrf-token", b"\xff" * 86)]),
    "repeated-header": Case(403, headers=[("x-csrf-token", "{token}"), *TOKEN]),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(TOKEN_CASES.values()), ids=list(TOKEN_CASES))
async def test_header_token_battery(case: Case, secret: str) -> None:
    """Each request gets its expected status; on a rejection the handler never runs."""
    await run_case(case, secret)


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
    recorder = await call(
        CSRFMiddleware(Handler()),
        request_scope(raw=raw, headers=headers),
        [{"type": "http.request", "body": body}],
    )
    assert 403 == recorder.sent[0]["status"]
