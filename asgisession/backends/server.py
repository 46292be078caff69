"""ServerBackend: the cookie holds a sealed session id; the data lives in a :class:`Store`.

The cookie is sealed by the same codec as the cookie store (AES-256-GCM by default), so it
carries the purpose, the absolute expiry and the issue time, and a forged or foreign id is
refused without any store I/O. Inside is a 256-bit id from :mod:`secrets`; the store only
ever sees ``SHA-256(id)``, so a dump of the store holds no usable cookie.

Invariants:

1. No cookie, or a cookie that does not open: no store I/O at all.
2. Empty sessions are never stored; an id the store does not have is a new, empty session
   that costs a write only if the app puts data in it.
3. Writes happen only when the data changed. Updates use ``replace=True``, so a session
   deleted meanwhile (logout in another tab, "log out everywhere") stays deleted. A new
   record is written with ``add`` (:class:`~asgisession.stores.base.SupportsAdd`), which
   never overwrites a live key.
4. ``regenerate()`` deletes the old record and moves the data to a new id only if that
   delete found the record: a session ended meanwhile (logout, ``revoke_user``) is not
   brought back under a new id, and of concurrent regenerations of one session only one
   gets a successor. The others answer with a deletion cookie. ``reset()`` deletes the
   record and the cookie.
5. The cookie is re-issued only for a new id, a key rotation, an idle-timeout refresh
   (at most once per tenth of the idle timeout, with a ``touch`` of the store's TTL), or a
   new expiry from ``Session.set_expiry`` (whose end the record's TTL follows too).
6. A store that fails (or, for the bundled stores, is slower than their ``timeout``) raises
   :class:`StoreUnavailable`; no write is ever reported that did not happen. The store
   times its own calls: it knows what is safe to cancel, so the backend adds no timer.
7. A record is sealed at rest (:class:`~._records.RecordSeal`): AES-256-GCM under a key
   derived from ``secret_key_base`` for records alone, with the store key as associated
   data, so a dump of the store shows no session data and a record copied under another
   session's key does not open for that session's cookie. Records in the older forms
   (0.2's bound one, plain JSON from before) and records sealed by an older secret are
   read, and re-sealed under the newest secret at their next write. ``seal_records=False``
   writes the bound form in the clear instead.
10. No lost updates (:mod:`._merge`): with a store that compares before it writes
    (:class:`~asgisession.stores.base.SupportsVersioned`), a record is read with its
    version and a changed session saved only over that version. A save refused because
    a parallel request wrote the record meanwhile reads it again, puts this request's
    key-level changes on top and tries again, up to ``MAX_SAVES`` times; two requests
    changing one key are settled by ``on_conflict``. A stale record's re-seal on a
    read-only request (rule 7) is such a save too, never merged: if the record changed,
    the other request's write has sealed it. A store without the capability saves as
    before (the last write wins), and re-seals only when the session changes.
8. A session that holds nothing but the CSRF secret, flash messages, its log id's seed and
   its own expiry (:data:`LIGHT_KEYS`) stays in the cookie, sealed as the cookie store
   seals a session, and costs the store nothing: an anonymous visitor who only fetched a
   form page leaves no record behind. The first write of any other key moves it into the
   store under a new id. Such a cookie is told from a sealed id by its length (an id is
   exactly :data:`SESSION_ID_BYTES`; a sealed session never is), and only a JSON object
   of those keys is accepted: a cookie-store session holding anything else, sealed with
   the same secret, does not open here.
9. A session another framework's cookie carried, opened by a migration source
   (:mod:`asgisession.migrate`; ``Opened.key_index`` is ``FOREIGN_KEY_INDEX``), loads
   like a light one, whatever its keys, and its commit moves it into the store.

It runs past 300 lines because creation, regeneration without resurrection, light (cookie-
only) sessions, the user index, re-sealing and the compare-and-set save are one commit path.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from ..cookies import MAX_COOKIE_SIZE, CookieOptions
from ..crypto import FOREIGN_KEY_INDEX, Keyring, MessageCodec
from ..errors import (
    ConfigurationError,
    InvalidMessage,
    RejectReason,
    SessionConflict,
    SessionNotLoaded,
)
from ..expiry import expiry_of
from ..revocation import Revocations, user_of
from ..serializer import JSON, Serializer
from ..session import NOT_LOADED, Commit, LoadedState
from ..stores.base import (
    Store,
    SupportsAdd,
    SupportsTouch,
    SupportsVersioned,
    Version,
    hash_key,
)
from ._merge import MAX_SAVES, ConflictRule, Turn, backoff, check_rule, merge
from ._records import RecordSeal, is_light, open_light
from .base import Candidates, SealedCookie

__all__ = ["NAMESPACE", "SESSION_ID_BYTES", "ServerBackend", "StoredState", "session_key"]

logger: logging.Logger = logging.getLogger("asgisession")

#: Bytes of randomness in a session id (256 bits).
SESSION_ID_BYTES = 32
#: The default prefix of the store keys of session records.
NAMESPACE = "s:"


def session_key(session_id: bytes, namespace: str = NAMESPACE) -> str:
    """The store key of a session id: a hash, never the id itself."""
    return hash_key(namespace, session_id)


@dataclass(slots=True)
class StoredState(LoadedState):
    """The :class:`~asgisession.session.LoadedState` of a session read from the store.

    .. versionadded:: 0.3
    """

    #: The record is not in the form this backend writes, or an older secret sealed it:
    #: its next write re-seals it.
    record_stale: bool = False
    #: The record's version, from a store that compares before it writes; else ``None``.
    version: Version | None = None
    #: The record's store key (:meth:`ServerBackend.key` of ``session_id``), kept from the
    #: load so the commit does not hash the id again.
    key: str | None = None


class ServerBackend(SealedCookie):
    """Keeps session data in a server-side :class:`~asgisession.stores.base.Store`.

    :param store: where the data lives; the backend never closes it (the app owns it).
    :param codec: seals the session id into the cookie.
    :param cookie: the cookie's name and attributes.
    :param lifetime: absolute session lifetime in seconds.
    :param idle_timeout: seconds without a request after which the session ends, or ``None``.
    :param refresh_after: how often a read-only request may push the idle timeout forward
        (a touch of the store's TTL and a re-issued cookie); a tenth of it by default.
    :param namespace: prefix of the store keys of session records.
    :param user_key: the session key that names the session's user; sessions with it are
        listed per user, for :func:`~asgisession.revocation.revoke_user`.
    :param serializer: turns the data into bytes and back (strict JSON by default).
    :param keyring: the secrets that seal records at rest; by default the codec's own
        (``codec.keyring``, which every bundled codec has).
    :param seal_records: seal records at rest (the default). ``False`` writes them in the
        clear (bound to their id, as 0.2 did), for tools that must read them: anyone who
        can read the store, a backup or its traffic then reads every session.
    :param on_conflict: when a parallel request changed the same key of the session since
        this one loaded it: ``"this_request"`` (default) saves this request's value,
        ``"error"`` saves nothing and raises :class:`~asgisession.errors.SessionConflict`
        (see :mod:`asgisession.backends._merge`). Changes to different keys are always
        both kept, with a store that is ``SupportsVersioned``.

    .. versionadded:: 0.1
    .. versionchanged:: 0.3
       Records are sealed at rest (``keyring``, ``seal_records``) and saved with a
       compare-and-set that merges parallel changes (``on_conflict``).
    """

    #: Loading needs store I/O: a synchronous access before ``await session.load()`` (or a
    #: middleware preload) raises SessionNotLoaded.
    loads_in_line = False

    def __init__(
        self,
        store: Store,
        codec: MessageCodec,
        cookie: CookieOptions,
        *,
        lifetime: int,
        idle_timeout: int | None = None,
        refresh_after: int | None = None,
        namespace: str = NAMESPACE,
        user_key: str | None = None,
        serializer: Serializer = JSON,
        keyring: Keyring | None = None,
        seal_records: bool = True,
        on_conflict: ConflictRule = "this_request",
    ) -> None:
        if not isinstance(store, Store):
            raise ConfigurationError(
                f"store={store!r} is not a Store: it needs async load, save, delete and aclose."
            )
        super().__init__(
            codec, cookie, lifetime=lifetime, idle_timeout=idle_timeout,
            refresh_after=refresh_after, user_key=user_key, serializer=serializer,
        )  # fmt: skip
        self.store = store
        # What the store can do, asked once: ``isinstance`` against a runtime-checkable
        # Protocol walks its members, about 90,000 instructions a time (the middleware
        # section's memory rows): more than the rest of a request.
        self._versioned: SupportsVersioned | None = (
            store if isinstance(store, SupportsVersioned) else None
        )
        self._adder: SupportsAdd | None = store if isinstance(store, SupportsAdd) else None
        self._toucher: SupportsTouch | None = store if isinstance(store, SupportsTouch) else None
        self.namespace = namespace
        keyring = keyring if keyring is not None else getattr(codec, "keyring", None)
        if not isinstance(keyring, Keyring):
            raise ConfigurationError(
                f"{type(codec).__name__} has no keyring to seal session records with: "
                "give ServerBackend keyring=Keyring(secret_key_base)."
            )
        self.records: RecordSeal = RecordSeal(keyring, seal=seal_records)
        self.on_conflict: ConflictRule = check_rule(on_conflict)
        self.revocations: Revocations | None = Revocations(store) if user_key is not None else None
        if self.revocations is not None and not self.revocations.indexed:
            raise ConfigurationError(
                f"user_key={user_key!r} needs a store with a per-user index "
                f"(SupportsUserIndex) to find a user's sessions; {type(store).__name__} "
                "has none."
            )

    def open(self, values: list[str], now: int) -> LoadedState:
        """Server-side sessions cannot load without I/O."""
        raise SessionNotLoaded(NOT_LOADED)

    def key(self, session_id: bytes) -> str:
        """The store key of a session id: a hash, never the id itself."""
        return session_key(session_id, self.namespace)

    async def load(self, values: list[str], now: int) -> LoadedState:
        """Open the valid cookie value and fetch its record (two naming different ids: none)."""
        only = Candidates.only(values)
        if only is not None:  # one value, the usual request: no Candidates (the memory rows)
            try:
                return await self._load_one(only, now)
            except InvalidMessage as exc:
                return Candidates.refused_only(exc, self.cookie.name)
        candidates = self._candidates(values)
        for value in candidates.values:
            try:
                state = await self._load_one(value, now)
            except InvalidMessage as exc:
                candidates.refuse(exc)
                continue
            if state.session_id is None:  # a session kept in the cookie: taken as it is
                return state
            candidates.accept(state, state.session_id)
        return candidates.result()

    async def _load_one(self, value: str, now: int) -> LoadedState:
        """Open one cookie value and fetch its record, or raise InvalidMessage with the reason.

        A light session (rule 8) or a migration source's session opens from the cookie
        alone; its state has no ``session_id``.
        """
        opened = self._open_sealed(value, now)
        foreign = opened.key_index == FOREIGN_KEY_INDEX  # a migration source's
        if foreign or len(opened.payload) != SESSION_ID_BYTES:
            data, payload = open_light(opened.payload, self.serializer, foreign=foreign)
            self._check_chosen_end(data, now)
            return LoadedState(
                data=data,
                serialized=payload,
                had_cookie=True,
                issued_at=opened.issued_at,
                expires_at=opened.expires_at,
                stale=opened.stale,
            )
        key = self.key(opened.payload)
        version: Version | None = None
        if self._versioned is not None:
            found = await self._versioned.load_versioned(key)
            stored, version = (None, None) if found is None else found
        else:
            stored = await self.store.load(key)
        if stored is None:
            raise InvalidMessage(RejectReason.NOT_FOUND, "no such session in the store")
        record, record_stale = self.records.open(key, opened.payload, stored)
        try:
            data = self.serializer.loads(record)
        except ValueError as exc:
            raise InvalidMessage(
                RejectReason.BAD_PAYLOAD, f"session record unreadable: {exc}"
            ) from None
        self._check_chosen_end(data, now)
        return StoredState(
            data=data,
            serialized=record,
            had_cookie=True,
            issued_at=opened.issued_at,
            expires_at=opened.expires_at,
            stale=opened.stale,
            session_id=opened.payload,
            user=user_of(data, self.user_key),
            record_stale=record_stale,
            version=version,
            key=key,
        )

    async def commit(self, commit: Commit, *, secure: bool, now: int) -> str | None:
        """Write what changed to the store; return the ``Set-Cookie`` value, or ``None``.

        :raises StoreUnavailable: when the store fails; nothing is then reported as saved.
        """
        state, data, changed = commit.state, commit.data, commit.changed
        session_id = state.session_id
        if session_id is not None and (commit.regenerated or commit.cleared):
            if changed:
                found = await self._delete(session_id, state.user)
                if not found and not commit.cleared and not is_light(data):
                    # Ended meanwhile (logout, revoked) or moved by a concurrent regenerate:
                    # a successor would bring it back, or fork it. (What a reset left, a
                    # flash or a new CSRF secret, goes on in the cookie: nothing of the old.)
                    logger.debug("session was deleted while this request ran; not regenerated")
                    return self.cookie.render_deletion(secure=secure)
            session_id = None
        if commit.cleared:
            gone = changed or commit.regenerated
            return self.cookie.render_deletion(secure=secure) if gone and state.had_cookie else None

        if session_id is None:
            if is_light(data):  # rule 8: it stays in the cookie
                due = state.present and self._reissue_due(state.stale, state.issued_at, now)
                if not (changed or due):
                    return None
                light = self._render_light(commit, secure=secure, now=now)
                if light is not None:
                    return light
            elif not (changed or state.stale):  # stale: migrated in, not yet stored
                return None
            return await self._create(commit, secure=secure, now=now)

        assert state.expires_at is not None
        assert state.issued_at is not None
        refresh = self._refresh_due(state.issued_at, now)
        expires_at = self._end(commit, now)  # moved by Session.set_expiry (or a lower lifetime)
        ttl = self._ttl(expires_at, now)
        key = state.key if isinstance(state, StoredState) and state.key else self.key(session_id)
        if changed:
            kept = await self._save(commit, key, session_id, ttl)
        elif refresh or self._reseal_due(state):
            kept = await self._touch(key, state, ttl)
        else:
            kept = True
        if not kept:
            # Deleted meanwhile (logout elsewhere, revoked, expired): stay deleted.
            logger.debug("session was deleted while this request ran; not recreated")
            return self.cookie.render_deletion(secure=secure)
        user = user_of(data, self.user_key)
        moved = commit.expiry_changed or expires_at != state.expires_at
        if changed and self.revocations is not None and (user != state.user or moved):
            if state.user is not None and user != state.user:
                await self.revocations.unlink(state.user, key)
            if user is not None:
                await self.revocations.link(user, key, expires_at=expires_at)
        if refresh or state.stale or moved:
            return self._render(session_id, expires_at, data, secure=secure, now=now)
        return None

    def _render_light(self, commit: Commit, *, secure: bool, now: int) -> str | None:
        """The Set-Cookie of a session kept in the cookie (rule 8).

        ``None`` when it does not fit in a cookie: it goes to the store instead.
        """
        expires_at = self._end(commit, now)
        payload = commit.serialized()
        if len(payload) == SESSION_ID_BYTES:  # never the length of an id (JSON allows a space)
            payload += b" "
        value = self.codec.seal(
            payload, purpose=self.cookie.name, issued_at=now, expires_at=expires_at
        )
        if self.cookie.size(value) > MAX_COOKIE_SIZE:
            return None
        expiry = expiry_of(commit.data)
        return self._render_sealed(value, expires_at, secure=secure, now=now, expiry=expiry)

    async def _create(self, commit: Commit, *, secure: bool, now: int) -> str | None:
        session_id = secrets.token_bytes(SESSION_ID_BYTES)
        expires_at = self._end(commit, now)  # a light session keeps its lifetime
        key = self.key(session_id)
        record = self.records.write(key, session_id, commit.serialized())
        ttl = self._ttl(expires_at, now)
        if self._adder is not None:
            stored = await self._adder.add(key, record, ttl=ttl)
        else:  # a store written before 0.2 (see SupportsAdd)
            stored = await self.store.save(key, record, ttl=ttl)
        if not stored:
            # A store that keeps nothing (NullStore), or an id already taken (256 random
            # bits: a broken random source). Either way, no id to hand out.
            return self.cookie.render_deletion(secure=secure) if commit.state.had_cookie else None
        user = user_of(commit.data, self.user_key)
        if self.revocations is not None and user is not None:
            await self.revocations.link(user, key, expires_at=expires_at)
        return self._render(session_id, expires_at, commit.data, secure=secure, now=now)

    async def _save(self, commit: Commit, key: str, session_id: bytes, ttl: int) -> bool:
        """Write the changed session over its record; whether the record was still there.

        With a versioned store, a compare-and-set that merges a parallel request's changes
        (rule 10); else a plain replace.

        :raises SessionConflict: with ``on_conflict="error"``, for keys both changed, or
            when the record changed under every one of ``MAX_SAVES`` tries (with
            ``"this_request"`` the last try is then a plain replace, as before 0.3).
        """
        state, store, payload = commit.state, self._versioned, commit.serialized()
        version = state.version if isinstance(state, StoredState) else None
        if version is None or store is None:
            record = self.records.write(key, session_id, payload)
            return await self.store.save(key, record, ttl=ttl, replace=True)
        # A first try at once, unless another request of this process is saving the record
        # (then this one's version is all but sure to be stale): refused, queue (Turn).
        if Turn.free(store, key):
            record = self.records.write(key, session_id, payload)
            if await store.save_if(key, record, ttl=ttl, version=version):
                return True
        async with Turn(store, key):
            return await self._save_merging(commit, key, session_id, ttl, version)

    async def _save_merging(
        self, commit: Commit, key: str, session_id: bytes, ttl: int, version: Version
    ) -> bool:
        """The rest of :meth:`_save`, in this request's turn.

        Read the record, put this request's changes on top, try again; up to ``MAX_SAVES``
        tries in all.
        """
        state, store, payload = commit.state, self._versioned, commit.serialized()
        assert store is not None
        base: dict[str, Any] | None = None
        for attempt in range(MAX_SAVES):
            if attempt:  # the first try was refused, or skipped as all but sure to be
                record = self.records.write(key, session_id, payload)
                if await store.save_if(key, record, ttl=ttl, version=version):
                    return True
                await backoff(attempt)
            found = await store.load_versioned(key)
            if found is None:
                return False  # deleted meanwhile
            try:
                theirs = self.serializer.loads(self.records.open(key, session_id, found[0])[0])
            except (InvalidMessage, ValueError):
                logger.warning("session record changed into one that does not open; not saved")
                return False
            if base is None:
                assert state.serialized is not None
                base = self.serializer.loads(state.serialized)
            merged, conflicts = merge(base, commit.data, theirs, self.serializer)
            if conflicts and self.on_conflict == "error":
                raise SessionConflict(conflicts)
            logger.debug("session changed by a parallel request; merged (conflicts: %s)", conflicts)
            payload, version = self.serializer.dumps(merged), found[1]
        if self.on_conflict == "error":
            raise SessionConflict(())
        # "this_request": as without a compare, the last save wins rather than fail the
        # request; only a change made in the last of these windows can be lost.
        logger.warning("session changed under %d tries to save it; saved over it", MAX_SAVES)
        record = self.records.write(key, session_id, payload)
        return await self.store.save(key, record, ttl=ttl, replace=True)

    async def _touch(self, key: str, state: LoadedState, ttl: int) -> bool:
        """Push the record's TTL; a stale record (rule 7) is re-sealed with its data as read.

        A read-only request re-seals too, as it re-issues a stale cookie, so an old secret
        can be dropped once every active session has made one request since the rotation;
        but only over the version it read (rule 10), so it never writes back older data
        over a parallel request's change. A store that cannot compare re-seals at the
        session's next change instead.
        """
        versioned = self._versioned
        if versioned is not None and self._reseal_due(state):
            assert isinstance(state, StoredState)
            assert state.version is not None
            assert state.serialized is not None
            assert state.session_id is not None
            record = self.records.write(key, state.session_id, state.serialized)
            # Refused: another request wrote (and so sealed) the record, or deleted it.
            await versioned.save_if(key, record, ttl=ttl, version=state.version)
            return True
        if self._toucher is not None:
            return await self._toucher.touch(key, ttl=ttl)
        assert state.serialized is not None
        assert state.session_id is not None
        record = self.records.write(key, state.session_id, state.serialized)
        return await self.store.save(key, record, ttl=ttl, replace=True)

    @staticmethod
    def _reseal_due(state: LoadedState) -> bool:
        """Whether a read-only request re-seals the record (stale, and a version to compare)."""
        return isinstance(state, StoredState) and state.record_stale and state.version is not None

    async def _delete(self, session_id: bytes, user: str | None) -> bool:
        """Delete the record; whether it was there (``True`` when the store does not say)."""
        key = self.key(session_id)
        found = await self.store.delete(key)
        if self.revocations is not None and user is not None:
            await self.revocations.unlink(user, key)
        return found is not False

    def _ttl(self, expires_at: int, now: int) -> int:
        remaining = max(1, expires_at - now)
        return min(remaining, self.idle_timeout) if self.idle_timeout else remaining

    def _render(
        self, session_id: bytes, expires_at: int, data: dict[str, Any], *, secure: bool, now: int
    ) -> str:
        value = self.codec.seal(
            session_id, purpose=self.cookie.name, issued_at=now, expires_at=expires_at
        )
        expiry = expiry_of(data)
        return self._render_sealed(value, expires_at, secure=secure, now=now, expiry=expiry)
