"""Tests for asgisession.rails against vectors made by real Rails 6.1 (tests/data/rails).

Tests that run Rails itself (fresh vectors, Rails reading what we make, HTTP end to end)
are in test_rails_ruby.py.
"""

from __future__ import annotations

import base64
import calendar
import hmac
import json
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
import msgspec
import pytest

from asgisession import (
    ConfigurationError,
    CookieOverflow,
    InvalidMessage,
    Keyring,
    MessageEncryptor,
    RailsCookies,
    RejectReason,
    Rotation,
    SessionMiddleware,
)
from asgisession._types import Receive, Scope, Send
from asgisession.cli import main
from asgisession.crypto import CookieFormat
from asgisession.csrf import _global_token, _per_form_token, token_matches
from asgisession.rails_codecs import (
    NO_EXPIRY,
    Digest,
    RailsEncryptor,
    RailsVerifier,
    rails_escape,
)
from tests.rails_peer import COOKIE_NAME, peer

DATA = json.loads((Path(__file__).parent / "data" / "rails" / "vectors.json").read_text())
SECRET = DATA["secret_key_base"]
KEYRING = Keyring(SECRET)
#: The vectors' own time: a vector with a relative expiry (1 hour) is valid then.
GENERATED_AT = calendar.timegm(
    time.strptime(DATA["generator"]["generated_at"][:19], "%Y-%m-%dT%H:%M:%S")
)
VECTORS = {v["id"]: v for v in DATA["vectors"]}
#: Deterministic vectors we never write, by design: Marshal (never written nor read) and
#: legacy AES-CBC (read for rotation only).
NEVER_WRITTEN = {"enc-sha1-marshal", "enc-sha1-cbc-legacy"}
REENCODED = [i for i, v in VECTORS.items() if v["deterministic"] and i not in NEVER_WRITTEN]


def codec_for(vector: dict[str, Any], iv: bytes | None = None) -> RailsEncryptor | RailsVerifier:
    """The codec configured as the Rails app that made ``vector``."""
    config = vector["config"]
    kdf = config["kdf_digest"].lower()
    metadata = config["use_cookies_with_metadata"]
    if vector["kind"] == "signed":
        return RailsVerifier(
            KEYRING, (kdf,), hmac_digest=config["hmac_digest"].lower(), metadata=metadata
        )
    fixed = iv or b""
    return RailsEncryptor(KEYRING, (kdf,), metadata=metadata, random_bytes=lambda n: fixed)


def exp_of(vector: dict[str, Any]) -> int:
    text = vector["expires_at"]
    if text is None:
        return NO_EXPIRY
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))


# -- every vector decodes ---------------------------------------------------------------------


@pytest.mark.parametrize("vector_id", sorted(VECTORS))
def test_every_rails_vector_decodes_to_its_expected_value(vector_id: str) -> None:
    """Each value Rails wrote opens to Rails' own read-back; expired and Marshal ones refuse."""
    vector = VECTORS[vector_id]
    codec = codec_for(vector)
    opening = {"purpose": vector["cookie_name"], "now": GENERATED_AT}
    if vector["expect"] == "rejected_expired":
        with pytest.raises(InvalidMessage) as caught:
            codec.open(vector["cookie_value_escaped"], **opening)
        assert caught.value.reason is RejectReason.EXPIRED
        assert vector["ruby_read_back"] is None
        return
    assert vector["expect"] == "valid"
    if vector_id == "enc-sha1-marshal":  # Rails reads it; we refuse Marshal on purpose
        with pytest.raises(InvalidMessage, match="Marshal") as caught:
            codec.open(vector["cookie_value_escaped"], **opening)
        assert caught.value.reason is RejectReason.BAD_PAYLOAD
        return
    opened = codec.open(vector["cookie_value_escaped"], **opening)
    assert msgspec.json.decode(opened.payload) == vector["ruby_read_back"] == vector["payload"]
    assert opened.expires_at == exp_of(vector) or vector["expires_in_seconds"] is not None


