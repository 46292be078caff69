"""Tests for asgisession.formats: one resolver from a ``cookie_format`` to its codecs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from asgisession import (
    ConfigurationError,
    CookieFormat,
    CookieOptions,
    MessageEncryptor,
    MessageVerifier,
    RailsCookies,
    Rotation,
    SessionMiddleware,
)
from asgisession._types import Receive, Scope, Send
from asgisession.backends.cookie import CookieBackend
from asgisession.crypto import Keyring, MessageCodec, Opened
from asgisession.formats import CodecFormat, NativeCookies, resolve_format
from asgisession.rotation import RotatingCodec

NOW = 1_750_000_000
BAD_FORMATS: list[Any] = ["rails", "ENCRYPTED", 42, None, object(), b"signed"]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("never called")


def roundtrip(writer: MessageCodec, reader: MessageCodec, purpose: str = "session") -> Opened:
    token = writer.seal(b'{"a":1}', purpose=purpose, issued_at=NOW, expires_at=NOW + 60)
    return reader.open(token, purpose=purpose, now=NOW)


@pytest.mark.parametrize("name", ["encrypted", "signed"])
def test_native_names_resolve_to_the_native_format(secret: str, name: str) -> None:
    """'encrypted' and 'signed' are NativeCookies; the session codec is the one named."""
    keyring = Keyring(secret)
    fmt = resolve_format(name)
    assert isinstance(fmt, NativeCookies)
    assert isinstance(fmt, CookieFormat)
    expected = MessageVerifier if name == "signed" else MessageEncryptor
    codec = fmt.session_codec(keyring)
    assert type(codec) is expected
    # The session keys are the default ones: a cookie sealed by the plain class opens.
    assert b'{"a":1}' == roundtrip(expected(keyring), codec).payload


@pytest.mark.parametrize("name", ["encrypted", "signed"])
def test_native_jar_codecs_do_not_follow_the_session_format(secret: str, name: str) -> None:
    """The jar's signed and encrypted codecs are the same, whatever seals the session."""
    keyring = Keyring(secret)
    fmt = resolve_format(name)
    signed = MessageVerifier(keyring, key_purpose="cookie-jar-signing")
    encrypted = MessageEncryptor(keyring, key_purpose="cookie-jar-encryption")
    assert b'{"a":1}' == roundtrip(signed, fmt.jar_codec(keyring, "signed"), "prefs").payload
    assert b'{"a":1}' == roundtrip(encrypted, fmt.jar_codec(keyring, "encrypted"), "p").payload


def test_formats_pass_through_and_codecs_get_the_native_jar(secret: str) -> None:
    keyring = Keyring(secret)
    rails = RailsCookies()
    assert resolve_format(rails) is rails
    codec = MessageEncryptor(keyring)
    fmt = resolve_format(codec)
    assert isinstance(fmt, CodecFormat)
    assert fmt.session_codec(Keyring(secret[::-1])) is codec  # the codec brings its keys
    assert isinstance(fmt.jar_codec(keyring, "signed"), MessageVerifier)


@pytest.mark.parametrize("bad", BAD_FORMATS, ids=repr)
def test_every_caller_refuses_a_bad_format_with_one_message(secret: str, bad: Any) -> None:
    """The middleware, Rotation (write and read) and the resolver say the same thing."""
    message = f"cookie_format={bad!r} is not a cookie format"
    with pytest.raises(ConfigurationError) as direct:
        resolve_format(bad)
    assert str(direct.value).startswith(message)
    attempts: list[Callable[[], object]] = [
        lambda: SessionMiddleware(app, secret_key_base=secret, cookie_format=bad),
        lambda: Rotation(write=bad, read=["encrypted"]),
        lambda: Rotation(write="encrypted", read=[bad]),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigurationError) as caught:
            attempt()
        assert str(direct.value) == str(caught.value)


def test_a_bad_format_is_refused_even_with_a_custom_backend(secret: str) -> None:
    """The format is resolved once, up front, so it cannot be silently ignored."""
    backend = CookieBackend(MessageEncryptor(Keyring(secret)), CookieOptions(), lifetime=60)
    with pytest.raises(ConfigurationError, match="not a cookie format"):
        SessionMiddleware(
            app, secret_key_base=secret, backend=backend,
            cookie_format="rails",  # type: ignore[arg-type]
        )  # fmt: skip


def test_rotation_reads_a_bare_codec_through_the_same_resolver(secret: str) -> None:
    """Rotation takes whatever the middleware takes, a MessageCodec included."""
    keyring = Keyring(secret)
    old = MessageVerifier(keyring)
    rotation = Rotation(write="encrypted", read=[old])
    opened = roundtrip(old, rotation.session_codec(keyring))
    assert (0, True) == (opened.key_index, opened.stale)


def test_records_issued_at_is_declared_by_every_codec(secret: str) -> None:
    """Native codecs record the issue time, Rails' do not, and a rotation needs all to."""
    keyring = Keyring(secret)
    assert MessageEncryptor(keyring).records_issued_at
    assert MessageVerifier(keyring).records_issued_at
    assert not RailsCookies().session_codec(keyring).records_issued_at
    assert not RailsCookies().jar_codec(keyring, "signed").records_issued_at
    mixed = Rotation(write="encrypted", read=[RailsCookies()]).session_codec(keyring)
    assert not mixed.records_issued_at
    native = Rotation(write="encrypted", read=["signed"]).session_codec(keyring)
    assert native.records_issued_at


def test_stale_is_not_the_key_index(secret: str, other_secret: str) -> None:
    """Opened.stale says "re-seal"; key_index stays the index of the secret that opened it."""
    new_first = Keyring([secret, other_secret])
    old_only = Keyring(other_secret)
    by_old_key = roundtrip(MessageEncryptor(old_only), MessageEncryptor(new_first))
    assert (1, True) == (by_old_key.key_index, by_old_key.stale)
    rotating = RotatingCodec(MessageEncryptor(new_first), [MessageVerifier(new_first)])
    by_other_format = roundtrip(MessageVerifier(new_first), rotating)
    assert (0, True) == (by_other_format.key_index, by_other_format.stale)
    current = roundtrip(MessageEncryptor(new_first), rotating)
    assert (0, False) == (current.key_index, current.stale)
