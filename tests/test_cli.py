from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis

from asgisession import SessionMiddleware, serializer
from asgisession._types import Message, Receive, Scope, Send
from asgisession.backends.server import NAMESPACE
from asgisession.cli import ADVICE, main, relative
from asgisession.crypto import Keyring, MessageCodec, MessageEncryptor, MessageVerifier
from asgisession.errors import RejectReason
from asgisession.stores import from_url

from .servers import LOOPBACK, ServerProcess, free_port

# Fixed random secrets (secrets.token_hex(32)), so failures reproduce.
NEW_SECRET = "b44d486a7fa51bdc790620eb9f84555741eb6274729962447fd1e41773a7073a"
OLD_SECRET = "69bab5cae5eb70e8594aa4a3407224fe0ca690368f05df89228965297ff5edba"
OTHER_SECRET = "891dfb4aaf4f3a859c8760d82264968fee0bfc2cfebdbf7b68b4f4ddd5d2d071"
DATA = {"user_id": 42, "cart": ["a", "b", "c"]}
STABLE_KEYS = {
    "store_key", "server_key", "store",
    "ok", "reason", "advice", "cookie_name", "size", "limit", "key_index", "stale", "key_id",
    "issued_at", "expires_at", "keys", "kind",
}  # fmt: skip


def seal(
    payload: bytes = b"",
    *,
    secret: str = NEW_SECRET,
    signed: bool = False,
    purpose: str = "session",
    issued_ago: int = 10,
    expires_in: int = 3 * 86400 + 60,
) -> str:
    """A cookie value sealed like the middleware seals one."""
    keyring = Keyring(secret)
    codec: MessageCodec = MessageVerifier(keyring) if signed else MessageEncryptor(keyring)
    now = int(time.time())
    return codec.seal(
        payload or serializer.dumps(DATA),
        purpose=purpose,
        issued_at=now - issued_ago,
        expires_at=now + expires_in,
    )


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, secrets: tuple[str, ...] = (NEW_SECRET,)
) -> tuple[int, str, str]:
    """Run ``main`` with ``--secret`` for each secret; return (code, stdout, stderr)."""
    args = list(argv)
    if args[0] == "inspect":
        args[1:1] = [arg for secret in secrets for arg in ("--secret", secret)]
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def inspect_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run ``inspect --json``; return the code and the parsed object."""
    code, out, _ = run(capsys, "inspect", "--json", *argv)
    return code, json.loads(out)


def test_secret_prints_128_hex_characters_that_differ_each_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`secret` prints 64 random bytes as hex, a new one each call."""
    first = run(capsys, "secret")
    second = run(capsys, "secret")
    assert 0 == first[0]
    assert re.fullmatch(r"[0-9a-f]{128}\n", first[1])
    assert first[1] != second[1]


def test_secret_is_accepted_by_keyring(capsys: pytest.CaptureFixture[str]) -> None:
    """A printed secret is strong enough for `Keyring`."""
    _, out, _ = run(capsys, "secret")
    assert 1 == len(Keyring(out.strip()).generators)


def test_inspect_encrypted_shows_keys_sizes_and_times(capsys: pytest.CaptureFixture[str]) -> None:
    """An encrypted cookie opens: keys with bytes, size, key index and id, relative times."""
    value = seal()
    code, out, _ = run(capsys, "inspect", value)
    assert 0 == code
    assert "opened, a cookie session" in out
    for key, n in serializer.sizes_by_key(DATA):
        kind = type(DATA[key]).__name__
        assert re.search(rf"{key}\s+{kind}\s+{n} B", out)
    assert "values hidden: --show-values shows them" in out
    assert '"a"' not in out
    assert f"{len('session') + len(value)} of 4096 bytes" in out
    assert f"index 0 (newest), key id {Keyring(NEW_SECRET).newest.key_id.hex()}" in out
    assert "(10 seconds ago)" in out
    assert "(in 3 days)" in out


def test_inspect_signed_with_format_signed(capsys: pytest.CaptureFixture[str]) -> None:
    """A signed cookie opens with `--format signed`, and is malformed to the default format."""
    value = seal(signed=True)
    assert 0 == run(capsys, "inspect", "--format", "signed", value)[0]
    code, data = inspect_json(capsys, value)
    assert (1, "malformed") == (code, data["reason"])


