# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest

from asgisession.errors import SerializationError
from asgisession.serializer import dumps, loads, sizes_by_key


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, b"{}"),
        ({"a": 1}, b'{"a":1}'),
        ({"a": 1, "b": [1, 2], "c": {"d": None}}, b'{"a":1,"b":[1,2],"c":{"d":null}}'),
        ({"s": 'h\u00e9 "q"'}, '{"s":"h\u00e9 \\"q\\""}'.encode()),
        ({"t": True, "f": False, "x": 1.5}, b'{"t":true,"f":false,"x":1.5}'),
    ],
)
def test_dumps_is_compact_json(data: dict[str, Any], expected: bytes) -> None:
    """dumps writes UTF-8 JSON without spaces, keys in insertion order."""
    assert expected == dumps(data)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ((1, 2), "tuple"),
        (frozenset({3}), "frozenset"),
        (b"ab", "bytes"),
        (datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), "datetime"),
        (uuid.UUID(int=1), "UUID"),
        (float("nan"), "float"),
        (float("inf"), "float"),
    ],
)
def test_types_json_would_change_are_refused(value: Any, type_name: str) -> None:
    """Types msgspec writes but that would read back as other JSON types are refused."""
    with pytest.raises(SerializationError) as excinfo:
        dumps({"k": [value]})
    assert ("k", 0) == excinfo.value.path
    assert type_name == excinfo.value.value_type.__name__  # type: ignore[union-attr]
    assert "session['k'][0] cannot be stored" in str(excinfo.value)


def test_loads_round_trips_dumps() -> None:
    """A JSON-typed session survives dumps and loads unchanged."""
    data = {"user": 42, "cart": [1, 2, {"x": "y"}], "flag": None, "name": "\u00e9\U0001f600"}
    assert data == loads(dumps(data))


@pytest.mark.parametrize("payload", [b"[]", b"[1]", b"1", b'"s"', b"null", b"true", b"1.5"])
def test_loads_requires_an_object(payload: bytes) -> None:
    """JSON that is not an object is refused with ValueError, naming what it was."""
    with pytest.raises(ValueError, match="expected a JSON object"):
        loads(payload)


@pytest.mark.parametrize(
    "payload", [b"", b"{", b"{bad}", b"\xff", b'{"a":1}x', b"{'a': 1}", b'{"a":"\xff"}']
)
def test_loads_refuses_malformed_json_with_value_error(payload: bytes) -> None:
    """Malformed or non-UTF-8 JSON raises ValueError, nothing else."""
    with pytest.raises(ValueError):  # noqa: PT011 - the contract is "a ValueError"
        loads(payload)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"ok": 1, "bad": object()}, "bad"),
        ({"bad": object(), "ok": 1}, "bad"),
        ({"ok": 1, "nested": {"inner": [1, object()]}}, "nested"),
        ({"ok": "x", "first": object(), "second": object()}, "first"),
        ({"ok": 1, "fn": len}, "fn"),
    ],
)
def test_serialization_error_names_the_offending_key(data: dict[str, Any], key: str) -> None:
    """The error names the first top-level key whose value JSON cannot carry."""
    with pytest.raises(SerializationError) as excinfo:
        dumps(data)
    assert key == excinfo.value.key
    assert f"session[{key!r}]" in str(excinfo.value)
    assert "JSON" in str(excinfo.value)


def test_sizes_by_key_orders_largest_first() -> None:
    """Each key's share of the JSON, largest first; ties keep insertion order."""
    data = {"small": 1, "big": "x" * 100, "mid": "x" * 10, "tie": 2}
    assert [
        ("big", len('"big":"' + "x" * 100 + '"')),
        ("mid", len('"mid":"' + "x" * 10 + '"')),
        ("small", len('"small":1')),
        ("tie", len('"tie":2')),
    ] == sizes_by_key(data)


def test_sizes_by_key_matches_the_encoded_size() -> None:
    """The shares plus commas and braces add up to the encoded length."""
    data = {"a": [1, 2, 3], "b": {"c": "d"}, "e": "\u00e9"}
    sizes = sizes_by_key(data)
    assert len(dumps(data)) == sum(size for _, size in sizes) + len(data) - 1 + 2


def test_sizes_by_key_of_empty_session() -> None:
    """An empty session has no keys to report."""
    assert [] == sizes_by_key({})
