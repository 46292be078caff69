"""JSON for session data: compact, fast, and never pickle.

msgspec's encoder and decoder are used because they beat the standard library's ``json``
on session-sized objects (``benchmarks/codec.py`` measures both: here 8-20x faster to
encode and 3-9x faster to decode), and msgspec is a C extension, not a Rust build.

What comes back is always plain JSON types: ``dict`` (str keys), ``list``, ``str``,
``int``, ``float``, ``bool`` and ``None``. msgspec writes a few more types in their JSON
spelling (tuples and sets as lists, ``datetime``/``UUID``/``Decimal`` as strings,
``bytes`` as base64 strings, NaN and infinities as ``null``); they read back as those
JSON types, as in Rails.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from .errors import SerializationError

__all__ = ["dumps", "loads", "sizes_by_key"]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
# msgspec recurses on the C stack and raises RecursionError for nesting deeper than the
# interpreter's recursion limit allows at the moment of the call, so a value written in a
# shallow call stack may be too deep to read back in a deeper one: that is bad data too,
# never a crash.
_ENCODE_ERRORS = (TypeError, OverflowError, ValueError, RecursionError)
#: What decoding untrusted-shaped JSON may raise; all of it means "not session data".
DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def dumps(data: Mapping[str, Any]) -> bytes:
    """Encode a session mapping as compact JSON.

    :raises SerializationError: naming the first top-level key whose value cannot be encoded.
    """
    try:
        return _encoder.encode(data)
    except _ENCODE_ERRORS as exc:
        for key, value in data.items():
            try:
                _encoder.encode(value)
            except _ENCODE_ERRORS as item_exc:
                raise SerializationError(str(key), str(item_exc)) from item_exc
        raise SerializationError("?", str(exc)) from exc  # pragma: no cover - keys are str


def loads(payload: bytes) -> dict[str, Any]:
    """Decode a JSON object; raise :class:`ValueError` when it is not one."""
    try:
        data = _decoder.decode(payload)
    except DECODE_ERRORS as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def sizes_by_key(data: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Each top-level key with the bytes its entry takes in the JSON, largest first."""
    sizes = [(key, len(_encoder.encode({key: value})) - 2) for key, value in data.items()]
    return sorted(sizes, key=lambda item: item[1], reverse=True)
