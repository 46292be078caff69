"""Tests for asgisession.csrf.origin: Sec-Fetch-Site, Origin, Referer, trusted origins,
forwarded headers, and which paths can be exempt.

Every battery row here sends a valid token where the origin should decide, so the status
is the origin rule's verdict alone.
"""

from __future__ import annotations

import pytest

from asgisession import CSRFMiddleware
from asgisession._types import Message, Receive, Scope, Send

from .helpers import (
    SAME,
    TOKEN,
    Case,
    Handler,
    build,
    call,
    client,
    fetch_token,
    request_scope,
    run_case,
)

ORIGIN_CASES: dict[str, Case] = {
    # Sec-Fetch-Site.
    "sfs-same-origin": Case(200, headers=[*SAME, *TOKEN]),
    "sfs-same-origin-upper": Case(200, headers=[("sec-fetch-site", "Same-Origin"), *TOKEN]),
    "sfs-none": Case(200, headers=[("sec-fetch-site", "none"), *TOKEN]),
    "sfs-cross-site": Case(403, headers=[("sec-fetch-site", "cross-site"), *TOKEN]),
    "sfs-cross-site-upper": Case(403, headers=[("sec-fetch-site", "CROSS-SITE"), *TOKEN]),
    "sfs-same-site": Case(403, headers=[("sec-fetch-site", "same-site"), *TOKEN]),
    "sfs-unknown": Case(403, headers=[("sec-fetch-site", "whatever"), *TOKEN]),
    "sfs-repeated": Case(403, headers=[*SAME, ("sec-fetch-site", "cross-site"), *TOKEN]),
    "sfs-cross-trusted-wildcard": Case(
        200,
        headers=[("sec-fetch-site", "cross-site"), ("origin", "https://app.example.com"), *TOKEN],
    ),
    "sfs-cross-trusted-exact": Case(
        200, headers=[("sec-fetch-site", "cross-site"), ("origin", "https://partner.test"), *TOKEN]
    ),
    "sfs-cross-apex-not-trusted": Case(
        403, headers=[("sec-fetch-site", "cross-site"), ("origin", "https://example.com"), *TOKEN]
    ),
    "sfs-cross-lookalike": Case(
        403,
        headers=[("sec-fetch-site", "cross-site"), ("origin", "https://evilexample.com"), *TOKEN],
    ),
    "sfs-cross-wrong-scheme": Case(
        403,
        headers=[("sec-fetch-site", "cross-site"), ("origin", "http://app.example.com"), *TOKEN],
    ),
    "sfs-same-origin-no-token": Case(403, headers=SAME),
    # Origin without Sec-Fetch-Site.
    "origin-own": Case(200, headers=[("origin", "http://testserver"), *TOKEN]),
    "origin-own-upper": Case(200, headers=[("origin", "HTTP://TESTSERVER:80"), *TOKEN]),
    "origin-foreign": Case(403, headers=[("origin", "https://evil.test"), *TOKEN]),
    "origin-other-port": Case(403, headers=[("origin", "http://testserver:8080"), *TOKEN]),
    "origin-other-scheme": Case(403, headers=[("origin", "https://testserver"), *TOKEN]),
    "origin-null": Case(403, headers=[("origin", "null"), *TOKEN]),
    "origin-garbage": Case(403, headers=[("origin", "http://[bad"), *TOKEN]),
    "origin-trusted": Case(200, headers=[("origin", "https://partner.test"), *TOKEN]),
    "origin-repeated": Case(
        403, headers=[("origin", "http://testserver"), ("origin", "http://testserver"), *TOKEN]
    ),
    "forwarded-host-not-trusted": Case(
        403,
        headers=[("x-forwarded-host", "evil.test"), ("origin", "http://evil.test"), *TOKEN],
    ),
    # https: Referer when there is no Origin.
    "https-no-origin-no-referer": Case(403, headers=TOKEN, scheme="https"),
    "https-referer-own": Case(
        200, headers=[("referer", "https://testserver/form"), *TOKEN], scheme="https"
    ),
    "https-referer-foreign": Case(
        403, headers=[("referer", "https://evil.test/form"), *TOKEN], scheme="https"
    ),
    "https-referer-http": Case(
        403, headers=[("referer", "http://testserver/form"), *TOKEN], scheme="https"
    ),
    "https-referer-trusted": Case(
        200, headers=[("referer", "https://a.example.com/x"), *TOKEN], scheme="https"
    ),
    "https-origin-own": Case(
        200, headers=[("origin", "https://testserver"), *TOKEN], scheme="https"
    ),
    # https with a Host that gives no origin: the Referer rule still holds (fail closed).
    "https-bad-host-no-referer": Case(403, headers=[("host", "[bad"), *TOKEN], scheme="https"),
    "https-bad-port-no-referer": Case(
        403, headers=[("host", "testserver:99999"), *TOKEN], scheme="https"
    ),
    "https-bad-host-referer-untrusted": Case(
        403,
        headers=[("host", "[bad"), ("referer", "https://evil.test/form"), *TOKEN],
        scheme="https",
    ),
    "https-bad-host-referer-trusted": Case(
        200,
        headers=[("host", "[bad"), ("referer", "https://a.example.com/x"), *TOKEN],
        scheme="https",
    ),
    "http-bad-host-no-referer": Case(200, headers=[("host", "[bad"), *TOKEN]),
    # Exemptions.
    "exempt-prefix": Case(200, path="/webhooks/stripe"),
    "exempt-prefix-bare": Case(200, path="/webhooks"),
    "exempt-lookalike": Case(403, path="/webhooksevil"),
    "exempt-encoded-slash": Case(403, path="/webhooks%2F..%2Fsubmit"),
    "exempt-double-slash": Case(403, path="/webhooks//x"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(ORIGIN_CASES.values()), ids=list(ORIGIN_CASES))
async def test_origin_battery(case: Case, secret: str) -> None:
    """Each request gets its expected status; on a rejection the handler never runs."""
    await run_case(case, secret)


@pytest.mark.anyio
async def test_forwarded_headers_are_used_only_when_trusted(secret: str) -> None:
    """With trust_forwarded_headers, the proxy's host and scheme make the own origin."""
    handler = Handler()
    app = build(secret, handler, trust_forwarded_headers=True)
    async with client(app) as http:
        token, _ = await fetch_token(http)
        headers = {
            "x-forwarded-proto": "https",
            "x-forwarded-host": "shop.test",
            "origin": "https://shop.test",
            "x-csrf-token": token,
        }
        response = await http.post("/submit", headers=headers)
    assert 200 == response.status_code


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("forwarded_host", "origin", "status"),
    [
        ("evil.test, shop.test", "https://shop.test", 200),
        ("evil.test, shop.test", "https://evil.test", 403),
    ],
    ids=["proxy-value-wins", "client-value-ignored"],
)
async def test_appended_forwarded_headers_use_the_proxy_value(
    secret: str, forwarded_host: str, origin: str, status: int
) -> None:
    """When a proxy appends to X-Forwarded-*, the last (proxy's) value is the own origin."""
    app = build(secret, Handler(), trust_forwarded_headers=True)
    async with client(app) as http:
        token, _ = await fetch_token(http)
        headers = {
            "x-forwarded-proto": "http, https",
            "x-forwarded-host": forwarded_host,
            "origin": origin,
            "x-csrf-token": token,
        }
        response = await http.post("/submit", headers=headers)
    assert status == response.status_code


