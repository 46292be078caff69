# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
from __future__ import annotations

import dataclasses
import re
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

import pytest

from asgisession.cookies import (
    MAX_AGE_LIMIT,
    MAX_COOKIE_SIZE,
    CookieOptions,
    cookie_values,
    http_date,
    iter_cookies,
)
from asgisession.errors import ConfigurationError

Headers = list[tuple[bytes, bytes]]

# RFC 7231 section 7.1.1.1 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT"
)


# --- parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"a=1", [("a", "1")]),
        (b"a=1; b=2", [("a", "1"), ("b", "2")]),
        (b"a=1;b=2", [("a", "1"), ("b", "2")]),
        (b"  a = 1 ;\tb=2\t", [("a", "1"), ("b", "2")]),
        (b"a=", [("a", "")]),
        (b"a=b=c", [("a", "b=c")]),
        (b'a="quoted"', [("a", "quoted")]),
        (b'a=""', [("a", "")]),
        (b'a="', [("a", '"')]),
        (b'a=""x""', [("a", '"x"')]),
        (b'a="x', [("a", '"x')]),
        (b"=v; a=1", [("a", "1")]),
        (b" =v;a=1", [("a", "1")]),
        (b"flag; a=1; other", [("a", "1")]),
        (b";;; a=1 ;;", [("a", "1")]),
        (b"", []),
        (b"a=1; a=2", [("a", "1"), ("a", "2")]),
    ],
)
def test_iter_cookies_parses_one_header(header: bytes, expected: list[tuple[str, str]]) -> None:
    """Pairs come out in order, trimmed, unquoted once; nameless and '='-less pairs are skipped."""
    assert expected == list(iter_cookies([(b"cookie", header)]))


def test_iter_cookies_reads_every_cookie_header_in_order() -> None:
    """All Cookie headers are read (HTTP/2 may split them), in the order they came."""
    headers: Headers = [
        (b"cookie", b"a=1; b=2"),
        (b"host", b"example.com"),
        (b"cookie", b"c=3"),
        (b"cookie", b"a=4"),
    ]
    assert [("a", "1"), ("b", "2"), ("c", "3"), ("a", "4")] == list(iter_cookies(headers))


@pytest.mark.parametrize("name", [b"cookie", b"Cookie", b"COOKIE", b"cOoKiE"])
def test_iter_cookies_matches_the_header_name_case_insensitively(name: bytes) -> None:
    """The Cookie header is found whatever its case."""
    assert [("a", "1")] == list(iter_cookies([(name, b"a=1")]))


@pytest.mark.parametrize("name", [b"set-cookie", b"cookie2", b"x-cookie", b"cookies", b""])
def test_iter_cookies_ignores_other_headers(name: bytes) -> None:
    """Only headers named exactly Cookie are parsed."""
    assert [] == list(iter_cookies([(name, b"a=1")]))


@pytest.mark.parametrize(
    "header",
    [b"a=\xff\xfe; b=2", b"\xc3\x28=x; b=2", b"a=\x80\x81\x82; b=2", b"a=\xed\xa0\x80; b=2"],
)
def test_iter_cookies_never_fails_on_non_utf8(header: bytes) -> None:
    """Bytes that are not UTF-8 are read as Latin-1 instead of raising."""
    cookies = list(iter_cookies([(b"cookie", header)]))
    assert ("b", "2") == cookies[-1]
    assert 2 == len(cookies)
    assert header.split(b";")[0].decode("latin-1") == "=".join(cookies[0])


def test_iter_cookies_handles_a_5000_pair_header() -> None:
    """A header with 5,000 pairs yields all 5,000, in order."""
    header = "; ".join(f"k{i}=v{i}" for i in range(5_000)).encode()
    cookies = list(iter_cookies([(b"cookie", header)]))
    assert [(f"k{i}", f"v{i}") for i in range(5_000)] == cookies


def test_iter_cookies_is_lazy() -> None:
    """Without a size cap, iter_cookies is a generator that reads headers as it goes.

    (With the default cap it must see every Cookie header first, to add up their size.)
    """

    def headers() -> Any:
        yield (b"cookie", b"a=1")
        raise AssertionError("read past the first cookie")

    assert ("a", "1") == next(iter_cookies(headers(), max_size=None))


