"""Crypto soundness: fresh nonces, independent keys, payloads that are opened but never
trusted to be JSON, and constant-time comparison of every secret (checked over the code)."""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import pickle
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import asgisession
from asgisession import SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.backends.server import SESSION_ID_BYTES, ServerBackend
from asgisession.cookies import CookieOptions
from asgisession.crypto import (
    HEADER_SIZE,
    NONCE_SIZE,
    KeyGenerator,
    Keyring,
    MessageEncryptor,
    MessageVerifier,
    b64url_decode,
)
from asgisession.errors import RejectReason, SerializationError
from asgisession.jar import JarCodecs, cookies
from asgisession.stores.memory import MemoryStore

from ..asgi_helpers import Recorder

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000
PACKAGE = Path(asgisession.__file__).parent

# -- nonces and ciphertexts ----------------------------------------------------------------


def test_100000_encryptions_of_one_session_are_all_distinct(secret: str) -> None:
    """Sealing the same session 100,000 times gives 100,000 nonces and ciphertexts."""
    codec = MessageEncryptor(Keyring(secret))
    payload = b'{"user":"alice","role":"admin"}'
    nonces: set[bytes] = set()
    ciphertexts: set[bytes] = set()
    for _ in range(100_000):
        token = codec.seal(payload, purpose="session", issued_at=NOW, expires_at=NOW + 60)
        frame = b64url_decode(token)
        nonces.add(frame[HEADER_SIZE : HEADER_SIZE + NONCE_SIZE])
        ciphertexts.add(frame[HEADER_SIZE + NONCE_SIZE :])
    assert 100_000 == len(nonces)
    assert 100_000 == len(ciphertexts)
    assert payload == codec.open(token, purpose="session", now=NOW).payload


# -- derived keys --------------------------------------------------------------------------


def _text(node: ast.AST | None) -> str | None:
    """The value of a string literal, else ``None``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _literal_purposes() -> set[str]:
    """Every key purpose named in the package: ``key_purpose`` arguments and defaults,
    module-level ``*_PURPOSE`` constants, and literal arguments of ``derive()``."""
    found: list[str | None] = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name == "derive" and node.args:
                    found.append(_text(node.args[0]))
                found += [_text(k.value) for k in node.keywords if k.arg == "key_purpose"]
            elif isinstance(node, ast.arguments):
                named = node.args + node.kwonlyargs
                padding: list[ast.expr | None] = [None] * (len(node.args) - len(node.defaults))
                defaults = padding + list(node.defaults) + list(node.kw_defaults)
                found += [
                    _text(default)
                    for arg, default in zip(named, defaults, strict=True)
                    if arg.arg == "key_purpose"
                ]
        for statement in tree.body:  # module constants only (not enum members)
            if isinstance(statement, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id.endswith("_PURPOSE") for t in statement.targets
            ):
                found.append(_text(statement.value))
    return {purpose for purpose in found if purpose is not None}


def test_the_purpose_scan_finds_the_known_purposes() -> None:
    """The scan below is not vacuous: it finds exactly the purposes the package uses today
    (a new purpose is added here, and then checked below with the others)."""
    known = {
        "key-id", "session-encryption", "session-signing",
        "cookie-jar-signing", "cookie-jar-encryption", "server-record-encryption",
    }  # fmt: skip
    assert known == _literal_purposes()


def test_derived_keys_are_pairwise_distinct_and_not_the_secret(
    secret: str, other_secret: str
) -> None:
    """Every purpose, at 4, 16, 32 and 64 bytes, from two secrets: all keys differ from each
    other and from the secrets, and none is a slice of a secret."""
    purposes = sorted(_literal_purposes())
    keys: dict[tuple[str, str, int], bytes] = {}
    raw_secrets = [secret.encode(), other_secret.encode()]
    for label, raw in zip(("new", "old"), raw_secrets, strict=True):
        generator = KeyGenerator(raw)
        for purpose, length in itertools.product(purposes, (4, 16, 32, 64)):
            keys[(label, purpose, length)] = generator.derive(purpose, length)
    assert len(keys) == len(set(keys.values()))
    for raw in raw_secrets:
        for key in keys.values():
            assert key != raw
            assert key not in raw
            assert raw[: len(key)] != key
    # A shorter key is not a prefix of a longer one: the length is bound into the label.
    for (label, purpose, length), key in keys.items():
        if length > 4:
            assert keys[(label, purpose, 4)] != key[:4]


def test_codecs_in_use_hold_distinct_keys(secret: str) -> None:
    """The keys the session and jar codecs actually hold are four different keys."""
    keyring = Keyring(secret)
    jar = JarCodecs(keyring)
    codecs = [
        MessageEncryptor(keyring),
        MessageVerifier(keyring),
        jar.get("signed"),
        jar.get("encrypted"),
    ]
    held = [codec._key(0, 32) for codec in codecs]  # type: ignore[attr-defined]
    assert len(codecs) == len(set(held))
    assert secret.encode()[:32] not in held


# -- authentic payloads that are not session data ------------------------------------------

RAN: list[str] = []


def _run(marker: str) -> str:
    """What the pickle below would call on unpickling."""
    RAN.append(marker)
    return marker


class Exploit:
    """Unpickling this calls :func:`_run`: code execution, if anything ever unpickled it."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_run, ("code ran",))


