"""What every adapter shares: naming a missing framework.

(Finding the session in a scope is :func:`asgisession._scope.session_from_scope`, shared
with the flash and CSRF helpers.)
"""

from __future__ import annotations

__all__ = ["missing_framework"]


def missing_framework(module: str, package: str, error: ImportError) -> ImportError:
    """An ImportError that says which package a framework adapter needs."""
    message = (
        f"asgisession.integrations.{module} needs {package}, which is not installed "
        f"({error}): pip install {package}"
    )
    return ImportError(message, name=error.name)
