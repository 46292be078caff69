"""Session names that moved to :class:`~asgisession.session.SessionControl` in 0.2.

They were public on :class:`~asgisession.session.Session` in 0.1 but are for the middleware,
the backends and the helpers, not for apps. Each still works for one release and warns;
``control_of(session)`` (or the middleware's own control) is the way from now on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import LoadedState, Session, SessionControl

__all__ = ["DeprecatedSessionNames"]


def _moved(name: str) -> None:
    warnings.warn(
        f"Session.{name} is deprecated since asgisession 0.2 and goes away in 0.3: it is for "
        "the middleware and backends, and lives on asgisession.session.SessionControl "
        "(asgisession.session.control_of(session)).",
        DeprecationWarning,
        stacklevel=4,
    )


class DeprecatedSessionNames:
    """The 0.1 names, each a warning and a call to the session's control."""

    __slots__ = ()

    def _deprecated_control(self, name: str) -> SessionControl:
        from .session import control_of  # session.py imports this module

        _moved(name)
        return control_of(self)  # type: ignore[arg-type]  # only Session inherits this

    def attach(self, state: LoadedState) -> None:
        """Deprecated: ``SessionControl.attach``."""
        self._deprecated_control("attach").attach(state)

    def before_commit(self, callback: Callable[[Session], None]) -> None:
        """Deprecated: ``SessionControl.before_commit``."""
        self._deprecated_control("before_commit").before_commit(callback)

    def run_before_commit(self) -> None:
        """Deprecated: ``SessionControl.run_before_commit``."""
        self._deprecated_control("run_before_commit").run_before_commit()

    def fail_with(self, error: BaseException) -> None:
        """Deprecated: ``SessionControl.fail_with``."""
        self._deprecated_control("fail_with").fail_with(error)

    def raw(self) -> dict[str, Any]:
        """Deprecated: ``SessionControl.data``."""
        return self._deprecated_control("raw").data()

    @property
    def accessed(self) -> bool:
        """Deprecated: ``SessionControl.accessed``."""
        return self._deprecated_control("accessed").accessed

    @property
    def state(self) -> LoadedState:
        """Deprecated: ``SessionControl.state``."""
        return self._deprecated_control("state").state

    @property
    def exposed(self) -> bool:
        """Deprecated: ``SessionControl.exposed``."""
        return self._deprecated_control("exposed").exposed

    @property
    def regenerated(self) -> bool:
        """Deprecated: ``SessionControl.regenerated``."""
        return self._deprecated_control("regenerated").regenerated

    @property
    def changes(self) -> int:
        """Deprecated: ``SessionControl.changes``."""
        return self._deprecated_control("changes").changes

    @property
    def resets(self) -> int:
        """Deprecated: ``SessionControl.resets``."""
        return self._deprecated_control("resets").resets
