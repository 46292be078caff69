"""Section 1, codec: writing and reading one session cookie value, next to the peers and the floor.

For sessions of about 50 B, 1 KB and 3 KB of JSON (``codec.make_session``), encode and
decode are timed for:

asgisession encrypted / signed
    ``serializer.dumps`` + ``MessageEncryptor.seal`` (``MessageVerifier.seal``), and
    ``open`` + ``serializer.loads``: what the cookie backend does per request.
starlette
    ``starlette/middleware/sessions.py`` replayed: ``b64encode(json.dumps(session))`` signed
    by ``itsdangerous.TimestampSigner``; ``unsign(max_age=...)``, ``b64decode``, ``json.loads``.
litestar
    ``ClientSideSessionBackend.dump_data`` / ``load_data`` themselves (AES-GCM, msgspec).
aiohttp-session
    ``EncryptedCookieStorage``'s own objects: its ``_encoder(_get_session_data(session))``
    and ``_fernet.encrypt``, then ``_fernet.decrypt(ttl=max_age)`` and ``_decoder``: the
    body of ``save_session`` / ``load_session`` without the ``aiohttp`` request and
    response they also touch (which would need a server-side request object).
django
    ``django.core.signing.dumps/loads`` as ``django.contrib.sessions.backends.signed_cookies``
    calls them (``compress=True``, its salt, ``JSONSerializer``, ``max_age``).
floor
    msgspec alone, a bare ``AESGCM.encrypt``/``decrypt``, a bare ``hmac.digest`` (SHA-256),
    base64url alone, and the minimal composition: msgspec + a random nonce + AES-GCM +
    base64url, nothing else (no header, no purpose, no expiry).
"""

from __future__ import annotations

import base64
import hmac
import json
import os
from base64 import b64decode, b64encode
from typing import Any

import itsdangerous
import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from asgisession import serializer
from asgisession.crypto import Keyring, MessageCodec, MessageEncryptor, MessageVerifier

from .codec import (
    COOKIE_NAME,
    EXPIRES_AT,
    FLOOR_KEY,
    FLOOR_NONCE,
    ISSUED_AT,
    SECRET,
    SIZES,
    STARLETTE_MAX_AGE,
    make_session,
)
from .harness import Measure, Mode, Progress, SectionResult, Thunk, rounds_sync

SECTION = "codec"
ENCRYPTED = "asgisession encrypted"
SIGNED = "asgisession signed"
STARLETTE = "starlette (itsdangerous)"
LITESTAR = "litestar (AES-GCM)"
AIOHTTP = "aiohttp-session (Fernet)"
DJANGO = "django signing"
MINIMAL = "floor: minimal composition"


def _django_signing() -> Any:
    """``django.core.signing`` with settings configured in this process (once)."""
    from django.conf import settings

    if not settings.configured:
        settings.configure(SECRET_KEY=SECRET, USE_TZ=True)
    from django.core import signing

    return signing


def peers(data: dict[str, Any]) -> dict[str, tuple[Thunk, Thunk]]:
    """Each peer's (encode, decode) for ``data``, each checked to round-trip first."""
    from aiohttp_session import Session as AiohttpSession
    from aiohttp_session.cookie_storage import EncryptedCookieStorage
    from litestar.middleware.session.client_side import (
        ClientSideSessionBackend,
        CookieBackendConfig,
    )

    signer = itsdangerous.TimestampSigner(SECRET)  # what starlette builds from secret_key

    def starlette_encode() -> str:
        return signer.sign(b64encode(json.dumps(data).encode("utf-8"))).decode("utf-8")

    starlette_cookie = starlette_encode()

    def starlette_decode() -> Any:
        unsigned = signer.unsign(starlette_cookie.encode("utf-8"), max_age=STARLETTE_MAX_AGE)
        return json.loads(b64decode(unsigned))

    litestar = ClientSideSessionBackend(CookieBackendConfig(secret=FLOOR_KEY))
    litestar_cookie = litestar.dump_data(data)

    storage = EncryptedCookieStorage(FLOOR_KEY, max_age=STARLETTE_MAX_AGE)
    session = AiohttpSession("id", data=None, new=True, max_age=STARLETTE_MAX_AGE)
    session.update(data)

    def aiohttp_encode() -> str:
        cookie_data = storage._encoder(storage._get_session_data(session)).encode("utf-8")
        return storage._fernet.encrypt(cookie_data).decode("utf-8")

    aiohttp_cookie = aiohttp_encode()

    def aiohttp_decode() -> Any:
        token = storage._fernet.decrypt(aiohttp_cookie.encode("utf-8"), ttl=storage.max_age)
        return storage._decoder(token.decode("utf-8"))["session"]

    signing = _django_signing()
    salt = "django.contrib.sessions.backends.signed_cookies"

    def django_encode() -> str:
        value: str = signing.dumps(
            data, compress=True, salt=salt, serializer=signing.JSONSerializer
        )
        return value

    django_cookie = django_encode()

    def django_decode() -> Any:
        return signing.loads(
            django_cookie, serializer=signing.JSONSerializer, max_age=STARLETTE_MAX_AGE, salt=salt
        )

    found: dict[str, tuple[Thunk, Thunk]] = {
        STARLETTE: (starlette_encode, starlette_decode),
        LITESTAR: (lambda: litestar.dump_data(data), lambda: litestar.load_data(litestar_cookie)),
        AIOHTTP: (aiohttp_encode, aiohttp_decode),
        DJANGO: (django_encode, django_decode),
    }
    for name, (_, decode) in found.items():
        if decode() != data:
            raise SystemExit(f"{name} does not give the session back; fix the benchmark")
    return found


