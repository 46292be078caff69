"""Attacks on the session cookie, run on every store (issue #16, items 2, 4, 6, 7 and 10).

Each test goes through the real SessionMiddleware over the cookie store and every real
server store (see :mod:`tests.test_every_store`): planted duplicate cookies, cookies sealed
for a future time, changes made after the response started, a reset outside the cookie's
Path, and shared-cache headers on responses that set the session cookie.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

import pytest

from asgisession import Keyring, MessageEncryptor, RejectReason, Session, revoke_user
from asgisession._types import Receive, Scope, Send
from asgisession.crypto import MAX_CLOCK_SKEW
from asgisession.jar import cookies
from asgisession.stores import MemoryStore

from ..asgi_helpers import client
from ..test_every_store import DAY, HOUR, MakeApp, cookie_value, issue, open_cookie

pytestmark = pytest.mark.anyio


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The last path segment says what to do; ``cc`` is the app's own Cache-Control."""
    params = dict(parse_qsl(scope.get("query_string", b"").decode()))
    session: Session = scope["session"]
    action = scope["path"].rstrip("/").rsplit("/", 1)[-1]
    if action == "set":
        session.update({k: v for k, v in params.items() if k not in ("cc", "late")})
    elif action == "jar":
        cookies(scope).set("theme", "dark")
    elif action == "reset":
        session.reset()
    result = {
        "data": dict(session),
        "rejection": session.rejection and session.rejection.value,
    }
    headers = [(b"content-type", b"application/json")]
    if "cc" in params:
        headers.append((b"cache-control", params["cc"].encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if "late" in params:  # after the start: too late to be saved
        session["user"] = params["late"]
        session["late"] = True
    await send({"type": "http.response.body", "body": json.dumps(result).encode()})


def seal(secret: str, payload: bytes, *, issued_at: int, expires_at: int) -> str:
    return MessageEncryptor(Keyring(secret)).seal(
        payload, purpose="session", issued_at=issued_at, expires_at=expires_at
    )


async def look(mw: Any, *cookie_headers: str) -> Any:
    """What a request with exactly these Cookie headers (and no jar) sees."""
    async with client(mw) as c:
        headers = [("cookie", value) for value in cookie_headers]
        response = await c.get("/info", headers=headers)
    assert 200 == response.status_code
    return response.json()


# -- item 2: duplicate session cookies are ignored, not resolved ------------------------------


@pytest.mark.parametrize("split", [False, True], ids=["one-header", "two-headers"])
async def test_two_valid_session_cookies_are_both_ignored(
    make_app: MakeApp, secret: str, split: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A planted valid cookie sent first (longer Path) never wins over the user's: both are
    ignored, the reason is `duplicate`, logged at WARNING and counted."""
    rejected: list[RejectReason] = []
    mw = make_app(secret, app, on_reject=rejected.append)
    mallory = await issue(mw, "user=mallory")
    alice = await issue(mw, "user=alice")
    sent = [f"session={mallory}", f"session={alice}"]
    with caplog.at_level(logging.WARNING, "asgisession"):
        seen = await look(mw, *sent) if split else await look(mw, "; ".join(sent))
    assert {"data": {}, "rejection": "duplicate"} == seen
    assert Counter({RejectReason.DUPLICATE: 1}) == mw.rejections
    assert [RejectReason.DUPLICATE] == rejected
    assert "open different sessions" in caplog.text


async def test_identical_and_invalid_duplicates_still_work(make_app: MakeApp, secret: str) -> None:
    """Repeated copies of one value, or a valid value among junk, open as before."""
    mw = make_app(secret, app)
    alice = await issue(mw, "user=alice")
    expected = {"data": {"user": "alice"}, "rejection": None}
    assert expected == await look(mw, f"session={alice}; session={alice}")
    assert expected == await look(mw, f"session={alice}", f"session={alice}")
    assert expected == await look(mw, f"session=junk!; session={alice}; session=")
    assert Counter() == mw.rejections


async def test_two_values_of_one_session_are_no_conflict(make_app: MakeApp, secret: str) -> None:
    """Two different values that open to the same session (the same data in the cookie
    store, the same id in a server store: a re-issued copy) are one session."""
    mw = make_app(secret, app)
    alice = await issue(mw, "user=alice")
    opened = open_cookie(secret, alice, make_app.clock.now)
    resealed = seal(
        secret, opened.payload, issued_at=opened.issued_at - 10, expires_at=opened.expires_at
    )
    assert resealed != alice
    seen = await look(mw, f"session={resealed}; session={alice}")
    assert {"data": {"user": "alice"}, "rejection": None} == seen


# -- item 4: issue times in the future are refused --------------------------------------------


async def future_cookie(make_app: MakeApp, secret: str, mw: Any) -> str:
    """A valid session cookie for alice, sealed with the secret as if issued a day from now."""
    real = open_cookie(secret, await issue(mw, "user_id=alice"), make_app.clock.now)
    now = int(make_app.clock.now)
    return seal(secret, real.payload, issued_at=now + DAY, expires_at=now + 7 * DAY)


async def test_future_cookie_does_not_outlive_the_idle_timeout(
    make_app: MakeApp, secret: str
) -> None:
    """Sealed for a day ahead, a cookie idle for twice the timeout is refused, not served."""
    mw = make_app(secret, app, idle_timeout=HOUR)
    forged = await future_cookie(make_app, secret, mw)
    make_app.clock.advance(2 * HOUR)
    assert {"data": {}, "rejection": "issued_in_future"} == await look(mw, f"session={forged}")
    assert Counter({RejectReason.ISSUED_IN_FUTURE: 1}) == mw.rejections


async def test_future_cookie_does_not_outlive_a_revocation(make_app: MakeApp, secret: str) -> None:
    """A user's "log out everywhere" also ends a cookie sealed for a future time."""
    revocations = MemoryStore() if make_app.store is None else None
    options: dict[str, Any] = {"user_key": "user_id"}
    if revocations is not None:
        options["revocation_store"] = revocations
    mw = make_app(secret, app, **options)
    forged = await future_cookie(make_app, secret, mw)
    make_app.clock.advance(1)
    store = make_app.store or revocations
    assert store is not None
    await revoke_user(store, "alice", now=int(make_app.clock.now))
    seen = await look(mw, f"session={forged}")
    assert {} == seen["data"]
    assert seen["rejection"] in ("issued_in_future", "not_found")


async def test_issue_time_within_the_skew_is_accepted(make_app: MakeApp, secret: str) -> None:
    """A node whose clock runs up to MAX_CLOCK_SKEW ahead still writes usable cookies."""
    ahead = make_app(secret, app)
    make_app.clock.advance(MAX_CLOCK_SKEW)
    value = await issue(ahead, "user=alice")
    make_app.clock.advance(-MAX_CLOCK_SKEW)
    assert {"data": {"user": "alice"}, "rejection": None} == await look(
        make_app(secret, app), f"session={value}"
    )


# -- item 6: lost changes are loud --------------------------------------------------------------


async def test_change_after_the_response_started_is_logged_and_counted(
    make_app: MakeApp, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A write after http.response.start is not saved; a WARNING names the lost keys and
    the middleware counts it in lost_changes."""
    mw = make_app(secret, app)
    async with client(mw) as c:
        await c.get("/set?user=alice&plan=free")
        with caplog.at_level(logging.WARNING, "asgisession"):
            response = await c.get("/set?plan=pro&late=mallory")
        assert {"user": "alice", "plan": "pro"} == (await c.get("/info")).json()["data"]
    assert {"user": "alice", "plan": "pro"} == response.json()["data"]
    assert 1 == mw.lost_changes
    (record,) = [r for r in caplog.records if "after the response started" in r.getMessage()]
    assert logging.WARNING == record.levelno
    assert "['late', 'user']" in record.getMessage()


async def test_no_warning_without_a_late_change(
    make_app: MakeApp, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A session written before the start is no lost change."""
    mw = make_app(secret, app)
    with caplog.at_level(logging.WARNING, "asgisession"):
        await issue(mw, "user=alice")
    assert 0 == mw.lost_changes
    assert "after the response started" not in caplog.text


# -- item 7: a reset clears the cookie that was read ----------------------------------------------


async def test_reset_inside_the_path_clears_the_configured_cookie(
    make_app: MakeApp, secret: str
) -> None:
    """Read the configured cookie (a request under its Path): reset() deletes it there."""
    mw = make_app(secret, app, path="/app")
    async with client(mw) as c:
        value = cookie_value((await c.get("/app/set?user=alice")).headers["set-cookie"])
        response = await c.get("/app/reset", headers={"cookie": f"session={value}"})
    (deletion,) = response.headers.get_list("set-cookie")
    assert deletion.startswith("session=; Path=/app;")
    assert "Max-Age=0" in deletion


async def test_reset_outside_the_path_sends_no_deletion_for_the_configured_cookie(
    make_app: MakeApp, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Read another same-named cookie (a request outside the configured Path, e.g. an old
    Path=/ copy): reset() must not delete the configured Path=/app cookie, which this
    request never saw. Server stores still end the session read (its record is deleted)."""
    mw = make_app(secret, app, path="/app")
    stale = await issue(mw, "user=old")  # sealed by us; the browser keeps it at Path=/
    with caplog.at_level(logging.WARNING, "asgisession"):
        async with client(mw) as c:
            response = await c.get("/other/reset", headers={"cookie": f"session={stale}"})
    assert {"data": {}, "rejection": None} == response.json()
    assert [] == response.headers.get_list("set-cookie")
    assert "outside the cookie's Path" in caplog.text
    if make_app.server_side:
        assert "not_found" == (await look(mw, f"session={stale}"))["rejection"]


# -- item 10: shared caches never get a session cookie ---------------------------------------------


@pytest.mark.parametrize(
    ("app_value", "sent"),
    [
        ("public, max-age=600", "private, max-age=600"),
        ("s-maxage=600", "private"),
        ("max-age=60, s-maxage=600, must-revalidate", "private, max-age=60, must-revalidate"),
        ("public", "private"),
    ],
)
@pytest.mark.parametrize("action", ["set", "jar"], ids=["session", "jar"])
async def test_shared_cache_headers_are_made_private(
    make_app: MakeApp,
    secret: str,
    app_value: str,
    sent: str,
    action: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A response that sets the session (or a jar) cookie is never storable by a shared
    cache: public and s-maxage give way to private, and the change is logged."""
    mw = make_app(secret, app)
    with caplog.at_level(logging.WARNING, "asgisession"):
        async with client(mw) as c:
            response = await c.get(f"/{action}", params={"user": "alice", "cc": app_value})
    assert 1 == len(response.headers.get_list("set-cookie"))
    assert [sent] == response.headers.get_list("cache-control")
    assert "made private" in caplog.text
    assert app_value in caplog.text


@pytest.mark.parametrize("app_value", ["no-store", "private, max-age=60", "no-cache, no-store"])
async def test_private_cache_headers_are_kept(
    make_app: MakeApp, secret: str, app_value: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An app value that already keeps shared caches out is left as it is, silently."""
    mw = make_app(secret, app)
    with caplog.at_level(logging.WARNING, "asgisession"):
        async with client(mw) as c:
            response = await c.get("/set", params={"user": "alice", "cc": app_value})
    assert [app_value] == response.headers.get_list("cache-control")
    assert "made private" not in caplog.text


async def test_public_response_without_a_cookie_stays_public(
    make_app: MakeApp, secret: str
) -> None:
    """Only responses that set a cookie are touched: a public page stays cacheable."""
    mw = make_app(secret, app)
    alice = await issue(mw, "user=alice")
    async with client(mw) as c:
        response = await c.get(
            "/info", params={"cc": "public, max-age=600"}, headers={"cookie": f"session={alice}"}
        )
    assert [] == response.headers.get_list("set-cookie")
    assert ["public, max-age=600"] == response.headers.get_list("cache-control")
