"""Log a user out everywhere, in a Django project whose sessions use the engine.

With ``ASGISESSION_USER_KEY = "_auth_user_id"`` (where ``django.contrib.auth.login`` puts
the user's primary key) and an ``ASGISESSION_STORE``, every session the engine saves for a
logged-in user is listed under that user in the store (the per-user index
``ServerBackend`` keeps for asgisession's own ``user_key``, so an app behind asgisession's
``SessionMiddleware`` with the same store and ``user_key`` shares it)::

    from asgisession.integrations.django_users import revoke_user

    revoke_user(request.user.pk)  # every session of that user ends, this one too

The functions run on the engine's store loop (see :mod:`.django_engine`), so they are
called from a view like any other session call; the ``a``-prefixed ones await it.
"""

from __future__ import annotations

import time

from ..errors import ConfigurationError
from ..revocation import Revocations, UserSession
from ._django_setup import LOOP, engine

__all__ = ["arevoke_user", "auser_sessions", "revoke_user", "user_sessions"]


def _revocations() -> Revocations:
    server = engine().server
    if server is None or server.revocations is None:
        raise ConfigurationError(
            "logging a user out everywhere needs ASGISESSION_STORE and ASGISESSION_USER_KEY "
            '(for django.contrib.auth, "_auth_user_id") in settings.'
        )
    return server.revocations


def revoke_user(user: object) -> int:
    """End every session of ``user`` (its primary key); how many there were.

    .. versionadded:: 0.2
    """
    revocations = _revocations()
    return LOOP.run(lambda: revocations.revoke_user(str(user), now=int(time.time())))


async def arevoke_user(user: object) -> int:
    """Async :func:`revoke_user`.

    .. versionadded:: 0.2
    """
    revocations = _revocations()
    return await LOOP.arun(lambda: revocations.revoke_user(str(user), now=int(time.time())))


def user_sessions(user: object) -> list[UserSession]:
    """The live sessions of ``user`` ("your devices"), soonest-ending first.

    .. versionadded:: 0.2
    """
    revocations = _revocations()
    return LOOP.run(lambda: revocations.sessions(str(user), now=int(time.time())))


async def auser_sessions(user: object) -> list[UserSession]:
    """Async :func:`user_sessions`.

    .. versionadded:: 0.2
    """
    revocations = _revocations()
    return await LOOP.arun(lambda: revocations.sessions(str(user), now=int(time.time())))