@pytest.mark.parametrize("vector_id", sorted(VECTORS))
def test_our_escaping_is_rack_escaping(vector_id: str) -> None:
    """Every value Rails sent is escaped exactly as rails_escape escapes it."""
    vector = VECTORS[vector_id]
    assert rails_escape(vector["cookie_value"]) == vector["cookie_value_escaped"]
    assert vector["set_cookie"].startswith(
        f"{vector['cookie_name']}={vector['cookie_value_escaped']};"
    )


@pytest.mark.parametrize("vector_id", sorted(REENCODED))
def test_every_deterministic_vector_reencodes_byte_for_byte(vector_id: str) -> None:
    """With Rails' IV, sealing the payload gives Rails' exact (escaped) cookie value."""
    vector = VECTORS[vector_id]
    iv = bytes.fromhex(vector["iv_hex"]) if vector["kind"] == "encrypted" else None
    sealed = codec_for(vector, iv).seal(
        msgspec.json.encode(vector["payload"]),
        purpose=vector["cookie_name"],
        issued_at=GENERATED_AT,
        expires_at=exp_of(vector),
    )
    assert sealed == vector["cookie_value_escaped"]


def test_the_reencoded_vectors_are_all_deterministic_ones_we_write() -> None:
    """Guard: the byte-for-byte test covers every deterministic vector but the two by design."""
    deterministic = {v["id"] for v in DATA["vectors"] if v["deterministic"]}
    assert deterministic - set(REENCODED) == NEVER_WRITTEN
    assert len(REENCODED) == 18
    assert {VECTORS[i]["kind"] for i in REENCODED} == {"encrypted", "signed"}


@pytest.mark.parametrize("rotation", DATA["rotations"], ids=lambda r: r["id"])
def test_rails_sha1_to_sha256_rotation_vectors(rotation: dict[str, Any]) -> None:
    """A SHA256 reader takes the old SHA1 value (and asks to re-issue); Rails' rewrite opens too."""
    source = VECTORS[rotation["input_vector"]]
    name = source["cookie_name"]
    cookies = RailsCookies(digest="sha256")
    kind: Literal["signed", "encrypted"] = "signed" if source["kind"] == "signed" else "encrypted"
    codec = cookies.jar_codec(KEYRING, kind)
    old = codec.open(source["cookie_value_escaped"], purpose=name, now=GENERATED_AT)
    assert msgspec.json.decode(old.payload) == rotation["read_value"]
    # opened with the newest secret but the read-only digest: re-issue
    assert (0, True) == (old.key_index, old.stale)
    new = codec.open(
        rails_escape(rotation["rewritten_cookie_value"]), purpose=name, now=GENERATED_AT
    )
    assert msgspec.json.decode(new.payload) == rotation["read_value"]
    assert (0, False) == (new.key_index, new.stale)
    strict = (RailsVerifier if kind == "signed" else RailsEncryptor)(KEYRING, ("sha1",))
    with pytest.raises(InvalidMessage):
        strict.open(
            rails_escape(rotation["rewritten_cookie_value"]), purpose=name, now=GENERATED_AT
        )


def test_rails_overflow_vector_sizes_match_and_ours_is_stricter() -> None:
    """Our seal of Rails' largest payload has Rails' size; sent escaped it overflows our rule."""
    overflow = DATA["overflow"]
    codec = RailsEncryptor(KEYRING, ("sha1",))
    biggest = {"s": "x" * overflow["max_ok_N"]}
    sealed = codec.seal(
        msgspec.json.encode(biggest), purpose=COOKIE_NAME, issued_at=0, expires_at=NO_EXPIRY
    )
    raw = sealed.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
    assert len(raw) == overflow["value_bytesize_at_max"] == 4092
    assert len(sealed) + len(COOKIE_NAME) > 4096  # browsers drop it: we refuse to write it


