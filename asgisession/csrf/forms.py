"""Reading a form body for its ``authenticity_token`` field, and handing the body on intact.

Rules, stated once:

1. Only the two form content types are read (``application/x-www-form-urlencoded`` and
   ``multipart/form-data``); a token in any other body (JSON, text) does not count.
2. The body is read whole, at most the middleware's ``max_body_size`` bytes: a larger
   ``Content-Length`` is refused before reading, a longer body as soon as it passes the
   limit (the middleware answers 413). A client that disconnects ends the request quietly.
3. The app then receives the same bytes in one ``http.request`` message, after which
   ``receive`` is the server's again.
4. The field is found by its exact name. Every occurrence is reported, and one that is
   not a plain string (``authenticity_token[]``, ``authenticity_token[a]``, a file part)
   is reported as ``None``, so the caller can refuse repeats and non-strings.
5. Anything malformed (parameters, a bad or missing boundary, broken or too many parts)
   parses to ``None``, a rejection, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

from .._http import header_values
from .._types import Message, Receive
from .tokens import FIELD_NAME

__all__: list[str] = []

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# One `; name=value` parameter; the value is a token or a quoted string with \-escapes.
_PARAM = re.compile(rb';\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;"]*)\s*', re.DOTALL)
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_MAX_PARTS = 1000


class _TooLarge(Exception):
    """The body is over the limit (declared or read); the middleware answers 413."""


class _Disconnected(Exception):
    """The client left before the body was complete; nobody is left to answer."""


async def _read_body(
    headers: Sequence[tuple[bytes, bytes]], receive: Receive, max_body: int
) -> tuple[bytes, Receive]:
    """Buffer the whole body (bounded) and return it with a ``receive`` that replays it."""
    lengths = header_values(headers, b"content-length")
    if lengths and lengths[0].strip().isdigit() and int(lengths[0]) > max_body:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _is_form(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind.decode("latin-1") in _FORM_TYPES


def _parse_params(value: bytes) -> tuple[bytes, dict[bytes, bytes]] | None:
    """``type; a=1; b="2"`` to ``(b"type", {b"a": b"1", b"b": b"2"})``; ``None`` if malformed."""
    head, sep, rest = value.partition(b";")
    params: dict[bytes, bytes] = {}
    rest = sep + rest
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            return None
        key, raw = match.group(1).lower(), match.group(2)
        if raw.startswith(b'"'):
            raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1], flags=re.DOTALL)
        if key in params:  # a repeated parameter (two boundaries, two names) is ambiguous
            return None
        params[key] = raw
        pos = match.end()
    return head.strip().lower(), params


_Found = list[bytes | None]  # the field's values; None stands for a non-string value


def _urlencoded_fields(body: bytes, name: bytes) -> _Found:
    found: _Found = []
    for pair in body.split(b"&"):
        key, _, value = pair.partition(b"=")
        key = unquote_to_bytes(key.replace(b"+", b" "))
        if key == name:
            found.append(unquote_to_bytes(value.replace(b"+", b" ")))
        elif key.startswith(name + b"["):  # authenticity_token[]=… : an array or hash
            found.append(None)
    return found


def _multipart_fields(body: bytes, boundary: bytes, name: bytes) -> _Found | None:
    """The values of field ``name`` in a multipart body; ``None`` if it is malformed.

    Just enough of RFC 7578 to find one field: delimiter lines, part headers and the
    ``name`` of ``Content-Disposition``. The body is already bounded by the caller.
    """
    delimiter = b"--" + boundary
    separator = b"\r\n" + delimiter
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:  # a preamble before the first delimiter is allowed, and ignored
        first = body.find(separator)
        if first < 0:
            return None
        pos = first + len(separator)
    found: _Found = []
    for _ in range(_MAX_PARTS):
        if body.startswith(b"--", pos):  # the close delimiter; the epilogue is ignored
            return found
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            return None
        start = eol + 2
        end = body.find(separator, start)
        if end < 0:
            return None
        part = body[start:end]
        if part.startswith(b"\r\n"):
            head, content = b"", part[2:]
        else:
            head_end = part.find(b"\r\n\r\n")
            if head_end < 0:
                return None
            head, content = part[:head_end], part[head_end + 4 :]
        dispositions = []
        for line in head.split(b"\r\n"):
            key, colon, value = line.partition(b":")
            if not colon:
                return None
            if key.strip().lower() == b"content-disposition":
                dispositions.append(_parse_params(value))
        if len(dispositions) > 1 or (dispositions and dispositions[0] is None):
            return None
        if dispositions:
            disposition = dispositions[0]
            assert disposition is not None
            kind, params = disposition
            field = params.get(b"name")
            if kind == b"form-data" and field == name:
                found.append(None if b"filename" in params else content)
            elif kind == b"form-data" and field is not None and field.startswith(name + b"["):
                found.append(None)
        pos = end + len(separator)
    return None  # too many parts to be a form worth reading


def _form_fields(content_type: bytes, body: bytes) -> _Found | None:
    """Every value of the token field in a form ``body``; ``None`` if it cannot be parsed."""
    parsed = _parse_params(content_type)
    if parsed is None:
        return None
    kind, params = parsed
    name = FIELD_NAME.encode()
    if kind == b"application/x-www-form-urlencoded":
        return _urlencoded_fields(body, name)
    boundary = params.get(b"boundary")
    if boundary is None or not _BOUNDARY.fullmatch(boundary):
        return None
    return _multipart_fields(body, boundary, name)