def test_cookie_values_lists_every_value_for_a_name_in_order() -> None:
    """Every value of one cookie name comes back, across headers, in sent order."""
    headers: Headers = [
        (b"cookie", b"session=first; other=x"),
        (b"cookie", b'session="second"'),
        (b"Cookie", b"sessionx=no; session=third"),
    ]
    assert ["first", "second", "third"] == cookie_values(headers, "session")
    assert ["x"] == cookie_values(headers, "other")
    assert [] == cookie_values(headers, "missing")
    assert [] == cookie_values(headers, "Session")


# --- CookieOptions validation ---------------------------------------------------------


def test_default_options() -> None:
    """The defaults are a Lax, HttpOnly, host-only, 14-day cookie named session."""
    options = CookieOptions()
    assert ("session", 14 * 24 * 3600, "/", None, "auto", True, "lax", False) == (
        options.name,
        options.max_age,
        options.path,
        options.domain,
        options.secure,
        options.httponly,
        options.samesite,
        options.partitioned,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        # SameSite=None needs Secure.
        ({"samesite": "none"}, "samesite='none' needs secure=True"),
        ({"samesite": "none", "secure": False}, "samesite='none' needs secure=True"),
        ({"samesite": "None", "secure": "auto"}, "samesite='none' needs secure=True"),
        # Cookie prefixes.
        ({"name": "__Host-sid", "secure": True, "domain": "example.com"}, "__Host-"),
        ({"name": "__Host-sid", "secure": True, "path": "/app"}, "__Host-"),
        ({"name": "__Host-sid", "secure": "auto"}, "__Host-"),
        ({"name": "__Host-sid", "secure": False}, "__Host-"),
        ({"name": "__Secure-sid", "secure": "auto"}, "__Secure-"),
        ({"name": "__Secure-sid", "secure": False}, "__Secure-"),
        # Names that are not RFC 6265 tokens.
        ({"name": "a b"}, "not a valid cookie name"),
        ({"name": "a;b"}, "not a valid cookie name"),
        ({"name": "a=b"}, "not a valid cookie name"),
        ({"name": "a,b"}, "not a valid cookie name"),
        ({"name": 'a"b'}, "not a valid cookie name"),
        ({"name": "a\tb"}, "not a valid cookie name"),
        ({"name": "a(b)"}, "not a valid cookie name"),
        ({"name": "sé"}, "not a valid cookie name"),
        ({"name": ""}, "not a valid cookie name"),
        ({"name": 42}, "not a valid cookie name"),
        # Max-Age outside 1 s .. 400 days.
        ({"max_age": 0}, "max_age=0"),
        ({"max_age": -1}, "max_age=-1"),
        ({"max_age": MAX_AGE_LIMIT + 1}, "400 days"),
        # Partitioned needs Secure.
        ({"partitioned": True}, "partitioned=True needs secure=True"),
        ({"partitioned": True, "secure": False}, "partitioned=True needs secure=True"),
        # Path and Domain.
        ({"path": "app"}, "must start with '/'"),
        ({"path": "api/v1"}, "must start with '/'"),
        ({"path": ""}, "path=''"),
        ({"path": "/a\x00"}, "control character"),
        ({"path": "/a\nb"}, "control character"),
        ({"path": "/a\r"}, "control character"),
        ({"path": "/a;b"}, "control character or ';'"),
        ({"path": "/\x7f"}, "control character"),
        ({"path": "/caf\u00e9"}, "control character"),
        ({"domain": "example.com\r\nSet-Cookie: x=y"}, "domain="),
        ({"domain": "exa\x00mple.com"}, "domain="),
        ({"domain": "example.com;"}, "domain="),
        ({"domain": ""}, "domain=''"),
        # Other enumerations.
        ({"samesite": "relaxed"}, "samesite='relaxed'"),
        ({"samesite": ""}, "samesite=''"),
        ({"secure": "yes"}, "secure='yes'"),
        ({"secure": "true"}, "secure='true'"),
    ],
)
def test_invalid_options_are_refused(kwargs: dict[str, Any], match: str) -> None:
    """Each invalid setting raises ConfigurationError at construction, saying what is wrong."""
    with pytest.raises(ConfigurationError, match=re.escape(match)):
        CookieOptions(**kwargs)


