"""A cookie value as people paste it: with its ``name=`` prefix, quotes, spaces or ``;``.

``inspect`` takes what a browser's developer tools or a ``Cookie`` header give, and these
functions reduce it to the value the middleware would have read.
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["clean_rails_value", "clean_value"]


def clean_value(raw: str) -> tuple[str | None, str]:
    """Split a pasted cookie into (name or ``None``, value): quotes, spaces, ``;`` dropped."""
    text = raw.strip().strip(";").strip().strip("\"'").strip()
    # Unpadded base64url never contains "=", so one followed by more than padding means a
    # "name=" prefix; a value that only ends in "=" is kept whole (and reported non_canonical).
    name, sep, rest = text.partition("=")
    if not sep or not rest.strip("="):
        return None, text
    return name.strip(), rest.strip().strip(";").strip().strip("\"'").strip()


def clean_rails_value(raw: str) -> tuple[str | None, str]:
    """:func:`clean_value` for a Rails cookie, pasted escaped (``%2B``) or not (``+``)."""
    text = raw.strip().strip(";").strip().strip("\"'").strip()
    name, sep, rest = text.partition("=")
    # Base64 padding is followed by more padding, "--" or the end; a name by its value.
    if sep and rest and rest[0] not in "=-" and "--" not in name:
        text = rest.strip().strip(";").strip().strip("\"'").strip()
    else:
        name = ""
    # Unescaped base64 ("+", "/", "=") is escaped as the browser would carry it.
    if any(char in text for char in "+/="):
        text = quote(text, safe="*%")
    return (name.strip() or None), text