def test_inspect_accepts_a_pasted_name_prefix_and_quotes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`name="value"` with spaces opens, and the prefix names the cookie."""
    value = seal(purpose="sid")
    code, data = inspect_json(capsys, f'  sid="{value}"; ')
    assert (0, "sid") == (code, data["cookie_name"])


def test_rotation_shows_the_older_key_index(capsys: pytest.CaptureFixture[str]) -> None:
    """A cookie sealed under the older secret opens with key index 1 and that key id."""
    code, out, _ = run(capsys, "inspect", seal(secret=OLD_SECRET), secrets=(NEW_SECRET, OLD_SECRET))
    assert 0 == code
    assert (
        f"index 1 (older: re-sealed on next use), key id {Keyring(OLD_SECRET).newest.key_id.hex()}"
        in out
    )
    _, data = inspect_json(capsys, seal(secret=NEW_SECRET))
    assert (0, False) == (data["key_index"], data["stale"])


def test_a_cookie_name_that_is_no_cookie_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """The backends' own opening rules need a valid name: a bad one is a usage error."""
    code, out, err = run(capsys, "inspect", "--cookie-name", "a b", seal())
    assert (2, "") == (code, out)
    assert "not a valid cookie name" in err


def test_json_has_the_stable_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """`--json` prints one object with the stable keys and the key sizes."""
    code, data = inspect_json(capsys, seal())
    assert 0 == code
    assert STABLE_KEYS <= set(data)
    assert True is data["ok"]
    assert "cookie-session" == data["kind"]
    assert [
        {"key": k, "type": type(DATA[k]).__name__, "bytes": n}
        for k, n in serializer.sizes_by_key(DATA)
    ] == data["keys"]
    assert 4096 == data["limit"]
    assert isinstance(data["expires_at"], str)
    assert data["expires_at"].endswith("Z")


def _tampered() -> str:
    value = seal()
    return value[:40] + ("A" if value[40] != "A" else "B") + value[41:]


CASES: list[tuple[RejectReason, list[str], str]] = [
    (RejectReason.MALFORMED, [], "not*base64!"),
    (RejectReason.NON_CANONICAL, [], seal() + "=="),
    (RejectReason.NON_CANONICAL, [], f"session={seal()}=="),
    (RejectReason.UNKNOWN_KEY, [], seal(secret=OTHER_SECRET)),
    (RejectReason.BAD_TAG, [], _tampered()),
    (RejectReason.WRONG_PURPOSE, [], seal(purpose="other")),
    (RejectReason.EXPIRED, [], seal(issued_ago=7200, expires_in=-3600)),
    (RejectReason.IDLE_TIMEOUT, ["--idle-timeout", "60"], seal(issued_ago=600)),
    (RejectReason.BAD_PAYLOAD, [], seal(b"[1, 2, 3]")),
    (RejectReason.OVERSIZED, [], "A" * 4096),
]


@pytest.mark.parametrize(("reason", "extra", "value"), CASES, ids=[c[0].value for c in CASES])
def test_each_reason_exits_1_with_its_advice(
    capsys: pytest.CaptureFixture[str], reason: RejectReason, extra: list[str], value: str
) -> None:
    """Each refusal exits 1 and names the reason and its advice, in text and in JSON."""
    code, out, _ = run(capsys, "inspect", *extra, value)
    assert 1 == code
    assert f"not opened: {reason.value}" in out
    assert ADVICE[reason] in out
    code, data = inspect_json(capsys, *extra, value)
    assert (1, False, reason.value, ADVICE[reason], "session") == (
        code,
        data["ok"],
        data["reason"],
        data["advice"],
        data["cookie_name"],
    )


def test_unknown_key_lists_found_and_known_key_ids(capsys: pytest.CaptureFixture[str]) -> None:
    """`unknown_key` shows the key id in the cookie and the ids of the secrets given."""
    _, out, _ = run(capsys, "inspect", seal(secret=OTHER_SECRET))
    assert f"{Keyring(OTHER_SECRET).newest.key_id.hex()} in the cookie" in out
    assert Keyring(NEW_SECRET).newest.key_id.hex() in out
    assert "was it rotated out?" in out


def test_expired_shows_when(capsys: pytest.CaptureFixture[str]) -> None:
    """`expired` shows the expiry time and how long ago it was."""
    _, out, _ = run(capsys, "inspect", seal(issued_ago=7200, expires_in=-3600))
    assert re.search(r"expires\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(1 hour ago\)", out)


