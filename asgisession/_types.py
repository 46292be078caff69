"""ASGI type aliases, so nothing depends on Starlette or asgiref at run time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The app a middleware accepts: any ASGI callable, whatever its own parameter types.
#: Litestar and Quart annotate their scopes and messages as TypedDicts, which a callable
#: typed with ``Scope`` would refuse under mypy and pyright.
AnyASGIApp = Callable[..., Awaitable[None]]
#: A scope as the helpers accept it (``csrf_token``, ``flash``, ``cookies``): a plain dict
#: or a framework's TypedDict (``request.scope`` in Litestar and Quart).
AnyScope = Mapping[str, Any]
