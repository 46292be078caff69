"""Rails interop against real Rails code, run by ruby (Debian's ruby-actionpack & co.).

Three checks, none of them against our own reading of Rails:

1. Vectors freshly made by ``gen_vectors.rb`` with a random secret all decode.
2. Cookies and CSRF tokens made by asgisession pass ``verify_python_made.rb`` (Rails'
   cookie jars, CookieStore and ``protect_from_forgery`` read them) with 0 failed.
3. End to end over HTTP against ``server.rb`` on 127.0.0.1: a login on either side is a
   login on the other, the flash crosses once and is gone, CSRF tokens cross both ways.

Without ruby and the Rails packages these skip, naming what to install; with
``ASGISESSION_REQUIRE_SERVERS=1`` they fail instead.
"""

from __future__ import annotations

import calendar
import json
import re
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from asgisession import InvalidMessage, Keyring, RailsCookies, RejectReason
from asgisession.csrf import _decode_secret, mask_token, token_matches
from asgisession.rails_codecs import NO_EXPIRY, Digest, RailsEncryptor, RailsVerifier
from tests.rails_peer import COOKIE_NAME, peer
from tests.servers import RAILS_TOOLS, ServerProcess, rails_server, require_ruby_rails

DIGESTS: list[Digest] = ["sha1", "sha256"]


def run_ruby(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    ruby = require_ruby_rails()
    return subprocess.run(
        [ruby, *args], cwd=RAILS_TOOLS, capture_output=True, text=True, timeout=timeout
    )


def cookie_of(response: httpx.Response, name: str = COOKIE_NAME) -> str:
    """The (escaped) value of cookie ``name`` in the response's Set-Cookie headers."""
    for line in response.headers.get_list("set-cookie"):
        if line.startswith(f"{name}="):
            return line.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.get_list('set-cookie')}")


