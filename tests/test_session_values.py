# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""What you store is what you read: a value written on one request, read on the next.

Through the real SessionMiddleware on the cookie store, MemoryStore, SQLiteStore on a real
file, RedisStore on a real redis-server and MemcachedStore on a real memcached; and with
the Rails cookie format. The default JSON either brings a value back equal and of the same
type or refuses it before anything is sent, naming its path and type; TaggedJSON brings
back its wider set. The property tests let hypothesis pick the values.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
import zoneinfo
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgisession import SerializationError, SessionMiddleware
from asgisession.rails import RailsCookies
from asgisession.serializer import JSON, Serializer
from asgisession.stores import MemcachedStore, MemoryStore, RedisStore, SQLiteStore, Store
from asgisession.tagged import TaggedJSON

from .asgi_helpers import Recorder, http_scope
from .servers import LOOPBACK, ServerProcess

BACKENDS = ["cookie", "memory", "sqlite", "redis", "memcached"]
#: (event loop, store) pairs: every store under asyncio; under Trio the cookie store and
#: MemoryStore, since the SQLite, Redis and memcached stores run on asyncio only.
LOOPS_AND_BACKENDS = [("asyncio", name) for name in BACKENDS] + [
    ("trio", "cookie"),
    ("trio", "memory"),
]
MISSING = object()


class Color(enum.Enum):
    RED = 1


class Role(str, enum.Enum):
    ADMIN = "admin"


class Level(enum.IntEnum):
    HIGH = 3


WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=datetime.timezone.utc)
#: Values the default JSON used to change silently, and what type they came back as.
CHANGED_BY_JSON: list[tuple[Any, str]] = [
    (WHEN, "datetime"),
    (WHEN.replace(tzinfo=None), "datetime"),
    (datetime.date(2024, 5, 6), "date"),
    (datetime.time(7, 8), "time"),
    (datetime.timedelta(seconds=5), "timedelta"),
    ({1, 2}, "set"),
    (frozenset({3}), "frozenset"),
    ((1, 2), "tuple"),
    (b"ab", "bytes"),
    (bytearray(b"ab"), "bytearray"),
    (decimal.Decimal("1.10"), "Decimal"),
    (uuid.UUID(int=7), "UUID"),
    (Color.RED, "Color"),
    (Role.ADMIN, "Role"),
    (Level.HIGH, "Level"),
    (float("nan"), "float"),
    (float("inf"), "float"),
    (float("-inf"), "float"),
    (OrderedDict(a=1), "OrderedDict"),
]


async def round_trip(make: Callable[..., SessionMiddleware], value: Any) -> Any:
    """Store ``value`` as session["v"] on one request; return what the next one reads."""
    seen: dict[str, Any] = {}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        session = scope["session"]
        await session.load()
        if scope["path"] == "/write":
            session["v"] = value
        else:
            seen["v"] = session.get("v", MISSING)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = make(inner)
    first = Recorder()
    await mw(http_scope(path="/write"), first.receive, first.send)
    cookie = first.headers(b"set-cookie")[0].split(b";")[0]
    second = Recorder()
    await mw(http_scope(cookie, path="/read"), second.receive, second.send)
    return seen["v"]


@asynccontextmanager
async def store_for(name: str, request: pytest.FixtureRequest, tmp: Path) -> AsyncIterator[Any]:
    """The store of a backend (``None`` for the cookie store), closed afterwards."""
    store: Store | None = None
    if name == "memory":
        store = MemoryStore()
    elif name == "sqlite":
        store = SQLiteStore(tmp / "sessions.db")
    elif name == "redis":
        server: ServerProcess = request.getfixturevalue("redis_proc")
        store = RedisStore.from_url(f"redis://{LOOPBACK}:{server.port}/0", namespace="v:")
    elif name == "memcached":
        memcached: ServerProcess = request.getfixturevalue("memcached_proc")
        store = MemcachedStore(port=memcached.port, namespace="v:")
    try:
        yield store
    finally:
        if store is not None:
            await store.aclose()


def factory(secret: str, store: Store | None, **options: Any) -> Callable[..., SessionMiddleware]:
    return lambda inner: SessionMiddleware(inner, secret_key_base=secret, store=store, **options)


