"""Tests for asgisession._scope: one error when the session middleware is missing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from asgisession import ConfigurationError, cookies, flash
from asgisession._scope import NO_MIDDLEWARE, session_from_scope
from asgisession.session import LoadedState, Session

HELPERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "session_from_scope": session_from_scope,
    "flash": flash,
    "cookies": cookies,
}


@pytest.mark.parametrize("helper", list(HELPERS), ids=str)
def test_every_helper_says_the_same_thing_without_the_middleware(helper: str) -> None:
    """flash(), cookies() and the adapters raise one ConfigurationError, one message."""
    with pytest.raises(ConfigurationError) as caught:
        HELPERS[helper]({"type": "http"})
    assert NO_MIDDLEWARE == str(caught.value)
    assert "SessionMiddleware" in NO_MIDDLEWARE


def test_another_session_middleware_inside_is_named() -> None:
    """A dict in scope['session'] means another session middleware replaced ours."""
    with pytest.raises(ConfigurationError, match="is a dict, not asgisession's Session"):
        session_from_scope({"session": {}})
    with pytest.raises(ConfigurationError, match="is a dict"):
        flash({"session": {}})


def test_the_session_itself_is_returned() -> None:
    session = Session(lambda: LoadedState())
    assert session_from_scope({"session": session}) is session