@pytest.mark.anyio
async def test_same_site_passes_when_allowed(secret: str) -> None:
    """allow_same_site=True lets Sec-Fetch-Site: same-site through the origin check."""
    app = build(secret, Handler(), allow_same_site=True)
    async with client(app) as http:
        token, _ = await fetch_token(http)
        response = await http.post(
            "/submit", headers={"sec-fetch-site": "same-site", "x-csrf-token": token}
        )
    assert 200 == response.status_code


@pytest.mark.anyio
async def test_exempt_predicate_sees_the_normalised_path(secret: str) -> None:
    """A predicate exemption is called with the path and can exempt it."""
    seen: list[str] = []

    def exempt(path: str) -> bool:
        seen.append(path)
        return path.startswith("/api/")

    app = build(secret, Handler(), exempt=exempt)
    async with client(app) as http:
        assert 200 == (await http.post("/api/x")).status_code
        assert 403 == (await http.post("/other")).status_code
    assert ["/api/x", "/other"] == seen


@pytest.mark.parametrize(
    ("path", "raw_path", "exempt"),
    [
        ("/webhooks/a", b"/webhooks/a", True),
        ("/webhooks/../admin", b"/webhooks/../admin", False),
        ("/webhooks/./a", b"/webhooks/./a", False),
        ("//webhooks/a", b"//webhooks/a", False),
        ("/webhooks/a/b", b"/webhooks%2Fa/b", False),
        ("/webhooks\\..\\admin", b"/webhooks%5C..%5Cadmin", False),
        ("/webhooks/\x00", b"/webhooks/%00", False),
    ],
)
@pytest.mark.anyio
async def test_exemption_path_tricks(path: str, raw_path: bytes, exempt: bool) -> None:
    """Only a path already in normal form can be exempt; tricks get the full checks."""
    app = CSRFMiddleware(Handler(), exempt=["/webhooks/"])
    recorder = await call(app, request_scope(path=path, raw_path=raw_path))
    assert (200 if exempt else 403) == recorder.sent[0]["status"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("origin", "opt_in", "accepted"),
    [
        (b"https://evil.test", True, False),
        (b"http://testserver", True, True),
        (b"https://evil.test", False, True),
        (b"", True, True),  # no Origin on wss: not a browser, and no Referer rule
    ],
)
async def test_websocket_origin_check_is_opt_in(
    origin: bytes, opt_in: bool, accepted: bool
) -> None:
    """check_websocket_origin refuses a foreign Origin at the handshake."""
    ran: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ran.append(True)

    scope = request_scope(scope_type="websocket", headers=[(b"origin", origin)] if origin else [])
    if origin == b"":
        scope["scheme"] = "wss"
    recorder = await call(CSRFMiddleware(app, check_websocket_origin=opt_in), scope)
    expected: list[Message] = [] if accepted else [{"type": "websocket.close", "code": 1008}]
    assert accepted == bool(ran)
    assert expected == recorder.sent
