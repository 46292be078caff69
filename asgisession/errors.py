"""Every error asgisession raises, under one root, and the reasons a cookie is refused.

The hierarchy::

    AsgiSessionError
    ├── ConfigurationError (ValueError)    bad settings, raised at construction
    ├── SerializationError (TypeError)     a session value that would not read back as it is
    ├── CookieOverflow                     a Set-Cookie over the browsers' 4096-byte limit
    ├── ExpiryTooLong (ValueError)         set_expiry() past the middleware's ``lifetime``
    ├── SessionNotLoaded (RuntimeError)    sync access to a session that must be awaited first
    ├── StoreUnavailable                   a server-side store that cannot be reached
    └── InvalidMessage                     a sealed message that does not open (direct API use)

A cookie that fails to open inside the middleware is *not* an error: the request gets an
empty session, and the reason (a :class:`RejectReason`) is logged at debug level on the
``asgisession`` logger, counted, and readable as ``session.rejection``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

__all__ = [
    "AsgiSessionError",
    "ConfigurationError",
    "CookieOverflow",
    "ExpiryTooLong",
    "InvalidMessage",
    "RejectReason",
    "SerializationError",
    "SessionConflict",
    "SessionNotLoaded",
    "StoreUnavailable",
]


class RejectReason(str, enum.Enum):
    """Why an incoming session cookie was refused (and the session started empty).

    The values are stable strings, fit for metrics labels and log searches.

    .. versionadded:: 0.1
    """

    #: Not a value this format could have written: bad characters, bad length, unknown version.
    MALFORMED = "malformed"
    #: Base64 that decodes but is not in its one canonical spelling (padding, trailing bits).
    NON_CANONICAL = "non_canonical"
    #: Sealed under a key that is not (or no longer) in ``secret_key_base``.
    UNKNOWN_KEY = "unknown_key"
    #: The authentication tag or signature does not match: tampered, truncated or forged.
    BAD_TAG = "bad_tag"
    #: Authentic, but sealed for another purpose (another cookie name).
    WRONG_PURPOSE = "wrong_purpose"
    #: Authentic, but past its absolute expiry.
    EXPIRED = "expired"
    #: Authentic, but issued later than now plus ``MAX_CLOCK_SKEW`` (60 s): a node's clock
    #: runs fast, or the value was sealed for a future time by someone holding the secret.
    #:
    #: .. versionadded:: 0.2
    ISSUED_IN_FUTURE = "issued_in_future"
    #: Authentic, but unused for longer than the idle timeout.
    IDLE_TIMEOUT = "idle_timeout"
    #: Authentic, but the payload is not a JSON object.
    BAD_PAYLOAD = "bad_payload"
    #: Larger than any cookie this format writes, or ``Cookie`` headers over
    #: ``MAX_COOKIE_HEADER_SIZE`` (64 KiB); refused before any decoding.
    OVERSIZED = "oversized"
    #: Authentic, but the server-side store no longer has it: expired, deleted or evicted.
    NOT_FOUND = "not_found"
    #: Authentic, but revoked on the server (server-side stores, "log out everywhere").
    REVOKED = "revoked"
    #: Two values of the session cookie both open, to different sessions: neither is used,
    #: since either may have been planted (a sibling subdomain's cookie with a longer Path
    #: is sent first). Identical copies, and extra values that do not open, are no conflict.
    #:
    #: .. versionadded:: 0.2
    DUPLICATE = "duplicate"


class AsgiSessionError(Exception):
    """The root of every error asgisession raises.

    .. versionadded:: 0.1
    """


class ConfigurationError(AsgiSessionError, ValueError):
    """Raised when a setting is invalid, at construction time rather than per request.

    .. versionadded:: 0.1
    """


class SerializationError(AsgiSessionError, TypeError):
    """Raised when a session value cannot be stored, or would not read back as it was.

    Raised before anything is sent, when the session is written.

    :ivar key: the top-level session key whose value failed.
    :ivar path: where the value sits, from that key down: ``("cart", 3, "when")``.
    :ivar value_type: the type of the value that failed, when one did (``None`` for
        failures of the whole value, such as nesting too deep).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``path`` and ``value_type``; values that would read back changed (a ``datetime``
       as a ``str``, a ``tuple`` as a ``list``) raise too.
    """

    def __init__(
        self,
        key: str,
        detail: str,
        *,
        path: Sequence[str | int] = (),
        value_type: type | None = None,
    ) -> None:
        self.key = key
        self.path: tuple[str | int, ...] = tuple(path) or (key,)
        self.value_type = value_type
        super().__init__(
            f"{self.location} cannot be stored: {detail}. Sessions hold JSON only "
            "(dict with str keys, list, str, int, float, bool, None) unless another "
            "serializer= is chosen; convert the value first, e.g. store an id instead of an "
            "object."
        )

    @property
    def location(self) -> str:
        """The path as Python would spell it: ``session['cart'][3]['when']``."""
        return "session" + "".join(f"[{step!r}]" for step in self.path)


class CookieOverflow(AsgiSessionError):
    """Raised before ``http.response.start`` when a cookie would exceed the size limit.

    Browsers drop a cookie whose name and value together pass 4096 bytes, which would
    silently log the user out; nothing is sent instead, and the app's ``send`` raises.

    :ivar cookie_name: the cookie that overflowed.
    :ivar size: bytes of name plus value.
    :ivar limit: the limit in bytes (4096).
    :ivar largest_keys: ``(key, bytes)`` pairs of the largest session keys, largest first.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        cookie_name: str,
        size: int,
        limit: int,
        largest_keys: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.cookie_name = cookie_name
        self.size = size
        self.limit = limit
        self.largest_keys: list[tuple[str, int]] = list(largest_keys)
        biggest = ", ".join(f"{key!r} ({n} B)" for key, n in self.largest_keys)
        super().__init__(
            f"cookie {cookie_name!r} would be {size} bytes (name + value), over the "
            f"{limit}-byte limit browsers keep"
            + (f"; largest session keys: {biggest}" if biggest else "")
            + ". Store less in the session (ids, not objects), or move to a server-side "
            "store, which keeps only an id in the cookie. Nothing was sent."
        )