@pytest.mark.anyio
@pytest.mark.parametrize(("anyio_backend", "backend"), LOOPS_AND_BACKENDS)
@pytest.mark.parametrize(("value", "type_name"), CHANGED_BY_JSON, ids=lambda v: repr(v)[:30])
async def test_json_refuses_what_would_read_back_changed(
    backend: str, value: Any, type_name: str, secret: str, request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Stored and read on the next request, a value comes back equal and of its type,
    or the write raises SerializationError naming where and what, and nothing is sent."""
    async with store_for(backend, request, tmp_path) as store:
        with pytest.raises(SerializationError) as info:
            await round_trip(factory(secret, store), {"cart": [0, 1, 2, {"when": value}]})
    assert ("v", "cart", 3, "when") == info.value.path
    assert "session['v']['cart'][3]['when']" in str(info.value)
    assert type_name == info.value.value_type.__name__  # type: ignore[union-attr]
    assert type_name in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("key", [1, 1.5, True, None, (1, 2)], ids=repr)
async def test_json_refuses_non_str_keys(key: Any, secret: str) -> None:
    """A dict key JSON would turn into a str (or refuse) raises, naming the key's type."""
    with pytest.raises(SerializationError) as info:
        await round_trip(factory(secret, None), {"m": {key: "a"}})
    assert ("v", "m", key) == info.value.path
    assert type(key) is info.value.value_type


@pytest.mark.anyio
async def test_nothing_is_sent_when_a_value_is_refused(secret: str) -> None:
    """The refusal comes when the response starts: no start, no body, no cookie."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        scope["session"]["when"] = WHEN
        await send({"type": "http.response.start", "status": 200, "headers": []})

    recorder = Recorder()
    with pytest.raises(SerializationError, match=r"session\['when'\]"):
        await SessionMiddleware(inner, secret_key_base=secret)(
            http_scope(), recorder.receive, recorder.send
        )
    assert [] == recorder.sent


@pytest.mark.anyio
async def test_rails_format_refuses_too(secret: str) -> None:
    """The Rails cookie format writes what the serializer accepts, and nothing else."""
    make = factory(secret, None, cookie_format=RailsCookies(digest="sha256"))
    assert {"ok": [1]} == await round_trip(make, {"ok": [1]})
    with pytest.raises(SerializationError) as info:
        await round_trip(make, {"ok": [1, (2, 3)]})
    assert ("v", "ok", 1) == info.value.path


# -- the tagged serializer -------------------------------------------------------------------

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


class OddZone(datetime.tzinfo):
    """A tzinfo that is neither ``timezone`` nor ``ZoneInfo``: it has no name to store."""

    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
        return datetime.timedelta(0)

    def dst(self, dt: datetime.datetime | None) -> datetime.timedelta:
        return datetime.timedelta(0)

    def tzname(self, dt: datetime.datetime | None) -> str:
        return "odd"


TAGGED_VALUES: list[Any] = [
    WHEN,
    WHEN.replace(tzinfo=None),
    WHEN.replace(tzinfo=datetime.timezone(datetime.timedelta(hours=-3, minutes=-30))),
    datetime.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),  # the second 02:30
    datetime.datetime(2024, 3, 31, 2, 30, tzinfo=PARIS),  # in the DST gap
    datetime.date(2024, 5, 6),
    datetime.time(7, 8, 9, 10),
    datetime.time(7, 8, tzinfo=datetime.timezone.utc),
    datetime.timedelta(days=-1, microseconds=3),
    uuid.UUID(int=7),
    b"\x00\xff",
    decimal.Decimal("1.10"),
    decimal.Decimal("-0E+3"),
    {1, "a"},
    frozenset({(1, 2)}),
    (1, [2, (3,)]),
    (),
    float("inf"),
    {"~t": ["tuple", [1]]},  # user data shaped like a tag
    {"~t": 1, "x": {"~t": {"~t": b"x"}}},
    ["~t", {"~t": None}],
    {"a": "~t", "b": '{"~t": ["bytes", "eA=="]}'},
]


@pytest.mark.anyio
@pytest.mark.parametrize(("anyio_backend", "backend"), LOOPS_AND_BACKENDS)
async def test_tagged_brings_every_value_back_exactly(
    backend: str, secret: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """TaggedJSON round-trips its types, nested, equal and same-typed, through each store."""
    value = {"all": TAGGED_VALUES, "nested": {"cart": [{"when": WHEN, "ids": {uuid.UUID(int=1)}}]}}
    async with store_for(backend, request, tmp_path) as store:
        read = await round_trip(factory(secret, store, serializer=TaggedJSON()), value)
    assert value == read
    for sent, got in zip(TAGGED_VALUES, read["all"], strict=True):
        assert (sent, type(sent), getattr(sent, "tzinfo", None), getattr(sent, "fold", 0)) == (
            got, type(got), getattr(got, "tzinfo", None), getattr(got, "fold", 0),
        )  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [
        object(),
        Color.RED,
        OrderedDict(a=1),
        bytearray(b"x"),
        datetime.datetime(2024, 1, 1, tzinfo=OddZone()),
    ],
    ids=lambda v: type(v).__name__,
)
def test_tagged_refuses_what_it_cannot_carry(value: Any) -> None:
    """Outside its set, TaggedJSON raises like the default, naming path and type."""
    with pytest.raises(SerializationError) as info:
        TaggedJSON().dumps({"k": [{"x": value}]})
    assert ("k", 0, "x") == info.value.path
    assert type(value) is info.value.value_type


@pytest.mark.parametrize(
    "payload",
    [
        b'{"k":{"~t":["nope",1]}}',
        b'{"k":{"~t":"bytes"}}',
        b'{"k":{"~t":["bytes","!!"]}}',
        b'{"k":{"~t":["tuple",[1]],"x":1}}',
        b'{"k":{"~t":["dict",[[1,2]]]}}',
        b'{"k":{"~t":["datetime","2024-01-01T00:00:00","No/Such_Zone",0]}}',
    ],
)
def test_tagged_refuses_malformed_tags_with_value_error(payload: bytes) -> None:
    """A malformed tag is bad data (ValueError, so the session starts empty), never a crash."""
    with pytest.raises(ValueError):  # noqa: PT011 - the contract is "a ValueError"
        TaggedJSON().loads(payload)


def test_both_serializers_are_serializers() -> None:
    """The default and the tagged one keep the Serializer protocol."""
    assert isinstance(JSON, Serializer)
    assert isinstance(TaggedJSON(), Serializer)


def test_serializer_with_a_custom_backend_is_refused(secret: str) -> None:
    """backend= brings its own serializer; giving one beside it is a ConfigurationError."""
    from asgisession.backends.cookie import CookieBackend
    from asgisession.errors import ConfigurationError

    probe = SessionMiddleware(lambda *a: None, secret_key_base=secret)  # type: ignore[arg-type]
    backend = probe.backend
    assert isinstance(backend, CookieBackend)
    with pytest.raises(ConfigurationError, match="own serializer"):
        SessionMiddleware(
            lambda *a: None,  # type: ignore[arg-type]
            secret_key_base=secret, backend=backend, serializer=TaggedJSON(),
        )  # fmt: skip


# -- property tests --------------------------------------------------------------------------

KEYS = st.text(max_size=8)
JSON_LEAVES = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)  # fmt: skip
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
FIXED_ZONES = st.builds(
    datetime.timezone, st.timedeltas(-datetime.timedelta(hours=23), datetime.timedelta(hours=23))
)
TAGGED_LEAVES = (
    JSON_LEAVES
    | st.datetimes(timezones=st.none() | FIXED_ZONES | st.just(PARIS))
    | st.dates() | st.times() | st.timedeltas() | st.uuids() | st.binary(max_size=16)
    | st.decimals(allow_nan=False) | st.sampled_from([float("inf"), float("-inf")])
    | st.just("~t")
)  # fmt: skip
HASHABLE = st.recursive(
    st.none() | st.integers() | st.text(max_size=5) | st.uuids() | st.dates(),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
TAGGED_VALUES_ST = st.recursive(
    TAGGED_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(KEYS | st.just("~t"), inner, max_size=4)
        | st.tuples(inner, inner)
        | st.sets(HASHABLE, max_size=3)
        | st.frozensets(HASHABLE, max_size=3)
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type, all the way down (and time zones by identity of kind)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (datetime.datetime, datetime.time)):
        return bool(a == b and a.tzinfo == b.tzinfo and a.fold == b.fold)
    if isinstance(a, float) and a != a:  # pragma: no cover - NaN is not generated
        return bool(b != b)
    return bool(a == b)


def check_round_trip(
    serializer: Serializer, backend: str, secret: str, port: int, value: Any
) -> None:
    async def run() -> Any:
        store: Store | None = None
        if backend == "memory":
            store = MemoryStore()
        elif backend == "redis":
            store = RedisStore.from_url(f"redis://{LOOPBACK}:{port}/0", namespace="p:")
        try:
            return await round_trip(factory(secret, store, serializer=serializer), {"x": value})
        finally:
            if store is not None:
                await store.aclose()

    read = anyio.run(run, backend="asyncio")
    assert same({"x": value}, read), (value, read)


@pytest.mark.parametrize("backend", ["cookie", "memory", "redis"])
@pytest.mark.parametrize(
    ("serializer", "values"),
    [(JSON, JSON_VALUES | TAGGED_VALUES_ST), (TaggedJSON(), TAGGED_VALUES_ST)],
    ids=["json", "tagged"],
)  # fmt: skip
def test_property_whatever_is_accepted_reads_back_the_same(
    backend: str, serializer: Serializer, values: Any, secret: str,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    """For any value the serializer accepts, the next request reads it equal and same-typed."""
    port = request.getfixturevalue("redis_proc").port if backend == "redis" else 0

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(values)
    def run(value: Any) -> None:
        try:
            serializer.dumps({"x": value})
        except SerializationError:
            return  # refused: the strict default may refuse (the cookie may overflow too)
        check_round_trip(serializer, backend, secret, port, value)

    run()


# -- only what changed is walked; what changed is always walked ----------------------------


async def changed_on_second_request(
    make: Callable[..., SessionMiddleware], change: Callable[[Any], object]
) -> None:
    """Write a nested session, then on the next request apply ``change`` to the loaded one."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        session = scope["session"]
        await session.load()
        if scope["path"] == "/write":
            session.update({"cart": [{"sku": "a"}], "prefs": {"theme": "dark"}, "n": 1})
        else:
            session["seen"] = True  # a plain write too: the set of changed keys is not empty
            change(session)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = make(inner)
    first = Recorder()
    await mw(http_scope(path="/write"), first.receive, first.send)
    cookie = first.headers(b"set-cookie")[0].split(b";")[0]
    second = Recorder()
    await mw(http_scope(cookie, path="/change"), second.receive, second.send)


def mark_modified_then_write(session: Any, key: str, value: Any) -> None:
    session.modified = True
    session[key] = value


CHANGES: list[tuple[str, Callable[[Any], object], tuple[Any, ...]]] = [
    ("nested append via []", lambda s: s["cart"].append({"when": WHEN}), ("cart", 1, "when")),
    ("nested set via get", lambda s: s.get("prefs").update(at=WHEN), ("prefs", "at")),
    ("setdefault", lambda s: s.setdefault("tags", []).append({1, 2}), ("tags", 0)),
    ("items()", lambda s: [v.append(b"x") for k, v in s.items() if k == "cart"], ("cart", 1)),
    ("top-level write", lambda s: s.__setitem__("n", (1, 2)), ("n",)),
    ("write after modified", lambda s: mark_modified_then_write(s, "d", WHEN), ("d",)),
]


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["cookie", "memory"])
@pytest.mark.parametrize(("label", "change", "path"), CHANGES, ids=[c[0] for c in CHANGES])
async def test_a_change_to_a_loaded_session_is_checked(
    backend: str, label: str, change: Callable[[Any], object], path: tuple[Any, ...],
    secret: str, request: pytest.FixtureRequest, tmp_path: Path,
) -> None:  # fmt: skip
    """Loaded values are trusted (they came from the serializer's loads); every way of
    changing one (a write, a list or dict handed out and changed in place) is checked."""
    async with store_for(backend, request, tmp_path) as store:
        with pytest.raises(SerializationError) as info:
            await changed_on_second_request(factory(secret, store), change)
    assert path == info.value.path


def test_dumps_checking_walks_only_the_keys_given() -> None:
    """The contract the session relies on: values under other keys are not walked."""
    trusted = {"loaded": [1, 2], "written": {"a": 1}}
    assert JSON.dumps(trusted) == JSON.dumps_checking(trusted, {"written"})
    with pytest.raises(SerializationError) as info:
        JSON.dumps_checking({"loaded": [1], "written": {"at": WHEN}}, {"written"})
    assert ("written", "at") == info.value.path
    # A key it was not told about is not walked: msgspec writes the tuple as a list.
    assert b'{"loaded":[1,2]}' == JSON.dumps_checking({"loaded": (1, 2)}, set())