@pytest.mark.parametrize("case", DATA["middleware"], ids=lambda c: c["id"])
@pytest.mark.anyio
async def test_a_session_cookie_from_rails_login_is_read_by_the_middleware(
    case: dict[str, Any],
) -> None:
    """The cookie Rails' CookieStore set at login gives the Python app the same session."""
    digest = case["config"]["kdf_digest"].lower()
    app = peer(SECRET, RailsCookies(digest=digest), clock=lambda: float(GENERATED_AT))
    escaped = case["login"]["set_cookie"].split(";", 1)[0].split("=", 1)[1]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        seen = (await http.get("/whoami", headers={"cookie": f"{COOKIE_NAME}={escaped}"})).json()
    if "whoami" in case:
        assert seen["user_id"] == 42
        assert seen["flash"] == {"notice": "Signed in as 42"}
        assert seen["session"]["session_id"] == case["whoami"]["body"]["session"]["session_id"]
        return
    # expire_after: 14.days: the envelope's exp is the request time plus 14 days.
    assert seen["user_id"] is not None
    assert seen["rejection"] is None
    opened = RailsEncryptor(KEYRING, (digest,)).open(escaped, purpose=COOKIE_NAME, now=GENERATED_AT)
    requested = calendar.timegm(time.strptime(case["request_time_utc"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert opened.expires_at == requested + case["config"]["expire_after_seconds"]


@pytest.mark.parametrize("case", DATA["csrf"], ids=lambda c: c["id"])
def test_rails_csrf_tokens_verify_and_our_masking_is_rails(case: dict[str, Any]) -> None:
    """Rails' masked global and per-form tokens verify; our masking of Rails' pads is identical."""
    raw = bytes.fromhex(case["raw_token_bytes_hex"])
    assert _global_token(raw).hex() == case["global_csrf_token_hex"]
    form = case["per_form"]
    assert _per_form_token(raw, form["action"], form["method"]).hex() == form["token_hex"]
    assert token_matches(raw, case["global_masked"])
    assert token_matches(raw, form["masked"], path=form["action"], method="POST")
    assert not token_matches(raw, form["masked"], path="/elsewhere", method="POST")
    assert not token_matches(raw, form["masked"])
    for pad_hex, real, masked in (
        (case["global_pad_hex"], _global_token(raw), case["global_masked"]),
        (form["pad_hex"], bytes.fromhex(form["token_hex"]), form["masked"]),
    ):
        pad = bytes.fromhex(pad_hex)
        mine = pad + bytes(a ^ b for a, b in zip(pad, real, strict=True))
        assert base64.urlsafe_b64encode(mine).rstrip(b"=").decode() == masked


# -- the middleware with Rails' format ---------------------------------------------------------


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def set_cookie_value(response: httpx.Response, name: str = COOKIE_NAME) -> str:
    for line in response.headers.get_list("set-cookie"):
        if line.startswith(f"{name}="):
            return line.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers}")


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
@pytest.mark.anyio
async def test_a_python_login_is_a_rails_session(secret: str, digest: Digest) -> None:
    """What the Python side writes is Rails' shape: escaped, envelope, session_id, flash."""
    async with client(peer(secret, RailsCookies(digest=digest))) as http:
        login = await http.get("/login?uid=99")
    value = set_cookie_value(login)
    assert not set("+/=") & set(value)
    opened = RailsEncryptor(Keyring(secret), (digest,)).open(
        value, purpose=COOKIE_NAME, now=int(time.time())
    )
    data = json.loads(opened.payload)
    assert data["user_id"] == 99
    assert len(data["session_id"]) == 32
    assert int(data["session_id"], 16) >= 0
    assert data["flash"] == {"discard": [], "flashes": {"notice": "Signed in as 99"}}
    assert len(data["_csrf_token"]) == 43


@pytest.mark.anyio
async def test_the_session_id_survives_later_writes(secret: str) -> None:
    """Rails' session_id is made once and then kept, as CookieStore keeps it."""
    async with client(peer(secret, RailsCookies())) as http:
        await http.get("/login?uid=1")
        first = (await http.get("/whoami")).json()["session"]["session_id"]
        await http.get("/login?uid=2")
        assert (await http.get("/whoami")).json()["session"]["session_id"] == first


@pytest.mark.anyio
async def test_a_rails_session_without_exp_keeps_none(secret: str) -> None:
    """A Rails cookie with "exp":null (no expire_after) is re-written with null again."""
    keyring = Keyring(secret)
    codec = RailsEncryptor(keyring, ("sha1",), session=True)
    value = codec.seal(
        b'{"session_id":"ab","user_id":5}', purpose=COOKIE_NAME, issued_at=0, expires_at=NO_EXPIRY
    )
    async with client(peer(secret, RailsCookies())) as http:
        http.cookies.set(COOKIE_NAME, value)
        response = await http.get("/login?uid=6")
    rewritten = set_cookie_value(response)
    opened = codec.open(rewritten, purpose=COOKIE_NAME, now=int(time.time()))
    assert opened.expires_at == NO_EXPIRY
    assert json.loads(opened.payload)["user_id"] == 6


@pytest.mark.parametrize(
    "value",
    [
        "junk", "a--b--c", "a--b", "%zz--%--", "=" * 10, "--" * 50, "x" * 5000,
        "AAAA--AAAAAAAAAAAAAAAA--AAAAAAAAAAAAAAAAAAAAAA%3D%3D", "\u00e9t\u00e9--a--b",
    ],
)  # fmt: skip
@pytest.mark.anyio
async def test_foreign_or_tampered_values_give_an_empty_session_with_a_reason(
    secret: str, value: str
) -> None:
    """Nothing a client sends makes the Rails format fail the request."""
    app = peer(secret, RailsCookies())
    async with client(app) as http:
        response = await http.get(
            "/whoami", headers={"cookie": f"{COOKIE_NAME}={quote(value, safe='%=-')}"}
        )
    assert response.status_code == 200
    assert response.json()["session"] == {}
    assert response.json()["rejection"] is not None


@pytest.mark.anyio
async def test_a_flipped_byte_and_a_foreign_secret_are_bad_tags(
    secret: str, other_secret: str
) -> None:
    """Tampering and another app's secret are both refused as bad_tag."""
    async with client(peer(other_secret, RailsCookies())) as http:
        foreign = set_cookie_value(await http.get("/login?uid=1"))
    # Flip a base64 letter, not part of an escape: Rack escapes '+' and '/' as %2B and %2F,
    # and flipping a '%' or its digits (a value starts so about 1 time in 32) is malformed.
    at = next(
        i
        for i, char in enumerate(foreign)
        if char.isalnum() and "%" not in foreign[max(0, i - 2) : i]
    )
    tampered = foreign[:at] + ("B" if foreign[at] != "B" else "C") + foreign[at + 1 :]
    for value, reason in ((foreign, "bad_tag"), (tampered, "bad_tag")):
        async with client(peer(secret, RailsCookies())) as http:
            seen = (await http.get("/whoami", headers={"cookie": f"{COOKIE_NAME}={value}"})).json()
        assert (seen["session"], seen["rejection"]) == ({}, reason)


def test_a_value_for_another_cookie_is_wrong_purpose(secret: str) -> None:
    """The envelope's purpose binds a value to its cookie name."""
    codec = RailsEncryptor(Keyring(secret))
    value = codec.seal(b'{"a":1}', purpose="other", issued_at=0, expires_at=NO_EXPIRY)
    with pytest.raises(InvalidMessage) as caught:
        codec.open(value, purpose=COOKIE_NAME, now=0)
    assert caught.value.reason is RejectReason.WRONG_PURPOSE


def test_the_envelope_is_compact_and_in_rails_key_order(secret: str) -> None:
    """Rails 7.1+ finds the envelope by its exact byte prefix; we write exactly that."""
    keyring = Keyring(secret)
    value = RailsVerifier(keyring).seal(
        b'{"a":"<&>"}', purpose="c", issued_at=0, expires_at=4102444799
    )
    data = base64.b64decode(value.replace("%3D", "=").rpartition("--")[0])
    assert data == (
        b'{"_rails":{"message":"eyJhIjoiXHUwMDNjXHUwMDI2XHUwMDNlIn0=",'
        b'"exp":"2099-12-31T23:59:59.000Z","pur":"cookie.c"}}'
    )
    key = keyring.newest.pbkdf2(b"signed cookie", 64, "sha1", 1000)
    mac = hmac.digest(key, base64.b64encode(data), "sha1").hex()
    assert value.endswith("--" + mac)


def test_rails_formats_refuse_settings_that_need_an_issue_time(secret: str) -> None:
    """Rails records no issue time: idle_timeout and user_key cannot work, and say so."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("never called")

    with pytest.raises(ConfigurationError, match="does not record"):
        SessionMiddleware(
            app, secret_key_base=secret, cookie_format=RailsCookies(), idle_timeout=60
        )
    with pytest.raises(ConfigurationError, match="does not record"):
        SessionMiddleware(app, secret_key_base=secret, cookie_format=RailsCookies(), user_key="u")


def test_bad_digests_and_formats_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="sha1"):
        RailsCookies(digest="md5")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="non-empty"):
        Rotation(write="encrypted", read=[])
    with pytest.raises(ConfigurationError, match="not a cookie format"):
        Rotation(write="encrypted", read=["rails"])  # type: ignore[list-item]


# -- rotation, both ways -----------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["rails-to-native", "native-to-rails"])
@pytest.mark.anyio
async def test_rotation_moves_a_session_between_formats_without_a_logout(
    secret: str, direction: str
) -> None:
    """A cookie in the old format opens and comes back in the new one, same session."""
    rails: CookieFormat = RailsCookies(digest="sha256")
    native: Literal["encrypted"] = "encrypted"
    old, new = (rails, native) if direction == "rails-to-native" else (native, rails)
    async with client(peer(secret, old)) as http:
        value = set_cookie_value(await http.get("/login?uid=5"))
    rotating = peer(secret, Rotation(write=new, read=[old]))
    async with client(rotating) as http:
        response = await http.get("/whoami", headers={"cookie": f"{COOKIE_NAME}={value}"})
    assert response.json()["user_id"] == 5
    reissued = set_cookie_value(response)
    keyring = Keyring(secret)
    if direction == "rails-to-native":
        opened = MessageEncryptor(keyring).open(reissued, purpose=COOKIE_NAME, now=int(time.time()))
    else:
        opened = RailsEncryptor(keyring, ("sha256",)).open(
            reissued, purpose=COOKIE_NAME, now=int(time.time())
        )
    assert json.loads(opened.payload)["user_id"] == 5


@pytest.mark.anyio
async def test_rotation_reads_rails_jar_cookies_and_writes_native_ones(secret: str) -> None:
    """The cookie jar rotates too: a Rails signed/encrypted cookie reads under Rotation."""
    async with client(peer(secret, RailsCookies())) as http:
        set_by_rails_format = await http.get("/jar")
    jar_cookies = {
        line.split("=", 1)[0]: line.split(";", 1)[0].split("=", 1)[1]
        for line in set_by_rails_format.headers.get_list("set-cookie")
    }
    header = "; ".join(f"{k}={v}" for k, v in jar_cookies.items())
    async with client(peer(secret, Rotation(write="encrypted", read=[RailsCookies()]))) as http:
        seen = (await http.get("/jar/read", headers={"cookie": header})).json()
    assert seen == {"remember_me": {"user_id": 7}, "discount": 45}


@pytest.mark.anyio
async def test_the_jar_writes_rails_signed_and_encrypted_cookies(secret: str) -> None:
    """cookies(scope).signed/.encrypted in Rails' format, bound to cookie.<name>."""
    async with client(peer(secret, RailsCookies(signed_digest="sha256"))) as http:
        response = await http.get("/jar")
    values = {
        line.split("=", 1)[0]: line.split(";", 1)[0].split("=", 1)[1]
        for line in response.headers.get_list("set-cookie")
    }
    keyring = Keyring(secret)
    signed = RailsVerifier(keyring, ("sha1",), hmac_digest="sha256").open(
        values["remember_me"], purpose="remember_me", now=0
    )
    assert json.loads(signed.payload) == {"user_id": 7}
    encrypted = RailsEncryptor(keyring).open(values["discount"], purpose="discount", now=0)
    assert encrypted.payload == b"45"


def test_the_jar_reads_the_rails_made_vectors(secret: str) -> None:
    """Rails' own jar vectors open with the jar codecs of RailsCookies."""
    for vector in DATA["vectors"]:
        if vector["expect"] != "valid" or vector["id"] in NEVER_WRITTEN:
            continue
        config = vector["config"]
        cookies = RailsCookies(
            config["kdf_digest"].lower(), signed_digest=config.get("hmac_digest", "sha1").lower()
        )
        codec = cookies.jar_codec(KEYRING, "signed" if vector["kind"] == "signed" else "encrypted")
        opened = codec.open(
            vector["cookie_value_escaped"], purpose=vector["cookie_name"], now=GENERATED_AT
        )
        assert msgspec.json.decode(opened.payload) == vector["payload"]


def test_seal_refuses_what_rails_itself_would_refuse(secret: str) -> None:
    """Rails' own overflow rule (raw value over 4096 bytes) holds next to ours."""
    codec = RailsEncryptor(Keyring(secret))
    with pytest.raises(CookieOverflow):
        codec.seal(
            msgspec.json.encode({"s": "x" * 2222}),
            purpose=COOKIE_NAME,
            issued_at=0,
            expires_at=NO_EXPIRY,
        )


# -- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize("escaped", [True, False])
def test_cli_inspect_opens_a_rails_cookie(
    escaped: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inspect --format rails-sha256` opens Rails' cookie, pasted escaped or not."""
    vector = VECTORS["enc-sha256-session"]
    value = vector["cookie_value_escaped" if escaped else "cookie_value"]
    argv = ["inspect", "--secret", SECRET, "--format", "rails-sha256", "--json"]
    assert main([*argv, f"_app_session={value}"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cookie_name"] == "_app_session"
    assert {entry["key"] for entry in report["keys"]} == set(vector["payload"])
    assert (report["key_index"], report["stale"]) == (0, False)
    assert report["issued_at"] is None  # Rails records none


def test_cli_inspect_says_a_cookie_under_the_read_only_digest_is_re_sealed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A SHA1 cookie read as rails-sha256: the newest secret, yet re-sealed (stale)."""
    vector = VECTORS["enc-sha1-session"]
    argv = ["inspect", "--secret", SECRET, "--format", "rails-sha256"]
    assert main([*argv, "--json", f"_app_session={vector['cookie_value_escaped']}"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["key_index"], report["stale"]) == (0, True)
    assert main([*argv, f"_app_session={vector['cookie_value_escaped']}"]) == 0
    assert (
        "index 0 (newest, in a format only read: re-sealed on next use)" in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("vector_id", "reason"),
    [("enc-sha1-session-exp-past", "expired"), ("enc-sha1-marshal", "bad_payload")],
)
def test_cli_inspect_explains_a_refused_rails_cookie(
    vector_id: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Expired and Marshal Rails cookies exit 1 with the reason."""
    value = VECTORS[vector_id]["cookie_value"]
    argv = ["inspect", "--secret", SECRET, "--format", "rails-sha1", "--json"]
    assert main([*argv, f"_app_session={value}"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == reason


@pytest.mark.parametrize("codec_kind", ["signed", "legacy-encrypted"])
@pytest.mark.parametrize("mac", ["\u00e9" * 40, "\u00e9" * 64, "g" * 40, "0" * 39])
def test_a_mac_that_is_not_hex_is_malformed_not_an_error(
    secret: str, codec_kind: str, mac: str
) -> None:
    """Non-ASCII or non-hex signatures are refused as malformed before any comparison."""
    keyring = Keyring(secret)
    codec = RailsVerifier(keyring) if codec_kind == "signed" else RailsEncryptor(keyring)
    with pytest.raises(InvalidMessage) as caught:
        codec.open(quote(f"YQ==--{mac}"), purpose=COOKIE_NAME, now=0)
    assert caught.value.reason is RejectReason.MALFORMED