class SessionConflict(AsgiSessionError):
    """Raised at commit when a parallel request changed the same session keys differently.

    Only with ``on_conflict="error"`` (else this request's values win), and only for a
    server-side store that compares before it writes (``SupportsVersioned``). Nothing of
    this request was saved; the session holds what the other request wrote. It goes to
    ``on_commit_error`` like a failed save (without a hook it is raised from the app's
    ``send``, and the framework answers 500).

    :ivar keys: the keys both requests changed, sorted; empty when the record changed
        under every one of the bounded number of tries.

    .. versionadded:: 0.3
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys: list[str] = sorted(keys)
        super().__init__(
            f"a parallel request changed the session keys {self.keys} too; nothing of this "
            "request was saved"
            if self.keys
            else "the session changed under every try to save it; nothing was saved"
        )


class ExpiryTooLong(AsgiSessionError, ValueError):
    """Raised by ``Session.set_expiry`` for a lifetime longer than the middleware's.

    The middleware's ``lifetime`` is the longest any session may live. The error is raised,
    not clamped, so that "remember me for 30 days" never quietly becomes 14 days: raise
    ``lifetime=`` on the middleware, or ask for less.

    .. versionadded:: 0.2
    """


class SessionNotLoaded(AsgiSessionError, RuntimeError):
    """Raised on synchronous access to a session whose data needs an ``await`` to load.

    .. versionadded:: 0.1
    """


class StoreUnavailable(AsgiSessionError):
    """Raised when a server-side store cannot be reached or answered with an error.

    .. versionadded:: 0.1
    """


class InvalidMessage(AsgiSessionError):
    """Raised by the codecs when a sealed message does not open.

    The middleware turns it into an empty session; callers of the codecs see it directly.

    :ivar reason: the :class:`RejectReason`.

    .. versionadded:: 0.1
    """

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)


def install_hint(extra: str, *packages: str) -> str:
    """The pip command that installs what the ``extra`` adds, from an install or a checkout.

    asgisession is not on PyPI, so ``pip install 'asgisession[redis]'`` would fail. The
    extra's own requirements (read from the installed package's metadata, so they are never
    a second copy of ``pyproject.toml``) install the same way wherever asgisession came
    from; ``packages`` are named when there is no metadata to read.
    """
    import importlib.metadata  # only on the error path

    marker = (f"extra == '{extra}'", f'extra == "{extra}"')
    try:
        declared = importlib.metadata.requires("asgisession") or []
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a bare tree
        declared = []
    wanted = [
        requirement.partition(";")[0].strip()
        for requirement in declared
        if requirement.partition(";")[2].strip() in marker
    ] or list(packages)
    command = "pip install " + " ".join(f"'{requirement}'" for requirement in wanted)
    return (
        f"{command} (what the [{extra}] extra adds; in a source checkout, "
        f"pip install -e '.[{extra}]' does the same)"
    )
