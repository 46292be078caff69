"""Old import paths that keep working for one release, with a DeprecationWarning."""

from __future__ import annotations

import warnings


def moved(old: str, new: str, *, since: str = "0.2", removed_in: str = "0.3") -> None:
    """Warn that the module ``old`` is now ``new`` (called at the top of the old module)."""
    warnings.warn(
        f"{old} moved to {new} in asgisession {since}; the old path goes away in "
        f"{removed_in}. Import from {new} instead.",
        DeprecationWarning,
        stacklevel=3,
    )
