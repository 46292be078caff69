"""Store calls slower than a threshold: logged at WARNING and counted, before they time out.

A store that slows down shows it first in calls that still succeed, only slower; by the
time they pass ``timeout`` users get 503s. So each bundled store with a network or a file
behind it (Redis, memcached, SQLite) takes ``slow_after`` (seconds; a quarter of ``timeout`` by
default, ``None`` for never) and hands each call that completed in at least that long to
:meth:`SlowCalls.record`, which logs it on the ``asgisession`` logger, naming the store, the
operation and the duration, and counts it per operation. ``SessionMiddleware`` shows the
counts as ``middleware.slow_store_calls``, beside ``rejections`` and ``lost_changes``.

Calls that time out are not counted here: they raise StoreUnavailable, which the middleware
logs and answers itself.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any, Final

from ..errors import ConfigurationError

__all__ = ["QUARTER_OF_TIMEOUT", "SlowCalls", "threshold"]

logger: logging.Logger = logging.getLogger("asgisession")

#: Without ``slow_after``, a call is slow from this fraction of the store's ``timeout``.
DEFAULT_FRACTION = 0.25


class _QuarterOfTimeout:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<a quarter of timeout>"


#: The default of ``slow_after``: a quarter of the store's ``timeout``.
QUARTER_OF_TIMEOUT: Final[Any] = _QuarterOfTimeout()


def threshold(value: object, timeout: float | None) -> float:
    """The threshold in seconds (``inf`` for never) from the ``slow_after`` argument.

    :data:`QUARTER_OF_TIMEOUT` means a quarter of ``timeout``, or never without one.

    :raises ConfigurationError: for anything but seconds > 0 or ``None``.
    """
    if value is QUARTER_OF_TIMEOUT:
        return math.inf if timeout is None else timeout * DEFAULT_FRACTION
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigurationError(f"slow_after={value!r}; give seconds > 0, or None.")
    return float(value)


class SlowCalls:
    """Counts, per operation, the calls of one store that took ``threshold`` seconds or more."""

    __slots__ = ("counts", "store", "threshold")

    def __init__(self, store: str, threshold: float) -> None:
        self.store = store
        self.threshold = threshold
        #: Slow calls so far, by operation (``"GET"``, ``"a set"``, ...).
        self.counts: Counter[str] = Counter()

    def record(self, what: str, seconds: float) -> None:
        """Count and log one call of ``what`` that took ``seconds`` (>= ``threshold``)."""
        self.counts[what] += 1
        logger.warning(
            "slow session store: %s %s took %.3f s (slow_after=%s s)",
            self.store, what, seconds, self.threshold,
        )  # fmt: skip