def python_client(secret: str, digest: Digest, **options: Any) -> httpx.AsyncClient:
    app = peer(secret, RailsCookies(digest=digest), **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://py.test")


# -- 1. fresh vectors ---------------------------------------------------------------------------


def reencoded(vector: dict[str, Any], keyring: Keyring) -> str:
    """Seal a deterministic vector's payload again with its IV, as its Rails app would."""
    config = vector["config"]
    kdf = config["kdf_digest"].lower()
    metadata = config["use_cookies_with_metadata"]
    codec: RailsEncryptor | RailsVerifier
    if vector["kind"] == "signed":
        hmac_digest = config["hmac_digest"].lower()
        codec = RailsVerifier(keyring, (kdf,), hmac_digest=hmac_digest, metadata=metadata)
    else:
        iv = bytes.fromhex(vector["iv_hex"])
        codec = RailsEncryptor(keyring, (kdf,), metadata=metadata, random_bytes=lambda n: iv)
    expires = vector["expires_at"]
    return codec.seal(
        msgspec.json.encode(vector["payload"]),
        purpose=vector["cookie_name"],
        issued_at=0,
        expires_at=NO_EXPIRY if expires is None else _timestamp(expires),
    )


def _timestamp(iso: str) -> int:
    return calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S"))


def test_fresh_vectors_from_rails_with_a_random_secret_all_decode() -> None:
    """gen_vectors.rb with a new secret: every vector opens to Rails' own read-back."""
    secret = secrets.token_hex(64)
    made = run_ruby("gen_vectors.rb", secret)
    assert made.returncode == 0, made.stderr[-2000:]
    data = json.loads(made.stdout)
    assert data["secret_key_base"] == secret
    keyring = Keyring(secret)
    stamp = data["generator"]["generated_at"][:19]
    now = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
    checked = reencodings = 0
    for vector in data["vectors"]:
        config = vector["config"]
        kdf = config["kdf_digest"].lower()
        codec: RailsEncryptor | RailsVerifier = (
            RailsVerifier(keyring, (kdf,), hmac_digest=config["hmac_digest"].lower())
            if vector["kind"] == "signed"
            else RailsEncryptor(keyring, (kdf,))
        )
        opening = {"purpose": vector["cookie_name"], "now": now}
        if vector["expect"] == "rejected_expired":
            with pytest.raises(InvalidMessage) as caught:
                codec.open(vector["cookie_value_escaped"], **opening)
            assert caught.value.reason is RejectReason.EXPIRED, vector["id"]
        elif config["serializer"] == "marshal":
            with pytest.raises(InvalidMessage, match="Marshal"):
                codec.open(vector["cookie_value_escaped"], **opening)
        else:
            opened = codec.open(vector["cookie_value_escaped"], **opening)
            assert msgspec.json.decode(opened.payload) == vector["ruby_read_back"], vector["id"]
        writable = vector["kind"] in ("encrypted", "signed") and config["serializer"] == "json"
        if vector["deterministic"] and writable:
            assert reencoded(vector, keyring) == vector["cookie_value_escaped"], vector["id"]
            reencodings += 1
        checked += 1
    for case in data["middleware"]:
        escaped = case["login"]["set_cookie"].split(";", 1)[0].split("=", 1)[1]
        codec = RailsEncryptor(keyring, (case["config"]["kdf_digest"].lower(),))
        session = json.loads(codec.open(escaped, purpose=COOKIE_NAME, now=now).payload)
        assert len(session["session_id"]) == 32
        checked += 1
    for csrf in data["csrf"]:
        raw = _decode_secret(csrf["raw_session_token"])
        assert raw is not None
        assert token_matches(raw, csrf["global_masked"])
        checked += 1
    assert checked == len(data["vectors"]) + len(data["middleware"]) + len(data["csrf"])
    assert reencodings == 18
    print(f"fresh Rails vectors: {checked} of {checked} decoded, {reencodings} re-encoded exactly")


# -- 2. Rails reads what we make ----------------------------------------------------------------


async def python_made_items(secret: str, digest: Digest) -> list[dict[str, Any]]:
    """Session, jar and CSRF items for verify_python_made.rb, made by the real middleware."""
    kdf = digest.upper()
    items: list[dict[str, Any]] = []
    async with python_client(secret, digest) as http:
        login = await http.get("/login?uid=99")
        escaped = cookie_of(login)
        # What Rails must see: the session as the Python side wrote it, flash included.
        seen = (await http.get("/whoami", headers={"cookie": f"{COOKIE_NAME}={escaped}"})).json()
    session = seen["session"]
    assert session["flash"] == {"discard": [], "flashes": {"notice": "Signed in as 99"}}
    header = f"{COOKIE_NAME}={escaped}"
    items.append(
        {
            "id": f"py-{digest}-session", "kdf_digest": kdf, "kind": "encrypted",
            "cookie_name": COOKIE_NAME, "cookie_header": header, "expect": session,
        }
    )  # fmt: skip
    raw = _decode_secret(session["_csrf_token"])
    assert raw is not None
    items.append(
        {
            "id": f"py-{digest}-csrf", "kdf_digest": kdf, "kind": "csrf",
            "session_cookie_header": header, "expect_user_id": 99,
            "global_masked": login.json()["authenticity_token"],
            "per_form_masked_update_post": mask_token(raw, action="/update", method="post"),
            "per_form_masked_wrong_action": mask_token(raw, action="/posts", method="post"),
            "raw_unmasked": session["_csrf_token"],
        }
    )  # fmt: skip
    for hmac_digest in DIGESTS:
        app = peer(secret, RailsCookies(digest=digest, signed_digest=hmac_digest))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://py.test") as http:
            jar = await http.get("/jar")
        items.append(
            {
                "id": f"py-{digest}-signed-{hmac_digest}", "kdf_digest": kdf, "kind": "signed",
                "hmac_digest": hmac_digest.upper(), "cookie_name": "remember_me",
                "cookie_header": f"remember_me={cookie_of(jar, 'remember_me')}",
                "expect": {"user_id": 7},
            }
        )  # fmt: skip
    items.append(
        {
            "id": f"py-{digest}-encrypted-scalar", "kdf_digest": kdf, "kind": "encrypted",
            "cookie_name": "discount", "cookie_header": f"discount={cookie_of(jar, 'discount')}",
            "expect": 45,
        }
    )  # fmt: skip
    return items


@pytest.mark.anyio
async def test_rails_reads_the_cookies_and_tokens_asgisession_makes(tmp_path: Path) -> None:
    """verify_python_made.rb: Rails' jars, CookieStore and controller accept them all."""
    require_ruby_rails()
    secret = secrets.token_hex(64)
    items = [item for digest in DIGESTS for item in await python_made_items(secret, digest)]
    made = tmp_path / "made.json"
    made.write_text(json.dumps({"secret_key_base": secret, "items": items}))
    result = run_ruby("verify_python_made.rb", str(made))
    summary = result.stdout.strip().splitlines()[-1]
    print(f"verify_python_made.rb: {summary}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    match = re.fullmatch(r"(\d+) passed, (\d+) failed", summary)
    assert match is not None, summary
    assert int(match[2]) == 0
    # 2 digests x (session 3 checks + csrf 6 + 2 signed + 1 encrypted): nothing skipped.
    assert int(match[1]) == 24


# -- 3. end to end over HTTP --------------------------------------------------------------------


@pytest.fixture(scope="module", params=DIGESTS)
def rails(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, str, Digest]]:
    """server.rb (real Rails) on a free loopback port, with its secret and key digest."""
    digest: Digest = request.param
    secret = secrets.token_hex(64)
    server = rails_server(secret, digest.upper())
    try:
        yield server, secret, digest
    finally:
        server.stop()


@pytest.fixture
async def rails_http(
    rails: tuple[ServerProcess, str, Digest],
) -> AsyncIterator[httpx.AsyncClient]:
    server = rails[0]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as http:
        yield http


@pytest.mark.anyio
async def test_a_rails_login_is_a_python_login_and_the_flash_is_then_gone(
    rails: tuple[ServerProcess, str, Digest], rails_http: httpx.AsyncClient
) -> None:
    """Log in on Rails; Python sees the user and the flash once; Rails then sees no flash."""
    _, secret, digest = rails
    login = await rails_http.get("/login", params={"uid": "42"})
    assert login.status_code == 200
    async with python_client(secret, digest) as py:
        seen = await py.get("/whoami", headers={"cookie": f"{COOKIE_NAME}={cookie_of(login)}"})
    assert seen.json()["user_id"] == 42
    assert seen.json()["flash"] == {"notice": "Signed in as 42"}
    after = await rails_http.get("/whoami", headers={"cookie": f"{COOKIE_NAME}={cookie_of(seen)}"})
    assert after.json()["user_id"] == 42
    assert after.json()["flash"] == {}
    assert "flash" not in after.json()["session"]


@pytest.mark.anyio
async def test_a_python_login_is_a_rails_login_and_the_flash_is_then_gone(
    rails: tuple[ServerProcess, str, Digest], rails_http: httpx.AsyncClient
) -> None:
    """Log in on Python; Rails sees the user and the flash once; Python then sees no flash."""
    _, secret, digest = rails
    async with python_client(secret, digest) as py:
        login = await py.get("/login?uid=99")
        seen = await rails_http.get(
            "/whoami", headers={"cookie": f"{COOKIE_NAME}={cookie_of(login)}"}
        )
        assert seen.json()["user_id"] == 99
        assert seen.json()["flash"] == {"notice": "Signed in as 99"}
        assert len(seen.json()["session"]["session_id"]) == 32
        after = await py.get("/whoami", headers={"cookie": f"{COOKIE_NAME}={cookie_of(seen)}"})
    assert after.json()["user_id"] == 99
    assert after.json()["flash"] == {}
    assert after.json()["rejection"] is None


@pytest.mark.anyio
async def test_csrf_tokens_cross_both_ways(
    rails: tuple[ServerProcess, str, Digest], rails_http: httpx.AsyncClient
) -> None:
    """A form rendered by either side posts to the other; a wrong token is refused by both."""
    _, secret, digest = rails
    rails_login = await rails_http.get("/login", params={"uid": "42"})
    rails_cookie = {"cookie": f"{COOKIE_NAME}={cookie_of(rails_login)}"}
    rails_token = rails_login.json()["authenticity_token"]
    per_form = await rails_http.get(
        "/csrf", params={"action_path": "/update", "form_method": "post"}, headers=rails_cookie
    )
    per_form_cookie = {"cookie": f"{COOKIE_NAME}={cookie_of(per_form)}"}
    async with python_client(secret, digest) as py:
        for token, headers in (
            (rails_token, rails_cookie),
            (per_form.json()["per_form_masked"], per_form_cookie),
        ):
            posted = await py.post("/update", data={"authenticity_token": token}, headers=headers)
            assert posted.status_code == 200, posted.text
            assert posted.json()["user_id"] == 42
        refused = await py.post(
            "/update", data={"authenticity_token": rails_token[::-1]}, headers=rails_cookie
        )
        assert refused.status_code == 403
        py_login = await py.get("/login?uid=99")
    py_cookie = {"cookie": f"{COOKIE_NAME}={cookie_of(py_login)}"}
    py_token = py_login.json()["authenticity_token"]
    posted = await rails_http.post(
        "/update", data={"authenticity_token": py_token}, headers=py_cookie
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["user_id"] == 99
    refused = await rails_http.post(
        "/update", data={"authenticity_token": py_token[::-1]}, headers=py_cookie
    )
    assert refused.status_code == 422
