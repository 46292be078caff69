"""Tests for asgisession.csrf.forms: the token in urlencoded and multipart bodies, the body
limit, replaying the body to the app, and fuzzing of content types and bodies.
"""

from __future__ import annotations

import re
import secrets
import tempfile
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgisession import CSRFMiddleware
from asgisession._types import Message, Receive, Scope, Send
from asgisession.csrf import forms, mask_token
from asgisession.csrf.fields import _form_fields

from .helpers import (
    FORM,
    MP,
    TOKEN,
    Case,
    Handler,
    call,
    multipart,
    request_scope,
    respond,
    run_case,
)

FORM_CASES: dict[str, Case] = {
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
    # Wrong, repeated or non-string fields.
    "other-session-form": Case(
        403, headers=[("content-type", FORM)], body="authenticity_token={other}"
    ),
    "non-ascii-form": Case(403, headers=[("content-type", FORM)], body="authenticity_token=%FF"),
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
    "two-content-types": Case(
        403,
        headers=[("content-type", FORM), ("content-type", FORM)],
        body="authenticity_token={q}",
    ),
    # Body size: max_body_size bounds the bytes read before the token, not the body.
    "token-after-the-limit": Case(
        413, headers=[("content-type", FORM)], body="x=" + "a" * 5000 + "&authenticity_token={q}"
    ),
    "token-before-a-long-field": Case(
        200, headers=[("content-type", FORM)], body="authenticity_token={q}&x=" + "a" * 5000
    ),
    "non-form-large-body": Case(200, headers=TOKEN, body="a" * 5000),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(FORM_CASES.values()), ids=list(FORM_CASES))
async def test_form_battery(case: Case, secret: str) -> None:
    """Each request gets its expected status; on a rejection the handler never runs."""
    await run_case(case, secret)


@pytest.mark.anyio
async def test_body_is_replayed_in_chunks_and_disconnect_follows() -> None:
    """A chunked form body is read whole, replayed once, then receive() goes on."""
    raw = secrets.token_bytes(32)
    token = mask_token(raw)
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())
        await respond(send, b"ok")

    body = f"authenticity_token={token}&x=1".encode()
    incoming: list[Message] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:], "more_body": False},
        {"type": "http.disconnect"},
    ]
    scope = request_scope(raw=raw, headers=[(b"content-type", FORM.encode())])
    recorder = await call(CSRFMiddleware(app), scope, incoming)
    assert 200 == recorder.sent[0]["status"]
    assert {"type": "http.request", "body": body, "more_body": False} == seen[0]
    assert "http.disconnect" == seen[1]["type"]


@pytest.mark.anyio
async def test_no_token_within_the_limit_is_413_and_the_rest_is_not_read() -> None:
    """A form whose token field does not come within max_body_size bytes gets 413 once the
    limit is passed (a large Content-Length alone is no reason: the token may come first);
    the 413 names the option, the header alternative and the field."""
    headers = [(b"content-type", FORM.encode()), (b"content-length", b"999999")]
    incoming: list[Message] = [
        {"type": "http.request", "body": b"a=12345&", "more_body": True},
        {"type": "http.request", "body": b"b=12345&", "more_body": True},
        {"type": "http.request", "body": b"c=12345&", "more_body": True},
    ]
    recorder = await call(
        CSRFMiddleware(Handler(), max_body_size=10), request_scope(headers=headers), incoming
    )
    assert 413 == recorder.sent[0]["status"]
    body = recorder.sent[1]["body"].decode()
    for words in ("max_body_size", "X-CSRF-Token", "authenticity_token", "first 10 bytes"):
        assert words in body
    assert 1 == len(recorder.incoming)


@pytest.mark.anyio
async def test_client_disconnect_while_reading_ends_quietly() -> None:
    """A client that leaves mid-body gets no response, and the app never runs."""
    handler = Handler()
    incoming: list[Message] = [
        {"type": "http.request", "body": b"a=", "more_body": True},
        {"type": "http.disconnect"},
    ]
    recorder = await call(
        CSRFMiddleware(handler), request_scope(headers=[(b"content-type", FORM.encode())]), incoming
    )
    assert [] == recorder.sent
    assert 0 == handler.calls


