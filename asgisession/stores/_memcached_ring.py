"""Several memcached servers behind one MemcachedStore: a consistent-hash ring, and back-off.

**Which server holds a key.** Each server is placed on a ring of 64-bit points
:data:`POINTS_PER_SERVER` times, at ``blake2b("host:port#i")``; a key belongs to the first
point at or after ``blake2b(key)``, going round. The hash is stable (never Python's salted
``hash()``), and a server's points depend on its address alone, not on its place in the
list, so every process given the same servers (in any order) puts every key on the same
server. Adding a fifth server to four moves the keys that now fall on its points, about a
fifth of them, and no others; removing one moves only its own keys.

**A server that stops answering.** When a command to a server fails for want of an answer
(connection refused or reset, a timeout), that command raises StoreUnavailable, as with one
server, and the server is *marked down* for ``down_retry_delay`` seconds. Meanwhile, with
``failover=True`` (the default, as in Rails' Dalli client), its keys go to the next server
round the ring that is not marked down; with ``failover=False`` a command for one of its
keys fails at once with StoreUnavailable, without trying it. Once the delay has passed, the
next command for one of its keys tries it again, alone: while that try is in flight, the
other commands for its keys go on as if it were down, so a server that still does not
answer holds up one command per delay, not all of them. An answer brings it back, a
failure marks it down for another delay. Each process keeps its own marks.

With one server nothing is ever marked down: every command tries it, as before rings.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import time
from collections.abc import Sequence

import aiomcache
from aiomcache.pool import MemcachePool

from ..errors import ConfigurationError, StoreUnavailable
from ._memcached_protocol import Borrower

__all__ = ["POINTS_PER_SERVER", "Node", "Ring", "point"]

logger: logging.Logger = logging.getLogger("asgisession")

#: Points each server has on the ring: with 160, each of N servers holds 1/N of the keys
#: give or take about 8% of that share (ketama, the usual memcached ring, also uses 160).
POINTS_PER_SERVER = 160


def point(data: bytes) -> int:
    """Where ``data`` falls on the ring: the first 8 bytes of its BLAKE2b digest."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class Node:
    """One memcached server of a store: its client and pool, and whether it is marked down."""

    __slots__ = (
        "borrower",
        "client",
        "down_until",
        "host",
        "owns_client",
        "pool",
        "port",
        "trying",
    )

    def __init__(self, host: str, port: int, client: aiomcache.Client | None = None) -> None:
        self.host = host
        self.port = port
        self.client = client
        self.owns_client = client is None
        self.pool: MemcachePool | None = None
        self.borrower: Borrower | None = None  # runs each command on one of its connections
        #: ``time.monotonic()`` until which the server is skipped; 0 when it is not down (a
        #: past time: down, and due for a try).
        self.down_until = 0.0
        #: Whether a command is trying the server after its delay (see :meth:`usable`).
        self.trying = False

    @property
    def address(self) -> str:
        """``host:port``, the server's name on the ring and in messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def borrow(self, pool_size: int) -> Borrower:
        """The server's borrower, building its client (inside the running loop) on first use."""
        if self.borrower is not None:
            return self.borrower
        if self.client is None:
            self.client = aiomcache.Client(self.host, self.port, pool_size=pool_size)
        return self.use_pool_of(self.client, pool_size)

    def use_pool_of(self, client: aiomcache.Client, pool_size: int) -> Borrower:
        # aiomcache has no public way to borrow a connection; see rule 4 of memcached.py.
        pool = getattr(client, "_pool", None)
        if not isinstance(pool, MemcachePool):
            raise ConfigurationError(
                f"client={client!r} has no aiomcache MemcachePool (client._pool); "
                "MemcachedStore needs aiomcache 0.8."
            )
        self.pool = pool
        # A client passed in names its own server; messages should too.
        self.host = getattr(pool, "_host", self.host)
        self.port = getattr(pool, "_port", self.port)
        self.borrower = Borrower(pool, getattr(pool, "_maxsize", pool_size))
        return self.borrower

    def mark_down(self, delay: float, why: str, *, failover: bool) -> None:
        """Skip this server for ``delay`` seconds."""
        if not self.down_until:
            logger.warning(
                "memcached at %s marked down for %s s (%s); meanwhile its keys %s",
                self.address,
                delay,
                why,
                "go to the next server" if failover else "fail at once (failover=False)",
            )
        self.down_until = time.monotonic() + delay

    def answered(self) -> None:
        """The server answered a command: it is up again, if it was marked down."""
        if self.down_until:
            self.down_until = 0.0
            logger.warning("memcached at %s answers again; back on the ring", self.address)

    def usable(self, now: float) -> bool:
        """Whether to send a command here now; the first after a delay becomes the try.

        The caller that gets ``True`` for a try (:attr:`trying` set) clears :attr:`trying`
        once its command ends, however it ends.
        """
        if not self.down_until:
            return True
        if now < self.down_until or self.trying:
            return False
        self.trying = True
        return True

    async def aclose(self) -> None:
        """Close the client, if this node built it; commands in flight close their connection."""
        if not self.owns_client:
            return
        if self.borrower is not None:
            self.borrower.closing = True
            self.borrower.cancel_opening()
        if self.client is not None:
            client, self.client = self.client, None
            await client.close()


class Ring:
    """The servers of a store on a consistent-hash ring (see the module docstring)."""

    __slots__ = ("_nodes", "_owners", "_points", "failover")

    def __init__(self, nodes: Sequence[Node], *, failover: bool = True) -> None:
        if not nodes:
            raise ConfigurationError("servers=[]; give at least one (host, port).")
        seen = set()
        for node in nodes:
            if node.address in seen:
                raise ConfigurationError(f"servers names {node.address} twice; give it once.")
            seen.add(node.address)
        self._nodes = tuple(nodes)
        self.failover = failover
        placed = sorted(
            (point(f"{node.address}#{i}".encode()), n)
            for n, node in enumerate(self._nodes)
            for i in range(POINTS_PER_SERVER)
        )
        self._points = [at for at, _ in placed]
        self._owners = [self._nodes[n] for _, n in placed]

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self._nodes

    def owner(self, key: bytes) -> Node:
        """The server ``key`` belongs to while every server is up."""
        at = bisect.bisect_left(self._points, point(key))
        return self._owners[at % len(self._owners)]

    def node_for(self, key: bytes) -> Node:
        """The server to send ``key``'s command to now, skipping those marked down.

        A server returned for a try after its delay has :attr:`Node.trying` set: the caller
        clears it when the command ends.

        :raises StoreUnavailable: when ``key``'s server is down and ``failover`` is off, or
            when every server is down.
        """
        owners = self._owners
        if len(self._nodes) == 1:
            return owners[0]
        now = time.monotonic()
        start = bisect.bisect_left(self._points, point(key))
        first = owners[start % len(owners)]
        if first.usable(now):
            return first
        if not self.failover:
            left = first.down_until - now
            state = f"marked down for {left:.1f} s more" if left > 0 else "being tried again"
            raise StoreUnavailable(
                f"memcached at {first.address}, which holds this key, is {state} (failover=False)"
            )
        for step in range(1, len(owners)):
            node = owners[(start + step) % len(owners)]
            if node.usable(now):
                return node
        raise StoreUnavailable(
            "every memcached server of this store is marked down: "
            + ", ".join(node.address for node in self._nodes)
        )
