"""Property-based tests: the Cookie parser, the cookie codecs, the middleware under any
Cookie header, and CSRF body parsing under any body. Any input gives an empty session or a
4xx, never an exception and never a 5xx.

Example counts come from a hypothesis profile sized for CI; for a deeper local run, set
``ASGISESSION_HYPOTHESIS_PROFILE=reliability-deep``.
"""

from __future__ import annotations

import itertools
import os
import secrets
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from asgisession import CSRFMiddleware, SessionMiddleware
from asgisession._types import Message, Receive, Scope, Send
from asgisession.cookies import (
    MAX_COOKIE_HEADER_SIZE,
    cookie_header_size,
    cookie_values,
    iter_cookies,
)
from asgisession.crypto import (
    Keyring,
    MessageCodec,
    MessageEncryptor,
    MessageVerifier,
    b64url_decode,
    b64url_encode,
)
from asgisession.csrf import _form_fields, mask_token
from asgisession.errors import InvalidMessage, RejectReason
from asgisession.jar import cookies
from asgisession.stores.memory import MemoryStore

from ..asgi_helpers import Recorder

settings.register_profile(
    "reliability",
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "reliability-deep", parent=settings.get_profile("reliability"), max_examples=5000
)
PROFILE = settings.get_profile(os.environ.get("ASGISESSION_HYPOTHESIS_PROFILE", "reliability"))

SECRET = "b7f3c0d9e8a1f2436587a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e"
NOW = 1_800_000_000
KEYRING = Keyring(SECRET)
CODECS: dict[str, MessageCodec] = {
    "encrypted": MessageEncryptor(KEYRING),
    "signed": MessageVerifier(KEYRING),
}

# -- strategies ----------------------------------------------------------------------------

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
OCTET_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')
names = st.text(TOKEN_CHARS, min_size=1, max_size=12)
octets = st.text(OCTET_CHARS, max_size=30)
#: Bytes that make cookie parsing interesting, weighted towards its separators.
NASTY = b' \t;=,"\\\x00\r\n\x7f\x80\xff\xc3\xa9sesion'
nasty_bytes = st.one_of(
    st.binary(max_size=120),
    st.lists(st.sampled_from([bytes([b]) for b in NASTY]), max_size=120).map(b"".join),
)
cookie_headers = st.lists(
    st.one_of(
        nasty_bytes,
        nasty_bytes.map(lambda junk: b"session=" + junk),
        st.builds(lambda a, b: a + b"; session=" + b, nasty_bytes, nasty_bytes),
        st.text(OCTET_CHARS, max_size=200).map(lambda t: b"session=" + t.encode()),
    ),
    max_size=4,
)


# -- the Cookie parser ---------------------------------------------------------------------


@PROFILE
@given(values=st.lists(nasty_bytes, max_size=5))
def test_parser_takes_any_bytes(values: list[bytes]) -> None:
    """Any header bytes parse without error into trimmed, non-empty names and values that
    hold no ';'; and no more pairs than the separators allow."""
    headers = [(b"cookie", value) for value in values]
    pairs = list(iter_cookies(headers))
    assert len(pairs) <= sum(value.count(b";") + 1 for value in values)
    for name, value in pairs:
        assert name
        assert name == name.strip(" \t")
        assert ";" not in name
        assert ";" not in value
        assert "=" not in name
    assert cookie_values(headers, "session") == [v for n, v in pairs if n == "session"]


@PROFILE
@given(cookies_sent=st.lists(st.tuples(names, octets, st.booleans()), max_size=20))
def test_parser_reads_back_what_a_client_sends(cookies_sent: list[tuple[str, str, bool]]) -> None:
    """Well-formed pairs (values optionally in double quotes) read back exactly, in order."""
    header = "; ".join(f'{n}="{v}"' if quoted else f"{n}={v}" for n, v, quoted in cookies_sent)
    parsed = list(iter_cookies([(b"cookie", header.encode())]))
    assert [(n, v) for n, v, _ in cookies_sent] == parsed


@PROFILE
@given(first=nasty_bytes, second=nasty_bytes)
def test_split_headers_read_as_their_concatenation(first: bytes, second: bytes) -> None:
    """Two Cookie headers (HTTP/2 splits them) give the pairs of each, in order."""
    both = list(iter_cookies([(b"cookie", first), (b"x-other", b"a=b"), (b"Cookie", second)]))
    assert (
        list(iter_cookies([(b"cookie", first)])) + list(iter_cookies([(b"cookie", second)])) == both
    )