def test_samesite_python_none_is_not_samesite_none() -> None:
    """samesite=None (Python's None) is refused, not silently read as SameSite=None."""
    # Frameworks such as Werkzeug use samesite=None to mean "no SameSite attribute"; reading
    # it as "none" would quietly make the session cookie cross-site.
    with pytest.raises(ConfigurationError, match="samesite"):
        CookieOptions(samesite=None, secure=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "samesite"),
    [
        ({"samesite": "Lax"}, "lax"),
        ({"samesite": "STRICT"}, "strict"),
        ({"samesite": "strict"}, "strict"),
        ({"samesite": "None", "secure": True}, "none"),
        ({"samesite": "nOnE", "secure": True}, "none"),
    ],
)
def test_samesite_is_case_insensitive_and_normalised(kwargs: dict[str, Any], samesite: str) -> None:
    """SameSite is accepted in any case and stored lower-case."""
    assert samesite == CookieOptions(**kwargs).samesite


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "__Host-sid", "secure": True},
        {"name": "__Secure-sid", "secure": True, "domain": "example.com", "path": "/app"},
        {"name": "!#$%&'*+-.^_`|~09azAZ"},
        {"max_age": None},
        {"max_age": 1},
        {"max_age": MAX_AGE_LIMIT},
        {"samesite": "none", "secure": True, "partitioned": True},
        {"path": "/a b/c", "domain": ".example.com"},
        {"secure": False, "httponly": False},
    ],
)
def test_valid_options_are_accepted(kwargs: dict[str, Any]) -> None:
    """Boundary values and every legal combination build without error."""
    options = CookieOptions(**kwargs)
    assert {key: getattr(options, key) for key in kwargs} == kwargs


def test_max_age_limit_is_400_days() -> None:
    """The Max-Age cap is browsers' 400 days, in seconds."""
    assert 400 * 86_400 == MAX_AGE_LIMIT
    assert 4096 == MAX_COOKIE_SIZE


def test_options_are_frozen() -> None:
    """Options cannot be changed after validation."""
    options = CookieOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.name = "other"  # type: ignore[misc]


# --- rendering ------------------------------------------------------------------------


def test_render_puts_every_attribute_in_order() -> None:
    """A fully configured cookie renders every attribute, spelled and ordered canonically."""
    options = CookieOptions(
        name="sid",
        path="/app",
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="lax",
        partitioned=True,
    )
    assert (
        "sid=abc; Path=/app; Domain=example.com; Max-Age=3600; "
        "Expires=Sun, 06 Nov 1994 08:49:37 GMT; Secure; HttpOnly; SameSite=Lax; Partitioned"
    ) == options.render("abc", secure=True, max_age=3600, now=784_111_777 - 3600)


def test_render_minimal_cookie() -> None:
    """Without max_age, Secure, HttpOnly or a domain, only name, Path and SameSite remain."""
    options = CookieOptions(secure=False, httponly=False)
    assert "session=v; Path=/; SameSite=Lax" == options.render("v", secure=False)


@pytest.mark.parametrize(
    ("samesite", "rendered"), [("lax", "Lax"), ("strict", "Strict"), ("none", "None")]
)
def test_render_spells_samesite_capitalised(samesite: Any, rendered: str) -> None:
    """SameSite is written Lax, Strict or None."""
    options = CookieOptions(samesite=samesite, secure=True)
    assert options.render("v", secure=True).endswith(f"; SameSite={rendered}")