PICKLE = pickle.dumps({"user": Exploit()})


def deep(levels: int) -> bytes:
    return b'{"a":' + b"[" * levels + b"]" * levels + b"}"


NOT_SESSION_DATA = {
    "pickle": PICKLE,
    "pickle protocol 0": pickle.dumps({"user": Exploit()}, protocol=0),
    "json array": b'["user","alice"]',
    "json string": b'"alice"',
    "json number": b"42",
    "empty": b"",
    "not utf-8": b'{"user":"\xff\xfe"}',
    "truncated json": b'{"user":',
    "trailing garbage": b'{"user":"alice"}x',
    "nan": b'{"x":NaN}',
    "1400 levels deep": deep(1400),
}
#: Valid JSON, just not an object: refused as a session, but a fine cookie-jar value.
JSON_NOT_OBJECT = {b'["user","alice"]', b'"alice"', b"42"}


@pytest.fixture(autouse=True)
def nothing_ran() -> Any:
    """Every test here starts and must end with the pickle's code never having run."""
    RAN.clear()
    yield
    assert [] == RAN, "unpickling code ran"


def test_the_pickle_is_live() -> None:
    """Sanity: unpickling PICKLE does run code, so the tests below are not vacuous."""
    pickle.loads(PICKLE)  # noqa: S301 - the point is to show it runs code
    assert ["code ran"] == RAN
    RAN.clear()


def session_app(seen: list[tuple[dict[str, Any], RejectReason | None]]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        seen.append((dict(session), session.rejection))
        jar = cookies(scope)
        seen.append(({"signed": jar.signed.get("prefs"), "enc": jar.encrypted.get("prefs")}, None))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def scope_with(cookie: str) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "headers": [(b"cookie", cookie.encode())],
    }


@pytest.mark.parametrize("fmt", ["encrypted", "signed"])
@pytest.mark.parametrize("payload", NOT_SESSION_DATA.values(), ids=NOT_SESSION_DATA.keys())
async def test_authentic_cookie_that_is_not_json_is_refused(
    payload: bytes, fmt: str, secret: str
) -> None:
    """Validly sealed, but not a JSON object: an empty session, BAD_PAYLOAD, a 200, and
    nothing unpickled. The jar's signed and encrypted cookies refuse what is not JSON."""
    keyring = Keyring(secret)
    codec = MessageEncryptor(keyring) if fmt == "encrypted" else MessageVerifier(keyring)
    jar = JarCodecs(keyring)
    sealed = codec.seal(payload, purpose="session", issued_at=NOW, expires_at=NOW + 60)
    signed = jar.get("signed").seal(payload, purpose="prefs", issued_at=NOW, expires_at=NOW + 60)
    enc = jar.get("encrypted").seal(payload, purpose="prefs", issued_at=NOW, expires_at=NOW + 60)
    seen: list[tuple[dict[str, Any], RejectReason | None]] = []
    mw = SessionMiddleware(
        session_app(seen), secret_key_base=secret, cookie_format=fmt,  # type: ignore[arg-type]
        clock=lambda: NOW,
    )  # fmt: skip
    recorder = Recorder()
    for cookie in (f"session={sealed}", f"prefs={signed}", f"prefs={enc}"):
        await mw(scope_with(cookie), recorder.receive, recorder.send)
    statuses = [m["status"] for m in recorder.sent if m["type"] == "http.response.start"]
    assert [200, 200, 200] == statuses
    assert ({}, RejectReason.BAD_PAYLOAD) == seen[0]
    assert {"signed": None, "enc": None} == seen[1][0]  # no jar cookie sent
    if payload in JSON_NOT_OBJECT:
        value = json.loads(payload)
        assert [{"signed": value, "enc": None}, {"signed": None, "enc": value}] == [
            seen[3][0],
            seen[5][0],
        ]
    else:
        assert {"signed": None, "enc": None} == seen[3][0] == seen[5][0]


@pytest.mark.parametrize("payload", NOT_SESSION_DATA.values(), ids=NOT_SESSION_DATA.keys())
async def test_server_record_that_is_not_json_is_refused(payload: bytes, secret: str) -> None:
    """A store record that is not a JSON object (a pickle planted in the store) is refused
    as BAD_PAYLOAD; nothing is unpickled."""
    store = MemoryStore()
    codec = MessageEncryptor(Keyring(secret))
    backend_key = ServerBackend(store, codec, CookieOptions(), lifetime=60).key
    session_id = b"\x01" * SESSION_ID_BYTES
    await store.save(backend_key(session_id), payload, ttl=60)
    sealed = codec.seal(session_id, purpose="session", issued_at=NOW, expires_at=NOW + 60)
    seen: list[tuple[dict[str, Any], RejectReason | None]] = []
    mw = SessionMiddleware(
        session_app(seen), secret_key_base=secret, store=store, clock=lambda: NOW
    )
    recorder = Recorder()
    await mw(scope_with(f"session={sealed}"), recorder.receive, recorder.send)
    assert 200 == recorder.sent[0]["status"]
    assert ({}, RejectReason.BAD_PAYLOAD) == seen[0]