@PROFILE
@given(sizes=st.lists(st.integers(2, MAX_COOKIE_HEADER_SIZE), min_size=1, max_size=3))
def test_parser_reads_nothing_over_the_cap(sizes: list[int]) -> None:
    """Cookie headers over the cap together yield nothing; at or under it, everything."""
    headers = [(b"cookie", b"a=" + b"x" * (size - 2)) for size in sizes]
    total = cookie_header_size(headers)
    assert total == sum(sizes)
    pairs = list(iter_cookies(headers))
    assert (pairs == []) if total > MAX_COOKIE_HEADER_SIZE else (len(pairs) == len(sizes))


# -- the cookie codecs ---------------------------------------------------------------------


def _open_or_refuse(fmt: str, token: str) -> None:
    with pytest.raises(InvalidMessage) as refused:
        CODECS[fmt].open(token, purpose="session", now=NOW)
    assert isinstance(refused.value.reason, RejectReason)


@pytest.mark.parametrize("fmt", CODECS)
@PROFILE
@given(token=st.one_of(st.text(max_size=300), st.text(OCTET_CHARS, max_size=300)))
def test_codec_refuses_any_string(fmt: str, token: str) -> None:
    """Opening any string raises InvalidMessage with a reason, and nothing else."""
    _open_or_refuse(fmt, token)


@pytest.mark.parametrize("fmt", CODECS)
@PROFILE
@given(raw=st.binary(max_size=300))
def test_codec_refuses_any_bytes_as_token(fmt: str, raw: bytes) -> None:
    """Any bytes, as latin-1 text or as their base64url, are refused with InvalidMessage."""
    _open_or_refuse(fmt, raw.decode("latin-1"))
    _open_or_refuse(fmt, b64url_encode(raw))


@pytest.mark.parametrize("fmt", CODECS)
@PROFILE
@given(
    payload=st.binary(max_size=200),
    purpose=names,
    other=names,
    issued=st.integers(0, 2**40),
    life=st.integers(1, 2**30),
)
def test_codec_round_trips_and_binds_purpose(
    fmt: str, payload: bytes, purpose: str, other: str, issued: int, life: int
) -> None:
    """What is sealed opens to the same payload and times; under another purpose, never."""
    codec = CODECS[fmt]
    token = codec.seal(payload, purpose=purpose, issued_at=issued, expires_at=issued + life)
    opened = codec.open(token, purpose=purpose, now=issued)
    assert (payload, issued, issued + life) == (opened.payload, opened.issued_at, opened.expires_at)
    assume(other != purpose)
    with pytest.raises(InvalidMessage):
        codec.open(token, purpose=other, now=issued)


@PROFILE
@given(text=st.one_of(st.text(max_size=100), st.binary(max_size=100)))
def test_base64url_decoding_is_strict_and_canonical(text: str | bytes) -> None:
    """b64url_decode takes anything: bytes back only for the one canonical spelling."""
    try:
        raw = b64url_decode(text)
    except InvalidMessage:
        return
    spelled = text if isinstance(text, str) else text.decode("ascii")
    assert b64url_encode(raw) == spelled


# -- the middleware under any Cookie header ------------------------------------------------


async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    session = scope["session"]
    jar = cookies(scope)
    body = repr((dict(session), session.rejection, len(jar), jar.signed.get("session")))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


MIDDLEWARES = {
    "cookie": SessionMiddleware(reading_app, secret_key_base=SECRET, clock=lambda: NOW),
    "signed": SessionMiddleware(
        reading_app, secret_key_base=SECRET, cookie_format="signed", clock=lambda: NOW
    ),
    "server": SessionMiddleware(
        reading_app, secret_key_base=SECRET, store=MemoryStore(), clock=lambda: NOW
    ),
}


def http_scope(headers: list[tuple[bytes, bytes]], method: str = "GET") -> Scope:
    return {
        "type": "http",
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "server": ("testserver", 80),
    }


@pytest.mark.anyio
@pytest.mark.parametrize("kind", MIDDLEWARES)
@PROFILE
@given(values=cookie_headers)
async def test_middleware_gives_any_cookie_header_an_empty_session(
    kind: str, values: list[bytes]
) -> None:
    """Any Cookie headers: a 200 with an empty session, nothing written, no Set-Cookie."""
    recorder = Recorder()
    headers = [(b"cookie", value) for value in values]
    await MIDDLEWARES[kind](http_scope(headers), recorder.receive, recorder.send)
    assert 200 == recorder.sent[0]["status"]
    assert recorder.sent[1]["body"].startswith(b"({}, ")
    assert [] == recorder.headers(b"set-cookie")