@pytest.mark.parametrize(
    "body",
    [
        "a=1&b=%20x+y&authenticity_token={token}&c=",
        "authenticity%5Ftoken={token}",  # an encoded name is the same name
        "x=%26&authenticity_token={token}&y=a+b%3D",
        "authenticity_token=a%2Bb+c",  # '+' is a space, '%2B' a plus
    ],
)
def test_urlencoded_bodies_parse_like_the_stdlib(body: str) -> None:
    """The form reader finds the same single value as urllib.parse.parse_qsl."""
    token = mask_token(secrets.token_bytes(32))
    assert re.fullmatch(r"[A-Za-z0-9_-]{86}", token)
    body = body.replace("{token}", token)
    expected = [v for k, v in parse_qsl(body, keep_blank_values=True) if k == "authenticity_token"]
    assert 1 == len(expected)
    assert [expected[0].encode()] == _form_fields(FORM.encode(), body.encode())


# -- fuzzing ------------------------------------------------------------------------------

_BCHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?"


async def _status(content_type: bytes, body: bytes, raw: bytes) -> int:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await respond(send, b"ok")

    headers = [(b"content-type", content_type)]
    recorder = await call(
        CSRFMiddleware(app, max_body_size=2048),
        request_scope(raw=raw, headers=headers),
        [{"type": "http.request", "body": body}],
    )
    status: int = recorder.sent[0]["status"]
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


class _Spools:
    """Every SpooledTemporaryFile the reader makes, to check each was closed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[tempfile.SpooledTemporaryFile[bytes]] = []
        original = tempfile.SpooledTemporaryFile

        def make(*args: Any, **kwargs: Any) -> tempfile.SpooledTemporaryFile[bytes]:
            spool: tempfile.SpooledTemporaryFile[bytes] = original(*args, **kwargs)
            self.made.append(spool)
            return spool

        monkeypatch.setattr(tempfile, "SpooledTemporaryFile", make)


SPOOL_PATHS = ["accepted", "refused", "too-large", "disconnected", "late-repeat"]


@pytest.mark.anyio
@pytest.mark.parametrize("path", SPOOL_PATHS)
async def test_the_read_ahead_is_closed_on_every_path(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader's spool (memory, or a temporary file past 256 KiB) is closed when the
    request ends, whatever the verdict: nothing is left to the garbage collector."""
    spools = _Spools(monkeypatch)
    monkeypatch.setattr(forms, "_SPILL_AT", 8)  # so the late-repeat body streams on
    raw = secrets.token_bytes(32)
    token = mask_token(raw)
    form = [(b"content-type", FORM.encode())]
    options: dict[str, Any] = {}
    if path == "accepted":
        incoming: list[Message] = [
            {"type": "http.request", "body": f"authenticity_token={token}".encode()}
        ]
    elif path == "refused":
        incoming = [{"type": "http.request", "body": b"authenticity_token=forged"}]
    elif path == "too-large":
        incoming = [{"type": "http.request", "body": b"a=123456789&", "more_body": True}] * 3
        options["max_body_size"] = 10
    elif path == "disconnected":
        incoming = [{"type": "http.request", "body": b"a=", "more_body": True}]
        incoming.append({"type": "http.disconnect"})
    else:
        first = f"authenticity_token={token}&x=1&".encode()
        incoming = [
            {"type": "http.request", "body": first, "more_body": True},
            {"type": "http.request", "body": f"authenticity_token={token}".encode()},
        ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body", False):
            pass
        await respond(send, b"ok")

    await call(CSRFMiddleware(app, **options), request_scope(raw=raw, headers=form), incoming)
    assert spools.made, "the reader made no spool: the test does not test it"
    assert all(spool.closed for spool in spools.made)
