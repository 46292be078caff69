"""The session backend a set of settings describes: one builder for every caller.

:class:`~asgisession.middleware.SessionMiddleware` and :class:`~asgisession.sessions.Sessions`
take the same keywords (secret, cookie options, format, lifetimes, store, ``user_key``,
``revocation_store``, ``serializer`` or a ready ``backend``) and both turn them into a
:class:`~asgisession.backends.base.SessionBackend` here, so a session opened outside ASGI
is opened, checked and committed exactly as the middleware would do it.
"""

from __future__ import annotations

from typing import Any

from .._options import cookie_options
from ..cookies import MAX_AGE_LIMIT, CookieOptions
from ..crypto import CookieFormat, Keyring, MessageCodec
from ..errors import ConfigurationError
from ..revocation import Revocations
from ..serializer import JSON, Serializer
from ..stores.base import Store
from ..stores.timed import timed
from ._merge import ConflictRule, check_rule
from .base import SessionBackend
from .cookie import CookieBackend
from .server import ServerBackend

__all__ = ["build_backend", "check_seconds"]


def build_backend(
    keyring: Keyring,
    cookie_format: CookieFormat,
    *,
    cookie: CookieOptions | None,
    lifetime: int,
    idle_timeout: int | None,
    refresh_after: int | None,
    store: Store | None,
    timeout: float | None,
    user_key: str | None,
    revocation_store: Store | None,
    backend: SessionBackend | None,
    serializer: Serializer | None,
    seal_records: bool = True,
    on_conflict: ConflictRule = "this_request",
    **flat_cookie: Any,
) -> tuple[SessionBackend, Serializer]:
    """The backend and serializer for these settings (see SessionMiddleware's parameters).

    :param cookie_format: the resolved format (:func:`~asgisession.formats.resolve_format`).
    :param seal_records: seal server-side records at rest (see ServerBackend).
    :param on_conflict: how a server-side save settles a key a parallel request changed
        too (see ServerBackend).
    :param timeout: the deprecated ``store_timeout``, already resolved: bounds a store that
        is not a bundled one.
    :param flat_cookie: the flat cookie keywords (``cookie_name``, ``max_age``, ``path``,
        ...), left at ``DEFAULT`` when not given.
    :raises ConfigurationError: for any invalid or conflicting setting.
    """
    if backend is not None and cookie is not None:
        raise ConfigurationError(
            "backend= brings its own cookie options (backend.cookie); cookie= would be "
            "ignored. Give the CookieOptions to the backend instead."
        )
    if backend is not None and serializer is not None:
        raise ConfigurationError(
            "backend= brings its own serializer (backend.serializer); serializer= would "
            "be ignored. Give it to the backend instead."
        )
    if serializer is None:
        serializer = getattr(backend, "serializer", JSON)
    elif not isinstance(serializer, Serializer):
        raise ConfigurationError(
            f"serializer={serializer!r} is not a Serializer: it needs dumps, loads and "
            "sizes_by_key."
        )
    assert serializer is not None
    if backend is not None:
        return backend, serializer
    check_seconds("lifetime", lifetime)
    if idle_timeout is not None:
        check_seconds("idle_timeout", idle_timeout)
    options = cookie_options(cookie, **flat_cookie)
    codec = cookie_format.session_codec(keyring)
    _check_issue_time(codec, idle_timeout, user_key)
    if store is None:
        if not seal_records:
            raise ConfigurationError(
                "seal_records=False is for server-side stores (store=); the cookie store "
                "seals the whole session in the cookie already."
            )
        if check_rule(on_conflict) != "this_request":
            raise ConfigurationError(
                f"on_conflict={on_conflict!r} needs a server-side store (store=): a cookie "
                "session is held by the client, so parallel requests cannot be merged "
                "(docs/stores.md, 'Parallel requests')."
            )
        if user_key is not None and revocation_store is None:
            raise ConfigurationError(
                "user_key with the cookie store needs revocation_store=<a Store> to "
                "keep each user's 'not before' time (cookies cannot be deleted "
                "server-side); or use a server-side store=."
            )
        revocations = None
        if revocation_store is not None:
            revocations = Revocations(timed(revocation_store, timeout))
        built: SessionBackend = CookieBackend(
            codec, options, lifetime=lifetime, idle_timeout=idle_timeout,
            refresh_after=refresh_after, user_key=user_key, revocations=revocations,
            serializer=serializer,
        )  # fmt: skip
        return built, serializer
    if revocation_store is not None:
        raise ConfigurationError(
            "revocation_store is for the cookie store; a server-side store keeps "
            "its own revocations."
        )
    if isinstance(store, Store):  # else ServerBackend says what is missing
        store = timed(store, timeout)
    built = ServerBackend(
        store, codec, options, lifetime=lifetime, idle_timeout=idle_timeout,
        refresh_after=refresh_after, user_key=user_key, serializer=serializer,
        keyring=keyring, seal_records=seal_records, on_conflict=on_conflict,
    )  # fmt: skip
    return built, serializer


def _check_issue_time(codec: MessageCodec, idle_timeout: int | None, user_key: str | None) -> None:
    """Refuse settings that need an issue time from a format that records none (Rails')."""
    if codec.records_issued_at:
        return
    if idle_timeout is not None or user_key is not None:
        raise ConfigurationError(
            "idle_timeout and user_key need the time a cookie was issued, and Rails' cookie "
            "format does not record it. Use lifetime= (written as Rails' 'exp'), or move to "
            "the native format first (see docs/rails.md, 'Migration runbook')."
        )


def check_seconds(label: str, value: int) -> None:
    """Refuse a duration that is not whole seconds from 1 to 400 days."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_AGE_LIMIT:
        raise ConfigurationError(
            f"{label}={value!r}; give a whole number of seconds from 1 to 400 days "
            f"({MAX_AGE_LIMIT}): a session cannot outlive the cookie that carries it."
        )
