"""Move to asgisession from another framework's sessions without logging anyone out.

Each source reads one peer's session cookie, with that peer's own library and secret, as
a format that :class:`~asgisession.rotation.Rotation` reads::

    app = SessionMiddleware(
        app,
        secret_key_base=os.environ["SECRET_KEY_BASE"],
        cookie_format=Rotation(
            write="encrypted",
            read=[StarletteCookies(secret_key=os.environ["OLD_SECRET_KEY"])],
        ),
    )

A request that carries the peer's cookie (under the middleware's cookie name: keep the
peer's while migrating) gets that session, and its response re-issues it in asgisession's
format, on the cookie store and on server-side stores alike. ``docs/migrating.md`` has the
whole recipe.

- :class:`StarletteCookies`: Starlette's and FastAPI's ``SessionMiddleware``.
- :class:`FlaskCookies`: Flask's and Quart's default session interface.
- :class:`DjangoSignedCookies`: Django's ``signed_cookies`` session engine.

The first two need itsdangerous (``pip install 'asgisession[migrate]'``), the last Django.

.. versionadded:: 0.2
"""

from __future__ import annotations

from ._source import MigrationSource
from .from_django import DjangoSignedCookies
from .from_flask import FlaskCookies
from .from_starlette import StarletteCookies

__all__ = ["DjangoSignedCookies", "FlaskCookies", "MigrationSource", "StarletteCookies"]
