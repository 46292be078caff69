"""Finding one field in a form body as it streams in: the parse, without the I/O.

Rules, stated once:

1. Only the two form content types count (``application/x-www-form-urlencoded`` and
   ``multipart/form-data``); a token in any other body (JSON, text) does not.
2. python-multipart parses (the parser Starlette and FastAPI use), and the result is read
   the way Starlette reads it: part names and values decoded with the form's charset
   (latin-1 when they do not decode), ``+`` and ``%XX`` undone in urlencoded names and
   values, one ``Content-Disposition`` per part, a part without a name refused. So what
   this module finds is what Starlette's ``request.form()`` finds
   (tests/integration/test_csrf_differential.py holds the two side by side).
3. Every occurrence is recorded; one that is not a plain string (``authenticity_token[]``,
   ``authenticity_token[a]``, a file part) is recorded as ``None``, so the caller can refuse
   repeats and non-strings. A value over ``_MAX_VALUE`` bytes is recorded as ``b""`` (wrong,
   and not kept).
4. Anything malformed (a missing boundary, broken parts, no close delimiter) marks the
   scanner malformed, never raises.
"""

from __future__ import annotations

import codecs
from urllib.parse import unquote_plus

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, QuerystringParser, parse_options_header

from .tokens import FIELD_NAME

__all__: list[str] = []

_URLENCODED = b"application/x-www-form-urlencoded"
_MULTIPART = b"multipart/form-data"
#: A token value longer than this is wrong whatever it holds, and is not kept.
_MAX_VALUE = 4096


_Found = list[bytes | None]  # the field's values; None stands for a non-string value


def _decode(data: bytes, charset: str) -> str:
    """``data`` in the form's charset, or latin-1 when it does not decode (Starlette's rule)."""
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


class _Scanner:
    """Feeds body chunks to python-multipart and records each occurrence of field ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.found: _Found = []
        self.malformed = False
        self.complete = False

    def feed(self, chunk: bytes) -> None:
        """Parse ``chunk``; a parse error marks the body malformed and stops parsing."""
        if self.malformed or not chunk:
            return
        try:
            self._write(chunk)
        except FormParserError:
            self.malformed = True

    def finish(self) -> None:
        """The body ended: a multipart body must have reached its close delimiter."""
        if not self.malformed:
            try:
                self._finalize()
            except FormParserError:
                self.malformed = True

    def _write(self, chunk: bytes) -> None:
        raise NotImplementedError

    def _finalize(self) -> None:
        raise NotImplementedError


class _UrlencodedScanner(_Scanner):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        # An ASCII name takes at most three bytes a character, encoded; a longer raw name
        # can only match as a prefix (``name[...]``), which this many bytes decide.
        self._name_cap = 3 * (len(name) + 1)
        self._raw_name = bytearray()
        self._value = bytearray()
        self._long = False
        self._parser = QuerystringParser(
            {
                "on_field_start": self._start,
                "on_field_name": self._on_name,
                "on_field_data": self._on_data,
                "on_field_end": self._end,
            }
        )

    def _start(self) -> None:
        self._raw_name.clear()
        self._value.clear()
        self._long = False

    def _on_name(self, data: bytes, start: int, end: int) -> None:
        room = self._name_cap + 1 - len(self._raw_name)
        if room > 0:
            self._raw_name += data[start : min(end, start + room)]

    def _on_data(self, data: bytes, start: int, end: int) -> None:
        room = _MAX_VALUE + 1 - len(self._value)
        if room > 0:
            self._value += data[start : min(end, start + room)]

    def _end(self) -> None:
        key = unquote_plus(self._raw_name.decode("latin-1"))
        if len(self._raw_name) <= self._name_cap and key == self.name:
            value = bytes(self._value)
            if len(value) > _MAX_VALUE:
                self.found.append(b"")
            else:
                self.found.append(unquote_plus(value.decode("latin-1")).encode("utf-8"))
        elif key.startswith(self.name + "["):  # authenticity_token[]=… : an array or hash
            self.found.append(None)

    def _write(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def _finalize(self) -> None:
        self._parser.finalize()
        self.complete = True


class _MultipartScanner(_Scanner):
    def __init__(self, name: str, boundary: bytes, charset: str) -> None:
        super().__init__(name)
        self._charset = charset
        self._header = bytearray()
        self._header_value = bytearray()
        self._dispositions: list[bytes] = []
        self._value: bytearray | None = None  # the current part's value, when it is the field
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def _part_begin(self) -> None:
        self._dispositions.clear()
        self._value = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._dispositions.append(bytes(self._header_value))
        self._header.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        if len(self._dispositions) != 1:  # none, or two that parsers may pick between
            raise FormParserError("a part needs exactly one Content-Disposition")
        _, options = parse_options_header(self._dispositions[0])
        raw = options.get(b"name")
        if raw is None:
            raise FormParserError("a part without a name")
        field = _decode(raw, self._charset)
        if field == self.name:
            if b"filename" in options:
                self.found.append(None)
            else:
                self._value = bytearray()
        elif field.startswith(self.name + "["):
            self.found.append(None)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._value is not None:
            room = _MAX_VALUE + 1 - len(self._value)
            if room > 0:
                self._value += data[start : min(end, start + room)]

    def _part_end(self) -> None:
        if self._value is not None:
            value = bytes(self._value)
            too_long = len(value) > _MAX_VALUE
            self.found.append(b"" if too_long else _decode(value, self._charset).encode("utf-8"))
            self._value = None

    def _end(self) -> None:
        self.complete = True

    def _write(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def _finalize(self) -> None:
        if not self.complete:
            raise FormParserError("the body ended before its close delimiter")


def _form_kind(content_type: bytes | None) -> bytes | None:
    """The form content type named by ``content_type`` (lowercase), or ``None``."""
    if content_type is None:
        return None
    kind, _ = parse_options_header(content_type)
    return kind if kind in (_URLENCODED, _MULTIPART) else None


def _is_form(content_type: bytes | None) -> bool:
    return _form_kind(content_type) is not None


def _scanner(content_type: bytes, name: str) -> _Scanner:
    """A scanner for a form ``content_type`` (which :func:`_is_form` accepted)."""
    kind, params = parse_options_header(content_type)
    if kind == _URLENCODED:
        return _UrlencodedScanner(name)
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "latin-1"
    boundary = params.get(b"boundary")
    try:
        if not boundary:
            raise FormParserError("no boundary")
        return _MultipartScanner(name, boundary, charset)
    except FormParserError:
        broken = _Scanner(name)
        broken.malformed = True
        return broken


def _form_fields(content_type: bytes, body: bytes, name: str = FIELD_NAME) -> _Found | None:
    """Every value of field ``name`` in a whole form ``body``; ``None`` if it is malformed."""
    if not _is_form(content_type):
        return None
    scanner = _scanner(content_type, name)
    scanner.feed(body)
    scanner.finish()
    return None if scanner.malformed else scanner.found