def test_secret_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `--secret`, $SECRET_KEY_BASE (a rotation list) is used."""
    monkeypatch.setenv("SECRET_KEY_BASE", f"{NEW_SECRET},{OLD_SECRET}")
    monkeypatch.delenv("SECRET_KEY_BASE_FILE", raising=False)
    code, out, _ = run(capsys, "inspect", "--json", seal(secret=OLD_SECRET), secrets=())
    assert (0, 1) == (code, json.loads(out)["key_index"])


def test_missing_secret_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No secret anywhere: exit 2 and one line on stderr, no traceback."""
    monkeypatch.delenv("SECRET_KEY_BASE", raising=False)
    monkeypatch.delenv("SECRET_KEY_BASE_FILE", raising=False)
    code, out, err = run(capsys, "inspect", seal(), secrets=())
    assert (2, "") == (code, out)
    assert 1 == len(err.strip().splitlines())
    # the app's own secret is what opens its cookies: never "generate a new one"
    assert err.startswith("asgisession: error: no secret to open the cookie with")
    assert "pass the app's own secret_key_base with --secret" in err
    assert "$SECRET_KEY_BASE" in err
    assert "python -m asgisession secret" not in err


def test_weak_secret_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A weak `--secret` is a configuration error: exit 2."""
    code, _, err = run(capsys, "inspect", seal(), secrets=("short",))
    assert 2 == code
    assert "needs at least 32" in err


@pytest.mark.parametrize(
    ("expected", "argv"),
    [("COOKIE_VALUE", ["inspect"]), ("positive", ["inspect", "--idle-timeout", "0", "x"])],
)
def test_usage_error_exits_2(
    capsys: pytest.CaptureFixture[str], expected: str, argv: list[str]
) -> None:
    """argparse's own errors exit 2, with the problem on stderr."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert 2 == info.value.code
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(
    ("expected", "ts"),
    [("in 3 days", 3 * 86400 + 5), ("2 hours ago", -7300), ("1 minute ago", -60), ("now", 0)],
)
def test_relative(expected: str, ts: int) -> None:
    """Relative times use the largest whole unit."""
    assert expected == relative(ts, 0)


