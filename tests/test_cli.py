from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from asgisession import SessionMiddleware, serializer
from asgisession._types import Message, Receive, Scope, Send
from asgisession.cli import ADVICE, main, relative
from asgisession.crypto import Keyring, MessageCodec, MessageEncryptor, MessageVerifier
from asgisession.errors import RejectReason
from asgisession.stores.memory import MemoryStore

# Fixed random secrets (secrets.token_hex(32)), so failures reproduce.
NEW_SECRET = "b44d486a7fa51bdc790620eb9f84555741eb6274729962447fd1e41773a7073a"
OLD_SECRET = "69bab5cae5eb70e8594aa4a3407224fe0ca690368f05df89228965297ff5edba"
OTHER_SECRET = "891dfb4aaf4f3a859c8760d82264968fee0bfc2cfebdbf7b68b4f4ddd5d2d071"
DATA = {"user_id": 42, "cart": ["a", "b", "c"]}
STABLE_KEYS = {
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


def inspect_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
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
        assert re.search(rf"{key}\s+{n} B", out)
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
    assert [{"key": k, "bytes": n} for k, n in serializer.sizes_by_key(DATA)] == data["keys"]
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


@pytest.mark.anyio
async def test_server_side_id_is_shown_with_the_key_the_backend_stores_it_under(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server-side session's cookie: the CLI names the very store key the backend wrote."""
    store = MemoryStore()

    async def login(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["user_id"] = 42
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    app = SessionMiddleware(login, secret_key_base=NEW_SECRET, store=store)
    await app({"type": "http", "path": "/", "headers": []}, receive, send)
    set_cookie = dict(sent[0]["headers"])[b"set-cookie"].decode()
    value = set_cookie.split(";", 1)[0].split("=", 1)[1]

    code, out, _ = run(capsys, "inspect", value)
    assert 0 == code
    assert "a server-side session id (the data is in the store)" in out
    code, data = inspect_json(capsys, value)
    assert (0, "server-session-id") == (code, data["kind"])
    assert isinstance(data["store_key"], str)
    assert data["store_key"] in out
    record = await store.load(data["store_key"]) or b""
    assert {"user_id": 42} == serializer.loads(record.partition(b"\n")[2])  # after its binding


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
    assert err.startswith("asgisession: error: $SECRET_KEY_BASE is not set")


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