async def test_too_deep_a_value_is_a_serialization_error(secret: str) -> None:
    """A session value nested deeper than the encoder can go fails with SerializationError
    naming the key, not with a RecursionError."""
    value: list[Any] = []
    for _ in range(5000):
        value = [value]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["deep"] = value
        await send({"type": "http.response.start", "status": 200, "headers": []})

    mw = SessionMiddleware(app, secret_key_base=secret)
    recorder = Recorder()
    with pytest.raises(SerializationError, match="deep"):
        await mw(scope_with(""), recorder.receive, recorder.send)


# -- constant-time comparison, checked over the code ---------------------------------------

#: Names that hold (or are derived from) a secret, a MAC, a tag or a token.
SECRET_NAMES = re.compile(
    r"tag|mac|token|digest|signature|secret|hmac|nonce|csrf|password|session_id|key_id",
    re.IGNORECASE,
)
#: (file, enclosing function, source of the comparison) -> why it is not a secret comparison.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("crypto.py", "__init__", "_as_bytes(secrets[first]) == _as_bytes(secrets[index])"): (
        "configuration time, only to word the error for two secrets with one key id; "
        "no request input"
    ),
    ("crypto.py", "__init__", "generator.key_id in self._by_id"): (
        "key ids are public: every sealed message carries its key id in clear"
    ),
}


def _label(node: ast.expr) -> str:
    """The name an operand is known by: a variable, attribute, called function or subscript."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):  # a call is known by its function and its arguments
        return " ".join(_label(part) for part in (node.func, *node.args))
    if isinstance(node, ast.Subscript):
        return _label(node.value)
    return ""


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _is_len(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def _comparisons() -> list[tuple[str, str, str, list[str]]]:
    """Every ``==``, ``!=``, ``in`` and ``not in`` in the package whose operands look secret."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
                continue
            operands = (node.left, *node.comparators)
            if any(_is_len(operand) for operand in operands):
                continue  # lengths are public: every cookie shows its own
            labels = [_label(operand) for operand in operands]
            if not any(SECRET_NAMES.search(label) for label in labels):
                continue
            scope: ast.AST = node
            while scope in parents and not isinstance(scope, _FUNCTIONS):
                scope = parents[scope]
            function = scope.name if isinstance(scope, _FUNCTIONS) else "<module>"
            name = str(path.relative_to(PACKAGE))
            found.append((name, function, ast.unparse(node), labels))
    return found


def test_secrets_are_compared_only_with_compare_digest() -> None:
    """No ``==``/``!=``/``in`` on names that hold tags, MACs, tokens, digests or secrets,
    except the allowlisted ones above, each with its reason."""
    offending = [
        f"{name}:{function}: {source}"
        for name, function, source, _ in _comparisons()
        if (name, function, source) not in ALLOWED
    ]
    assert not offending, "compare these with hmac.compare_digest:\n" + "\n".join(offending)


def test_the_allowlist_has_no_stale_entries() -> None:
    """Every allowlisted comparison still exists, so the list cannot rot into a blanket pass."""
    present = {(name, function, source) for name, function, source, _ in _comparisons()}
    assert set(ALLOWED) <= present


def test_the_scan_catches_a_plain_comparison() -> None:
    """The heuristic flags what it must: a MAC compared with ``==``."""
    tree = ast.parse("def verify(mac, expected_tag):\n    return mac == expected_tag\n")
    compare = next(node for node in ast.walk(tree) if isinstance(node, ast.Compare))
    labels = [_label(operand) for operand in (compare.left, *compare.comparators)]
    assert all(SECRET_NAMES.search(label) for label in labels)


def test_secret_checks_use_compare_digest() -> None:
    """The modules that verify tags and tokens do call hmac.compare_digest."""
    calls: Counter[str] = Counter()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "compare_digest":
                calls[path.relative_to(PACKAGE).as_posix()] += 1
    assert calls["crypto.py"] >= 2
    assert calls["csrf/tokens.py"] >= 3


def test_key_ids_reveal_nothing_usable(secret: str) -> None:
    """A key id is 4 bytes of HKDF output, unrelated to the secret's own hash."""
    generator = KeyGenerator(secret)
    assert 4 == len(generator.key_id)
    assert generator.key_id not in hashlib.sha256(secret.encode()).digest()
    assert generator.key_id not in secret.encode()
