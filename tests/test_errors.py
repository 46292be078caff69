# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
from __future__ import annotations

import pytest

from asgisession import errors
from asgisession.errors import (
    AsgiSessionError,
    ConfigurationError,
    CookieOverflow,
    InvalidMessage,
    RejectReason,
    SerializationError,
    SessionNotLoaded,
    StoreUnavailable,
)


@pytest.mark.parametrize("name", [name for name in errors.__all__ if name not in {"RejectReason"}])
def test_every_error_subclasses_the_root(name: str) -> None:
    """Every exception in asgisession.errors descends from AsgiSessionError."""
    error = getattr(errors, name)
    assert issubclass(error, AsgiSessionError)
    assert issubclass(error, Exception)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (ConfigurationError, ValueError),
        (SerializationError, TypeError),
        (SessionNotLoaded, RuntimeError),
    ],
)
def test_errors_subclass_the_builtin_callers_already_catch(
    error: type[AsgiSessionError], builtin: type[Exception]
) -> None:
    """Errors with an obvious builtin counterpart can be caught as that builtin."""
    assert issubclass(error, builtin)


@pytest.mark.parametrize("error", [CookieOverflow, StoreUnavailable, InvalidMessage])
def test_other_errors_are_not_value_or_type_errors(error: type[AsgiSessionError]) -> None:
    """Errors without a builtin counterpart are not caught by an unrelated except clause."""
    assert not issubclass(error, ValueError | TypeError | RuntimeError)


def test_cookie_overflow_message_says_what_and_what_to_do() -> None:
    """The overflow message names the cookie, sizes, limit, largest keys and the fix."""
    exc = CookieOverflow("session", 5123, 4096, [("cart", 3000), ("history", 1500)])
    message = str(exc)
    for fragment in ("'session'", "5123", "4096", "'cart' (3000 B)", "'history' (1500 B)"):
        assert fragment in message
    assert "server-side store" in message
    assert "Store less" in message
    assert message.index("'cart'") < message.index("'history'")
    assert ("session", 5123, 4096) == (exc.cookie_name, exc.size, exc.limit)
    assert [("cart", 3000), ("history", 1500)] == exc.largest_keys


def test_cookie_overflow_without_keys() -> None:
    """Without key sizes, the message leaves out the largest-keys clause."""
    message = str(CookieOverflow("sid", 4100, 4096))
    assert "largest session keys" not in message
    assert "'sid'" in message
    assert "server-side store" in message


def test_serialization_error_carries_the_key() -> None:
    """SerializationError keeps the key and explains that sessions hold JSON only."""
    exc = SerializationError("user", "Encoding objects of type User is unsupported")
    assert "user" == exc.key
    assert "session['user'] cannot be stored: Encoding objects" in str(exc)
    assert "store an id instead" in str(exc)


@pytest.mark.parametrize(
    ("detail", "text"),
    [("", "expired"), ("expired at 5", "expired: expired at 5")],
)
def test_invalid_message_carries_its_reason(detail: str, text: str) -> None:
    """InvalidMessage exposes the reason and puts its value first in the message."""
    exc = InvalidMessage(RejectReason.EXPIRED, detail)
    assert RejectReason.EXPIRED is exc.reason
    assert text == str(exc)


def test_reject_reason_values_are_stable() -> None:
    """The reason strings are a public contract (metrics labels, log searches)."""
    assert {
        "MALFORMED": "malformed",
        "NON_CANONICAL": "non_canonical",
        "UNKNOWN_KEY": "unknown_key",
        "BAD_TAG": "bad_tag",
        "WRONG_PURPOSE": "wrong_purpose",
        "EXPIRED": "expired",
        "IDLE_TIMEOUT": "idle_timeout",
        "BAD_PAYLOAD": "bad_payload",
        "OVERSIZED": "oversized",
        "NOT_FOUND": "not_found",
        "REVOKED": "revoked",
        "ISSUED_IN_FUTURE": "issued_in_future",
        "DUPLICATE": "duplicate",
    } == {reason.name: reason.value for reason in RejectReason}


@pytest.mark.parametrize("reason", list(RejectReason))
def test_reject_reason_is_a_str(reason: RejectReason) -> None:
    """Each reason compares equal to its string and is found from it."""
    assert reason.value == reason
    assert reason is RejectReason(reason.value)
    assert isinstance(reason, str)