# -- CSRF body parsing ---------------------------------------------------------------------

CSRF_RAW = secrets.token_bytes(32)
CSRF_SESSION = "session=" + CODECS["encrypted"].seal(
    b'{"_csrf_token":"' + b64url_encode(CSRF_RAW).encode() + b'"}',
    purpose="session",
    issued_at=NOW,
    expires_at=NOW + 3600,
)


async def csrf_app(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


CSRF_STACK = SessionMiddleware(
    CSRFMiddleware(csrf_app, max_body_size=4096), secret_key_base=SECRET, clock=lambda: NOW
)
content_types = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda kind, params: kind + params,
        st.sampled_from(
            [b"application/x-www-form-urlencoded", b"multipart/form-data", b"Multipart/Form-Data"]
        ),
        st.lists(
            st.sampled_from([bytes([b]) for b in b'; =" \\\tboundaryBd\x00\xe9']), max_size=40
        ).map(b"".join),
    ),
    st.just(b"multipart/form-data; boundary=Bd"),
)
bodies = st.one_of(
    st.binary(max_size=600),
    st.lists(
        st.sampled_from(
            [b"&", b"=", b"%", b"%zz", b"+", b"authenticity_token", b"authenticity_token[]",
             b"--Bd", b"\r\n", b'Content-Disposition: form-data; name="authenticity_token"',
             b"\r\n\r\n", b"--", b"\x00", b"\xff", b"TOKEN"]
        ),
        max_size=60,
    ).map(b"".join),
)  # fmt: skip


def _chunks(body: bytes, cuts: list[int]) -> list[Message]:
    points = sorted({cut % (len(body) + 1) for cut in cuts} | {0, len(body)})
    parts = [body[a:b] for a, b in itertools.pairwise(points)] or [b""]
    return [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]


@pytest.mark.anyio
@PROFILE
@given(
    content_type=content_types,
    body=bodies,
    cuts=st.lists(st.integers(0, 10_000), max_size=4),
    with_session=st.booleans(),
    with_header_token=st.sampled_from([None, "good", "junk"]),
)
async def test_csrf_answers_any_body_with_a_2xx_or_4xx(
    content_type: bytes,
    body: bytes,
    cuts: list[int],
    with_session: bool,
    with_header_token: str | None,
) -> None:
    """Any content type, body (sometimes with a real token in it) and chunking, with or
    without a session and header token: 200, 403 or 413, never an exception or a 5xx."""
    token = mask_token(CSRF_RAW)
    body = body.replace(b"TOKEN", token.encode())
    headers = [(b"content-type", content_type)]
    if with_session:
        headers.append((b"cookie", CSRF_SESSION.encode()))
    if with_header_token is not None:
        value = token if with_header_token == "good" else "x" * 86
        headers.append((b"x-csrf-token", value.encode()))
    recorder = Recorder(_chunks(body, cuts))
    await CSRF_STACK(http_scope(headers, method="POST"), recorder.receive, recorder.send)
    status = recorder.sent[0]["status"]
    assert status in (200, 403, 413)
    if with_session and with_header_token == "good":
        assert 200 == status


@pytest.mark.anyio
@PROFILE
@given(prefix=st.binary(max_size=200), suffix=st.binary(max_size=200))
async def test_csrf_finds_a_real_token_among_junk_fields(prefix: bytes, suffix: bytes) -> None:
    """A urlencoded body with one real token field, among junk fields, passes."""
    token = mask_token(CSRF_RAW).encode()
    fields = [part.replace(b"&", b"") for part in (prefix, suffix)]
    keys = [unquote_to_bytes(f.partition(b"=")[0].replace(b"+", b" ")) for f in fields]
    assume(not any(key.startswith(b"authenticity_token") for key in keys))
    body = b"&".join([fields[0], b"authenticity_token=" + token, fields[1]])
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"cookie", CSRF_SESSION.encode()),
    ]
    recorder = Recorder([{"type": "http.request", "body": body}])
    await CSRF_STACK(http_scope(headers, method="POST"), recorder.receive, recorder.send)
    assert 200 == recorder.sent[0]["status"]


@PROFILE
@given(content_type=content_types, body=bodies)
def test_form_reader_returns_fields_or_none(content_type: bytes, body: bytes) -> None:
    """The form reader itself never raises: a list of values (None for non-strings), or
    None for a malformed body."""
    found: Any = _form_fields(content_type, body)
    assert found is None or all(value is None or isinstance(value, bytes) for value in found)