def candidates(data: dict[str, Any]) -> dict[str, tuple[Thunk, Thunk]]:
    """asgisession, the peers and the floor, as name -> (encode, decode)."""
    keyring = Keyring(SECRET)
    now = ISSUED_AT + 1

    def ours(codec: MessageCodec) -> tuple[Thunk, Thunk]:
        token = codec.seal(
            serializer.dumps(data), purpose=COOKIE_NAME, issued_at=ISSUED_AT, expires_at=EXPIRES_AT
        )

        def encode() -> str:
            return codec.seal(
                serializer.dumps(data),
                purpose=COOKIE_NAME,
                issued_at=ISSUED_AT,
                expires_at=EXPIRES_AT,
            )

        def decode() -> dict[str, Any]:
            return serializer.loads(codec.open(token, purpose=COOKIE_NAME, now=now).payload)

        if decode() != data:
            raise SystemExit("asgisession does not give the session back")
        return encode, decode

    payload = serializer.dumps(data)
    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
    aead = AESGCM(FLOOR_KEY)
    ciphertext = aead.encrypt(FLOOR_NONCE, payload, None)
    b64 = base64.urlsafe_b64encode(payload)

    def minimal_encode() -> bytes:
        nonce = os.urandom(12)
        return base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, encoder.encode(data), None))

    minimal_token = minimal_encode()

    def minimal_decode() -> Any:
        raw = base64.urlsafe_b64decode(minimal_token)
        return decoder.decode(aead.decrypt(raw[:12], raw[12:], None))

    if minimal_decode() != data:
        raise SystemExit("the minimal composition does not give the session back")

    return {
        ENCRYPTED: ours(MessageEncryptor(keyring)),
        SIGNED: ours(MessageVerifier(keyring)),
        **peers(data),
        "floor: msgspec alone": (lambda: encoder.encode(data), lambda: decoder.decode(payload)),
        "floor: AESGCM alone": (
            lambda: aead.encrypt(FLOOR_NONCE, payload, None),
            lambda: aead.decrypt(FLOOR_NONCE, ciphertext, None),
        ),
        "floor: HMAC-SHA256 alone": (
            lambda: hmac.digest(FLOOR_KEY, payload, "sha256"),
            lambda: hmac.digest(FLOOR_KEY, payload, "sha256"),
        ),
        "floor: base64url alone": (
            lambda: base64.urlsafe_b64encode(payload),
            lambda: base64.urlsafe_b64decode(b64),
        ),
        MINIMAL: (minimal_encode, minimal_decode),
    }


def run(mode: Mode, progress: Progress) -> SectionResult:
    result = SectionResult(SECTION)
    timed: list[tuple[Measure, Thunk]] = []
    for label, target in SIZES:
        data = make_session(target)
        result.info[f"{label} JSON bytes"] = len(serializer.dumps(data))
        for name, (encode, decode) in candidates(data).items():
            for op, fn in (("encode", encode), ("decode", decode)):
                measure = Measure(SECTION, f"{label} {op}", name, "us/op")
                result.measures.append(measure)
                timed.append((measure, fn))
    progress.begin(SECTION, f"{len(timed)} candidates x {mode.rounds} rounds")
    rounds_sync(timed, mode, progress)
    for label, _ in SIZES:
        for op in ("encode", "decode"):
            case = f"{label} {op}"
            ours = result.measure(case, ENCRYPTED)
            result.ratio(
                f"encrypted {case}: asgisession / litestar",
                ours,
                result.measure(case, LITESTAR),
                target=1.0,
            )
            result.ratio(
                f"encrypted {case}: starlette / asgisession (speed-up)",
                result.measure(case, STARLETTE),
                ours,
                target=3.0,
                better="higher",
            )
            result.ratio(
                f"encrypted {case}: asgisession / minimal composition",
                ours,
                result.measure(case, MINIMAL),
                target=1.2,
            )
            for peer in (AIOHTTP, DJANGO):
                result.ratio(
                    f"encrypted {case}: asgisession / {peer}", ours, result.measure(case, peer)
                )
            result.ratio(
                f"signed {case}: asgisession / starlette",
                result.measure(case, SIGNED),
                result.measure(case, STARLETTE),
            )
    return result
