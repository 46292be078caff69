"""Share a login with a Rails app: Rails' cookie formats for the session and the jar.

::

    app = SessionMiddleware(
        app,
        secret_key_base=os.environ["SECRET_KEY_BASE"],  # the Rails app's, as is
        cookie_name="_myapp_session",
        cookie_format=RailsCookies(digest="sha256"),
    )

The wire formats are in :mod:`asgisession.rails_codecs`; moving between formats without a
logout is :class:`~asgisession.rotation.Rotation`. The whole story, with the settings to ask
the Rails team for and a migration runbook, is ``docs/rails.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Literal

from .crypto import Keyring, MessageCodec
from .rails_codecs import Digest, RailsEncryptor, RailsVerifier, check_digest

__all__ = ["RailsCookies"]


class RailsCookies:
    """Rails' cookie formats for the session and the cookie jar: share a login with Rails.

    ::

        app = SessionMiddleware(
            app,
            secret_key_base=os.environ["SECRET_KEY_BASE"],  # the Rails app's, as is
            cookie_name="_myapp_session",
            cookie_format=RailsCookies(digest="sha256"),
        )

    :param digest: the Rails app's key derivation digest: ``"sha256"`` for apps on
        ``load_defaults 7.0`` or later (``key_generator_hash_digest_class``), ``"sha1"``
        for Rails 6.1 and older defaults. Values are written with it.
    :param read_digests: digests also accepted on read (default: the other one), as the
        Rails 7.0 upgrade guide's cookie rotator does; such values are re-issued.
    :param signed_digest: Rails' ``config.action_dispatch.signed_cookie_digest``, the HMAC
        of ``cookies.signed`` (``"sha1"`` unless the Rails app sets it).
    :param read_legacy_cbc: read Rails' pre-5.2 AES-256-CBC cookies (and re-issue them).
    :param random_bytes: the IV source; **for tests only**.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        digest: Digest = "sha1",
        *,
        read_digests: Sequence[Digest] | None = None,
        signed_digest: Digest = "sha1",
        read_legacy_cbc: bool = True,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        writing = check_digest(digest, "digest")
        if read_digests is None:
            other: Digest = "sha1" if writing == "sha256" else "sha256"
            read_digests = [other]
        extra = [check_digest(name, "read_digests") for name in read_digests]
        #: The key derivation digests: the writing one first, then those only read.
        self.digests: tuple[Digest, ...] = tuple(dict.fromkeys([writing, *extra]))
        self.digest = writing
        self.signed_digest = check_digest(signed_digest, "signed_digest")
        self.read_legacy_cbc = read_legacy_cbc
        self._random = random_bytes

    def session_codec(self, keyring: Keyring) -> MessageCodec:
        """The codec of the CookieStore session cookie (encrypted, with ``session_id``)."""
        return RailsEncryptor(
            keyring, self.digests, session=True, read_legacy_cbc=self.read_legacy_cbc,
            random_bytes=self._random,
        )  # fmt: skip

    def jar_codec(self, keyring: Keyring, kind: Literal["signed", "encrypted"]) -> MessageCodec:
        """The codec of ``cookies.signed`` or ``cookies.encrypted``."""
        if kind == "signed":
            return RailsVerifier(keyring, self.digests, hmac_digest=self.signed_digest)
        return RailsEncryptor(
            keyring, self.digests, read_legacy_cbc=self.read_legacy_cbc, random_bytes=self._random
        )

    def __repr__(self) -> str:
        return f"RailsCookies(digest={self.digest!r}, read_digests={list(self.digests[1:])!r})"
