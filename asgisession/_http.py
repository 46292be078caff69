"""HTTP rules both middlewares share: ``Vary`` merging, plain-text replies, path prefixes.

Each rule has one implementation here, so the session middleware and the CSRF middleware
cannot drift apart (they once matched ``/api`` against ``/apix`` differently).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ._types import Send
from .errors import ConfigurationError

__all__ = [
    "cookie_path_matches",
    "header_values",
    "keep_private",
    "merge_vary",
    "path_prefixes",
    "send_plain",
]

Headers = list[tuple[bytes, bytes]]


def header_values(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every value of the header ``name`` (lower-case), in order."""
    return [value for key, value in headers if key.lower() == name]


def merge_vary(headers: Headers, names: Sequence[bytes]) -> None:
    """Add ``names`` to the first ``Vary`` header, skipping those already listed (or ``*``).

    Tokens compare case-insensitively across every ``Vary`` header; a response without one
    gets a new header. ``headers`` is changed in place.
    """
    # Hot path of every response with a session read or written (the middleware section's
    # read and write rows): most responses have no Vary yet, found by length first.
    for key, _ in headers:
        if len(key) == 4 and key.lower() == b"vary":
            break
    else:
        if names:
            headers.append((b"vary", b", ".join(names)))
        return
    present: set[bytes] = set()
    first = None
    for index, (key, value) in enumerate(headers):
        if key.lower() == b"vary":
            present.update(token.strip().lower() for token in value.split(b","))
            first = index if first is None else first
    if b"*" in present:
        return
    missing = [name for name in names if name.lower() not in present]
    if not missing:
        return
    joined = b", ".join(missing)
    if first is None:
        headers.append((b"vary", joined))
    else:
        key, value = headers[first]
        headers[first] = (key, value + b", " + joined if value.strip() else joined)


def keep_private(headers: Headers) -> bytes | None:
    """Keep a response that sets a cookie out of shared caches: its ``Cache-Control`` private.

    A shared cache that stores a response with ``Set-Cookie`` hands that cookie (a session)
    to everyone it serves the response to. Without ``Cache-Control``, ``private`` is added.
    One without a bare ``private`` or ``no-store`` (``public``, ``s-maxage``, a plain
    ``max-age``: all let shared caches store it) becomes ``private`` plus its other
    directives, less ``public``, ``s-maxage`` and a field-qualified ``private="..."``.
    ``headers`` is changed in place.

    :returns: the ``Cache-Control`` value that was replaced (for the log), else ``None``.
    """
    # Hot path of every response that sets a cookie (the middleware section's write row):
    # most have no Cache-Control, found by length first without listing the values.
    for key, _ in headers:
        if len(key) == 13 and key.lower() == b"cache-control":
            break
    else:
        headers.append((b"cache-control", b"private"))
        return None
    values = header_values(headers, b"cache-control")
    directives = [d.strip() for value in values for d in value.split(b",") if d.strip()]
    if any(d.lower() in (b"private", b"no-store") for d in directives):
        return None
    shared = (b"public", b"s-maxage", b"private")
    kept = [d for d in directives if d.split(b"=", 1)[0].strip().lower() not in shared]
    headers[:] = [(key, value) for key, value in headers if key.lower() != b"cache-control"]
    headers.append((b"cache-control", b", ".join([b"private", *kept])))
    return b", ".join(values)


def cookie_path_matches(cookie_path: str, request_path: str) -> bool:
    """Whether a browser sends a cookie with Path ``cookie_path`` to ``request_path``.

    RFC 6265 section 5.1.4: the same path, or one below it by whole segments.
    """
    if request_path == cookie_path or cookie_path == "/":
        return True
    return request_path.startswith(cookie_path) and (
        cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    )


async def send_plain(
    send: Send,
    status: int,
    body: bytes,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with a short ``text/plain`` body that no cache keeps."""
    headers: Headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def path_prefixes(option: str, prefixes: Sequence[str]) -> Callable[[str], bool]:
    """A predicate: whether a path is one of ``prefixes`` or lies under one, by segment.

    ``"/api"`` matches ``/api`` and ``/api/users``, never ``/apix``; ``"/"`` matches every
    path. ``option`` names the setting in the error for a prefix that is not a path.

    :raises ConfigurationError: for one string instead of a list, or a prefix without a
        leading ``/``.
    """
    if isinstance(prefixes, (str, bytes)):
        raise ConfigurationError(f"{option} takes a list of path prefixes, not one string.")
    roots: list[str] = []
    for prefix in prefixes:
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise ConfigurationError(
                f"{option} prefix {prefix!r} must be a path starting with '/'."
            )
        roots.append(prefix.rstrip("/"))
    if "" in roots:
        return lambda path: True
    if not roots:
        return lambda path: False
    exact = frozenset(roots)
    under = tuple(root + "/" for root in roots)
    return lambda path: path in exact or path.startswith(under)