def test_python_m_help_runs() -> None:
    """`python -m asgisession --help` exits 0 with the subcommands and an example."""
    result = subprocess.run(
        [sys.executable, "-m", "asgisession", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stderr
    assert "inspect" in result.stdout
    assert "secret" in result.stdout
    assert "examples:" in result.stdout


def test_show_values_shows_a_cookie_sessions_values(capsys: pytest.CaptureFixture[str]) -> None:
    """Values stay hidden by default; --show-values shows each, in text and in JSON."""
    value = seal()
    code, out, _ = run(capsys, "inspect", "--show-values", value)
    assert 0 == code
    assert re.search(r'cart\s+list\s+20 B  \["a", "b", "c"\]', out)
    assert re.search(r"user_id\s+int\s+12 B  42", out)
    assert "values hidden" not in out
    _, data = inspect_json(capsys, "--show-values", value)
    assert {"cart": ["a", "b", "c"], "user_id": 42} == {k["key"]: k["value"] for k in data["keys"]}
    _, data = inspect_json(capsys, value)
    assert all("value" not in k for k in data["keys"])


# -- server-side sessions: a real SQLite file and a real Redis ---------------------------------

PRIVATE = {"user_id": 42, "email": "ada@example.com"}


def login(store_url: str, data: dict[str, object] = PRIVATE) -> str:
    """Run one request through SessionMiddleware on the store the URL names; its cookie value."""

    async def go() -> str:
        store = from_url(store_url)
        sent: list[Message] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scope["session"].update(data)
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            sent.append(message)

        try:
            middleware = SessionMiddleware(app, secret_key_base=NEW_SECRET, store=store)
            await middleware({"type": "http", "path": "/", "headers": []}, receive, send)
        finally:
            await store.aclose()
        set_cookie: str = dict(sent[0]["headers"])[b"set-cookie"].decode()
        return set_cookie.split(";", 1)[0].split("=", 1)[1]

    return anyio.run(go)


def load_record(store_url: str, key: str) -> bytes | None:
    async def go() -> bytes | None:
        store = from_url(store_url)
        try:
            return await store.load(key)
        finally:
            await store.aclose()

    return anyio.run(go)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sessions.db'}"  # an absolute path: the fourth slash


@pytest.fixture
def redis_url(redis_proc: ServerProcess, tmp_path: Path) -> str:
    return f"redis://{LOOPBACK}:{redis_proc.port}/0?namespace={tmp_path.name}:"


@pytest.mark.integration
@pytest.mark.parametrize("url_fixture", ["sqlite_url", "redis_url"])
def test_store_opens_a_server_session_by_its_cookie(
    url_fixture: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """--store reads the record the middleware wrote, under the key the store really holds."""
    store_url: str = request.getfixturevalue(url_fixture)
    value = login(store_url)
    code, out, err = run(capsys, "inspect", "--store", store_url, value)
    assert (0, "") == (code, err)
    assert "opened, a server-side session id" in out
    assert re.search(r"email\s+str\s+25 B", out)
    assert re.search(r"user_id\s+int\s+12 B", out)
    assert "ada@example.com" not in out  # hidden without --show-values
    code, data = inspect_json(capsys, "--store", store_url, "--show-values", value)
    assert (0, "server-session-id") == (code, data["kind"])
    assert PRIVATE == {k["key"]: k["value"] for k in data["keys"]}
    # the key is the backend's, namespace included: the store has a record under it, sealed
    store_key = data["store_key"]
    assert isinstance(store_key, str)
    assert store_key.startswith(NAMESPACE)
    record = load_record(store_url, store_key)
    assert record is not None
    assert record.startswith(b"\x01")
    assert b"ada@example.com" not in record
    assert f"store key {store_key}" in out
    if url_fixture == "redis_url":  # and the key as it is in Redis, with the store's prefix
        server_key = f"{request.getfixturevalue('tmp_path').name}:{store_key}"
        assert server_key == data["server_key"]
        assert f"in server {server_key} (with the store's own prefix)" in out
        client = redis.Redis(host=LOOPBACK, port=request.getfixturevalue("redis_proc").port)
        try:
            assert 1 == client.exists(server_key)
        finally:
            client.close()
    _, text, _ = run(capsys, "inspect", "--store", store_url, "--show-values", value)
    assert re.search(r'email\s+str\s+25 B  "ada@example.com"', text)


@pytest.mark.integration
def test_store_refusals_are_clear_and_exit_1_or_2(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wrong secret, tampered cookie, a session gone, no such file: a message and a code."""
    value = login(sqlite_url)
    code, out, _ = run(capsys, "inspect", "--store", sqlite_url, value, secrets=(OTHER_SECRET,))
    assert (1, True) == (code, "not opened: unknown_key" in out)
    assert ADVICE[RejectReason.UNKNOWN_KEY] in out
    tampered = value[:30] + ("A" if value[30] != "A" else "B") + value[31:]
    code, out, _ = run(capsys, "inspect", "--store", sqlite_url, tampered)
    assert (1, True) == (code, "not opened: bad_tag" in out)
    # the record ends (logout elsewhere): the genuine cookie finds nothing
    _, data = inspect_json(capsys, "--store", sqlite_url, value)
    assert isinstance(data["store_key"], str)

    async def end() -> None:
        store = from_url(sqlite_url)
        try:
            assert await store.delete(str(data["store_key"])) is not False
        finally:
            await store.aclose()

    anyio.run(end)
    code, out, _ = run(capsys, "inspect", "--store", sqlite_url, value)
    assert (1, True) == (code, "not opened: not_found" in out)
    assert ADVICE[RejectReason.NOT_FOUND] in out
    missing = f"sqlite:///{tmp_path / 'nothing.db'}"
    code, out, err = run(capsys, "inspect", "--store", missing, value)
    assert (2, "") == (code, out)
    assert "no such file" in err
    assert not (tmp_path / "nothing.db").exists()  # inspecting creates nothing


def test_a_server_session_without_store_says_how_to_read_it(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "inspect", login(sqlite_url))
    assert 0 == code
    assert "pass --store URL (the app's store) to read it" in out
    assert re.search(rf"store key\s+{NAMESPACE}[0-9a-f]{{64}}", out)


def test_python_m_inspect_never_prints_a_traceback(sqlite_url: str) -> None:
    """The real command on a tampered cookie and on an unreachable store."""
    value = login(sqlite_url)
    env = {**os.environ, "SECRET_KEY_BASE": NEW_SECRET}
    env.pop("SECRET_KEY_BASE_FILE", None)
    for argv, expected in (
        ([value[:-2] + "xx", "--store", sqlite_url], 1),
        ([value, "--store", f"redis://{LOOPBACK}:{free_port()}/0?timeout=0.5"], 2),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "asgisession", "inspect", *argv],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip
        assert expected == done.returncode, done.stderr
        assert "Traceback" not in done.stderr + done.stdout