@pytest.mark.parametrize(
    ("now", "max_age", "expires"),
    [
        (784_111_777 - 3600, 3600, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (0.0, 1, "Thu, 01 Jan 1970 00:00:01 GMT"),
        (1_700_000_000.9, 60, "Tue, 14 Nov 2023 22:14:20 GMT"),
        (1_700_000_000, MAX_AGE_LIMIT, "Wed, 18 Dec 2024 22:13:20 GMT"),
    ],
)
def test_render_computes_expires_from_now(now: float, max_age: int, expires: str) -> None:
    """Expires is now + max_age as an RFC 7231 IMF-fixdate."""
    options = CookieOptions(secure=False)
    header = options.render("v", secure=False, max_age=max_age, now=now)
    assert f"Max-Age={max_age}; Expires={expires}; " in header
    assert IMF_FIXDATE.fullmatch(expires) is not None
    assert int(now) + max_age == int(parsedate_to_datetime(expires).timestamp())


def test_render_secure_follows_the_argument() -> None:
    """Secure is written exactly when the caller says the request is secure."""
    options = CookieOptions(secure="auto")
    assert "; Secure;" in options.render("v", secure=True)
    assert "Secure" not in options.render("v", secure=False)


@pytest.mark.parametrize("value", ["a b", "a;b", "a,b", 'a"b', "a\\b", "caf\u00e9", "a\x00"])
def test_render_refuses_values_that_are_not_cookie_octets(value: str) -> None:
    """A value a cookie cannot carry is refused rather than sent broken."""
    with pytest.raises(ValueError, match="cookie value"):
        CookieOptions().render(value, secure=True)


def test_render_accepts_base64url_values() -> None:
    """Sealed tokens (base64url) are valid cookie values."""
    value = "AQIDBAUG-_abcXYZ0123456789"
    assert CookieOptions().render(value, secure=True).startswith(f"session={value}; ")


def test_render_deletion_keeps_scope_and_secure() -> None:
    """A deletion reuses Path, Domain and Secure, with Max-Age=0 and an Expires in 1970."""
    options = CookieOptions(name="sid", path="/app", domain="example.com", secure=True)
    assert (
        "sid=; Path=/app; Domain=example.com; Max-Age=0; "
        "Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; HttpOnly; SameSite=Lax"
    ) == options.render_deletion(secure=True)


def test_render_deletion_of_a_partitioned_cookie_stays_partitioned() -> None:
    """A partitioned cookie is deleted by a partitioned Set-Cookie (same cookie jar)."""
    options = CookieOptions(samesite="none", secure=True, partitioned=True, httponly=False)
    assert (
        "session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
        "Secure; SameSite=None; Partitioned"
    ) == options.render_deletion(secure=True)


def test_render_deletion_without_secure() -> None:
    """Over plain http the deletion carries no Secure attribute."""
    assert "Secure" not in CookieOptions().render_deletion(secure=False)


# --- is_secure and size ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("secure", "scheme", "expected"),
    [
        ("auto", "http", False),
        ("auto", "https", True),
        ("auto", "ws", False),
        ("auto", "wss", True),
        (True, "http", True),
        (True, "ws", True),
        (True, "https", True),
        (False, "https", False),
        (False, "wss", False),
        (False, "http", False),
    ],
)
def test_is_secure(secure: Any, scheme: str, expected: bool) -> None:
    """'auto' follows the scheme (https, wss); True and False ignore it."""
    assert expected == CookieOptions(secure=secure).is_secure(scheme)


@pytest.mark.parametrize(
    ("name", "value", "size"),
    [("session", "", 7), ("session", "x" * 10, 17), ("sid", "abc", 6), ("s", "\u00e9", 3)],
)
def test_size_counts_name_and_value_bytes(name: str, value: str, size: int) -> None:
    """size() is the bytes of name plus value, the figure browsers limit to 4096."""
    assert size == CookieOptions(name=name).size(value)


@pytest.mark.parametrize(
    "options",
    [{"max_age": True}, {"max_age": 1.5}, {"secure": 1}, {"secure": "yes"}, {"samesite": None}],
    ids=["max_age-bool", "max_age-float", "secure-int", "secure-str", "samesite-None"],
)
def test_look_alike_values_are_refused(options: dict[str, Any]) -> None:
    """Values that merely compare equal to valid ones (True == 1) are refused, not coerced."""
    with pytest.raises(ConfigurationError):
        CookieOptions(**options)


def test_render_expires_defaults_to_the_current_time() -> None:
    """Without `now`, Expires is computed from the current time, not from 1970."""
    header = CookieOptions().render("v", secure=False, max_age=3600)
    expires = re.search(r"Expires=([^;]+)", header)
    assert expires is not None
    assert parsedate_to_datetime(expires.group(1)).year >= 2025


@pytest.mark.parametrize(
    "timestamp", [0, 951_782_400, 1_700_000_000.75, 4_102_444_799, 253_402_300_799]
)
def test_http_date_matches_the_standard_library(timestamp: float) -> None:
    """The hand-written IMF-fixdate equals email.utils' (locale-free) rendering."""
    assert formatdate(timestamp, usegmt=True) == http_date(timestamp)
