"""Session data as bytes: the :class:`Serializer` protocol and the default, strict JSON.

The default writes compact JSON with msgspec, which beats the standard library's ``json``
on session-sized objects (``benchmarks/codec.py`` measures both) and is a C extension,
not a Rust build. It is *strict*: what it accepts reads back on the next request equal
and of the same type. JSON carries ``dict`` (``str`` keys), ``list``, ``str``, ``int``,
``float``, ``bool`` and ``None``; anything else (a ``datetime``, ``tuple``, ``set``,
``bytes``, ``UUID``, ``Decimal``, ``Enum``, a NaN, an ``int`` key, a ``dict`` subclass)
would come back as some other JSON value, so it raises :class:`SerializationError`
naming where it sits and its type. :class:`~asgisession.tagged.TaggedJSON` is the opt-in
that carries those types (``SessionMiddleware(serializer=TaggedJSON())``).

msgspec has no option to refuse the types it writes natively (it calls ``enc_hook`` only
for the rest), so the check is a walk of the data before encoding, in exact-type tests,
inlined for leaves: measured on the benchmark sessions it costs about as much as decoding
the output again and comparing (which would still let ``IntEnum`` members and ``dict``
subclasses through). Only when it fails is the data walked again, slowly, to name the
place.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import math
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import msgspec

from .errors import SerializationError

__all__ = [
    "JSON", "JsonSerializer", "Serializer", "dumps", "dumps_checking", "loads", "sizes_by_key",
]  # fmt: skip

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
# msgspec recurses on the C stack and raises RecursionError for nesting deeper than the
# interpreter's recursion limit allows at the moment of the call, so a value written in a
# shallow call stack may be too deep to read back in a deeper one: that is bad data too,
# never a crash.
_ENCODE_ERRORS = (TypeError, OverflowError, ValueError, RecursionError)
#: What decoding untrusted-shaped JSON may raise; all of it means "not session data".
DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)

_LEAVES = frozenset({str, int, bool, type(None)})
_isfinite = math.isfinite


@runtime_checkable
class Serializer(Protocol):
    """**Protocol:** turns a session's data into bytes for the cookie or store, and back.

    The contract every implementation keeps: ``loads(dumps(data)) == data``, with every
    value of the same type; a value it cannot bring back so raises
    :class:`~asgisession.errors.SerializationError` from :meth:`dumps`.

    .. versionadded:: 0.2
    """

    def dumps(self, data: Mapping[str, Any]) -> bytes:
        """Encode a session mapping; raise SerializationError for a value it cannot keep."""
        ...

    def loads(self, payload: bytes) -> dict[str, Any]:
        """Decode what :meth:`dumps` wrote; raise :class:`ValueError` for anything else."""
        ...

    def sizes_by_key(self, data: Mapping[str, Any]) -> list[tuple[str, int]]:
        """Each top-level key with the bytes its entry takes, largest first."""
        ...


class JsonSerializer:
    """Plain JSON, strict: the default :class:`Serializer` (:data:`JSON`).

    .. versionadded:: 0.2
    """

    def dumps(self, data: Mapping[str, Any]) -> bytes:
        """Encode a session mapping as compact JSON.

        :raises SerializationError: naming the path and type of the first value that
            JSON cannot carry or that would read back as another type or value.
        """
        try:
            if type(data) is not dict:
                data = dict(data)
            _check_dict(data)
            return _encoder.encode(data)
        except _ENCODE_ERRORS:
            raise _explain(data) from None

    def dumps_checking(self, data: Mapping[str, Any], keys: Collection[str]) -> bytes:
        """:meth:`dumps`, checking only the values under ``keys``.

        For a session whose other values came from :meth:`loads`, which only ever returns
        what :meth:`dumps` accepts: a write then costs a walk of what changed, not of the
        whole session.

        :raises SerializationError: as :meth:`dumps`, for a value under one of ``keys``.
        """
        try:
            if type(data) is not dict:
                data = dict(data)
            # The session's keys are str (it refuses others): only the values need a walk.
            # A key gone since it was marked gives None, which passes.
            _check_list(map(data.get, keys))
            return _encoder.encode(data)
        except _ENCODE_ERRORS:
            raise _explain(data) from None

    def loads(self, payload: bytes) -> dict[str, Any]:
        """Decode a JSON object; raise :class:`ValueError` when it is not one."""
        try:
            data = _decoder.decode(payload)
        except DECODE_ERRORS as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        return data

    def sizes_by_key(self, data: Mapping[str, Any]) -> list[tuple[str, int]]:
        """Each top-level key with the bytes its entry takes in the JSON, largest first."""
        sizes = [(key, len(_encoder.encode({key: value})) - 2) for key, value in data.items()]
        return sorted(sizes, key=lambda item: item[1], reverse=True)


def _check_dict(value: dict[Any, Any]) -> None:
    for key, item in value.items():
        if type(key) is not str:
            raise TypeError
        kind = type(item)
        if kind in _LEAVES:
            continue
        if kind is dict:
            _check_dict(item)
        elif kind is list:
            _check_list(item)
        elif kind is not float or not _isfinite(item):
            raise TypeError


def _check_list(value: Iterable[Any]) -> None:
    for item in value:
        kind = type(item)
        if kind in _LEAVES:
            continue
        if kind is dict:
            _check_dict(item)
        elif kind is list:
            _check_list(item)
        elif kind is not float or not _isfinite(item):
            raise TypeError


#: What the types JSON writes but cannot bring back read back as.
_READS_BACK_AS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (datetime.datetime, "an ISO 8601 str (its tzinfo object lost)"),
    ((datetime.date, datetime.time), "an ISO 8601 str"),
    (datetime.timedelta, "an ISO 8601 duration str"),
    ((tuple, set, frozenset), "a list"),
    ((bytes, bytearray, memoryview), "a base64 str"),
    ((uuid.UUID, decimal.Decimal), "a str"),
)


def _explain(data: Mapping[str, Any]) -> SerializationError:
    """Find the first value the strict JSON refuses and say where it is and why."""
    for key, value in data.items():
        if type(key) is not str:  # pragma: no cover - Session refuses such keys
            return SerializationError(str(key), "session keys must be str", path=(str(key),))
        try:
            found = _find(value, [key])
        except RecursionError:
            return SerializationError(key, "nested too deep for JSON", path=(key,))
        if found is not None:
            return found
    for key, value in data.items():  # nothing refused by type: msgspec's own limits
        try:
            _encoder.encode(value)
        except _ENCODE_ERRORS as exc:
            return SerializationError(str(key), str(exc), path=(str(key),))
    return SerializationError("?", "JSON cannot encode it")  # pragma: no cover


def _find(value: Any, path: list[str | int]) -> SerializationError | None:
    kind = type(value)
    if kind in _LEAVES:
        return None
    if kind is float:
        if _isfinite(value):
            return None
        return _error(path, kind, f"{value!r} is not JSON: it would read back as None")
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return _error(
                    [*path, key], type(key),
                    f"the {type(key).__name__} key {key!r} would read back as the str "
                    f"{str(key)!r}, or not at all (JSON object keys are str)",
                )  # fmt: skip
            found = _find(item, [*path, key])
            if found is not None:
                return found
        return None
    if kind is list:
        for index, item in enumerate(value):
            found = _find(item, [*path, index])
            if found is not None:
                return found
        return None
    return _error(path, kind, _why(value))


def _why(value: Any) -> str:
    name = type(value).__name__
    if isinstance(value, enum.Enum):
        return f"the {name} member would read back as its value {value.value!r}"
    if isinstance(value, (dict, list)):
        plain = "dict" if isinstance(value, dict) else "list"
        return f"a {name} would read back as a plain {plain}"
    for types, spelling in _READS_BACK_AS:
        if isinstance(value, types):
            return f"a {name} would read back as {spelling}"
    return f"JSON cannot carry a {name}"


def _error(path: list[str | int], kind: type, detail: str) -> SerializationError:
    return SerializationError(str(path[0]), detail, path=path, value_type=kind)


def dumps_checking(
    serializer: Serializer, data: Mapping[str, Any], keys: Collection[str] | None
) -> bytes:
    """``serializer.dumps(data)``, checking only ``keys`` where the serializer can.

    ``keys`` is ``None`` when every value must be checked. The default JSON skips the walk
    of values its own ``loads`` produced; any other serializer checks everything.
    """
    if keys is not None and type(serializer) is JsonSerializer:
        return serializer.dumps_checking(data, keys)
    return serializer.dumps(data)


#: The default serializer: strict JSON.
JSON: JsonSerializer = JsonSerializer()
dumps: Callable[[Mapping[str, Any]], bytes] = JSON.dumps
loads: Callable[[bytes], dict[str, Any]] = JSON.loads
sizes_by_key: Callable[[Mapping[str, Any]], list[tuple[str, int]]] = JSON.sizes_by_key
