"""Tagged JSON: the opt-in :class:`~asgisession.serializer.Serializer` for Python's other types.

``SessionMiddleware(app, ..., serializer=TaggedJSON())`` stores, and brings back equal and
of the same type, everything the default JSON does plus ``datetime`` (naive, or aware with
a ``datetime.timezone`` or a ``zoneinfo.ZoneInfo``, which comes back by its name),
``date``, ``time``, ``timedelta``, ``UUID``, ``bytes``, ``Decimal``, ``set``,
``frozenset``, ``tuple`` and non-finite floats. It is still JSON (no pickle: reading a
cookie or record never runs code). Other types raise
:class:`~asgisession.errors.SerializationError` as with the default.

Each such value is written as a one-key object ``{"~t": [tag, payload]}``. The key ``"~t"``
is reserved: a dict of the app's own that has a ``"~t"`` key is itself written tagged (as
its list of pairs), so no data of the app's can read back as a tag. Payloads without the
marker decode at msgspec's speed; encoding walks the data in Python.

.. versionadded:: 0.2
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
import uuid
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any

from .errors import SerializationError
from .serializer import JSON, _find

__all__ = ["MARKER", "TaggedJSON"]

#: The reserved key of a tagged value.
MARKER = "~t"
_MARKER_BYTES = b'"~t"'
_PLAIN = frozenset({str, int, bool, type(None)})


class _Refused(Exception):
    def __init__(self, error: SerializationError) -> None:
        self.error = error


def _datetime(value: datetime.datetime) -> list[Any]:
    zone = value.tzinfo
    if zone is None or type(zone) is datetime.timezone:
        # ISO 8601 keeps everything but the fold (which of two repeated wall times).
        return (
            ["datetime", value.isoformat(), None, 1]
            if value.fold
            else ["datetime", value.isoformat()]
        )
    if isinstance(zone, zoneinfo.ZoneInfo) and zone.key is not None:
        # The wall time, the zone's name and the fold: exact even in a DST gap or overlap.
        return ["datetime", value.replace(tzinfo=None).isoformat(), zone.key, value.fold]
    raise TypeError(f"a tzinfo of type {type(zone).__name__} (use timezone or ZoneInfo)")


def _time(value: datetime.time) -> list[Any]:
    if value.tzinfo is not None and type(value.tzinfo) is not datetime.timezone:
        raise TypeError(f"a tzinfo of type {type(value.tzinfo).__name__} (use timezone)")
    return ["time", value.isoformat(), value.fold]


def _read_datetime(payload: list[Any]) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(payload[1])
    if len(payload) > 2:
        zone = moment.tzinfo if payload[2] is None else zoneinfo.ZoneInfo(payload[2])
        return moment.replace(tzinfo=zone, fold=payload[3])
    return moment


_WRITE: dict[type, Callable[[Any], list[Any]]] = {
    datetime.datetime: _datetime,
    datetime.date: lambda v: ["date", v.isoformat()],
    datetime.time: _time,
    datetime.timedelta: lambda v: ["timedelta", v.days, v.seconds, v.microseconds],
    uuid.UUID: lambda v: ["uuid", str(v)],
    bytes: lambda v: ["bytes", base64.b64encode(v).decode("ascii")],
    decimal.Decimal: lambda v: ["decimal", str(v)],
    float: lambda v: ["float", repr(v)],  # only the non-finite ones get here
}
_READ: dict[str, Callable[[list[Any]], Any]] = {
    "datetime": _read_datetime,
    "date": lambda p: datetime.date.fromisoformat(p[1]),
    "time": lambda p: datetime.time.fromisoformat(p[1]).replace(fold=p[2]),
    "timedelta": lambda p: datetime.timedelta(days=p[1], seconds=p[2], microseconds=p[3]),
    "uuid": lambda p: uuid.UUID(p[1]),
    "bytes": lambda p: base64.b64decode(p[1], validate=True),
    "decimal": lambda p: decimal.Decimal(p[1]),
    "float": lambda p: float(p[1]),
}
_CONTAINERS: dict[type, str] = {tuple: "tuple", set: "set", frozenset: "frozenset"}
_MAKE: dict[str, Callable[[list[Any]], Any]] = {
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "dict": dict,  # a dict of the app's that has the reserved key, as its [key, value] pairs
}


class TaggedJSON:
    """JSON with tags for the types plain JSON would change; see the module's docs.

    .. versionadded:: 0.2
    """

    def dumps(self, data: Mapping[str, Any]) -> bytes:
        """Encode ``data``, tagging every value plain JSON cannot bring back.

        :raises SerializationError: naming the path and type of a value it cannot carry.
        """
        try:
            return JSON.dumps(_encode_dict(dict(data), []))
        except _Refused as refused:
            raise refused.error from None
        except RecursionError:
            raise SerializationError(str(next(iter(data), "?")), "nested too deep") from None

    def loads(self, payload: bytes) -> dict[str, Any]:
        """Decode what :meth:`dumps` wrote; raise :class:`ValueError` for anything else."""
        data = JSON.loads(payload)
        if _MARKER_BYTES not in payload:
            return data
        try:
            decoded: dict[str, Any] = _decode(data)
        except (TypeError, ValueError, KeyError, IndexError, LookupError) as exc:
            raise ValueError(f"bad tagged value: {exc!r}") from None
        return decoded

    def sizes_by_key(self, data: Mapping[str, Any]) -> list[tuple[str, int]]:
        """Each top-level key with the bytes its entry takes, largest first."""
        return JSON.sizes_by_key(_encode_dict(dict(data), []))


def _refuse(path: list[str | int], value: Any, why: str) -> _Refused:
    return _Refused(SerializationError(str(path[0]), why, path=path, value_type=type(value)))


def _encode(value: Any, path: list[str | int]) -> Any:
    kind = type(value)
    if kind in _PLAIN or (kind is float and math.isfinite(value)):
        return value
    if kind is dict:
        if MARKER in value:
            pairs = [[k, _encode(v, [*path, k])] for k, v in value.items()]
            return {MARKER: ["dict", pairs]}
        return _encode_dict(value, path)
    if kind is list:
        return [_encode(item, [*path, i]) for i, item in enumerate(value)]
    container = _CONTAINERS.get(kind)
    if container is not None:
        return {MARKER: [container, [_encode(item, [*path, i]) for i, item in enumerate(value)]]}
    write = _WRITE.get(kind)
    if write is not None:
        try:
            return {MARKER: write(value)}
        except TypeError as exc:
            raise _refuse(path, value, f"it has {exc}") from None
    found = _find(value, path)
    if found is not None:
        raise _Refused(found)
    raise _refuse(path, value, f"TaggedJSON cannot carry a {kind.__name__}")  # pragma: no cover


def _encode_dict(value: dict[Any, Any], path: list[str | int]) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        if type(key) is not str:
            found = _find({key: None}, path)
            assert found is not None
            raise _Refused(found)
        out[key] = _encode(item, [*path, key])
    return out


def _decode(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [_decode(item) for item in value]
    if kind is not dict:
        return value
    if MARKER not in value:
        return {key: _decode(item) for key, item in value.items()}
    if len(value) != 1:
        raise ValueError("a tagged object has one key")
    payload = value[MARKER]
    if type(payload) is not list or len(payload) < 2:
        raise ValueError("a tag is a list: [name, payload...]")
    name = payload[0]
    make = _MAKE.get(name)
    if make is None:
        return _READ[name](payload)
    items = payload[1]
    if type(items) is not list:
        raise ValueError(f"a {name} tag holds a list")
    if name == "dict":
        if any(type(pair) is not list or type(pair[0]) is not str for pair in items):
            raise ValueError("a dict tag holds [str, value] pairs")
        return {key: _decode(item) for key, item in items}
    return make([_decode(item) for item in items])
