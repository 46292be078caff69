"""What PostgresStore sends: its SQL, built once per table, and the versioned schema.

Expiry is decided by the database server's clock (``now()``), never the app's: every app
machine then agrees on when a session ends, as they do with Redis. The user index keeps the
caller's unix seconds, as the :class:`~.base.SupportsUserIndex` protocol says.

The table name is the one identifier written into SQL, checked by the store before it gets
here; every value is a parameter (``$1``...).
"""

# S608 flags SQL built with f-strings: only the checked table name is.
# ruff: noqa: S608

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError

__all__ = ["META_TABLE", "SCHEMA_VERSION", "Statements"]

#: The schema version this code writes. A table of a newer version is refused.
SCHEMA_VERSION = 1
#: One row per store table: its name and schema version (a database may hold several stores).
META_TABLE = "asgisession_schema"

#: A number every PostgresStore takes as a transaction-scoped advisory lock while it
#: creates or checks its schema, so that processes starting at once create it once.
_SCHEMA_LOCK = 0x61736773  # "asgs"

# ``$n::integer * interval '1 second'``: the TTL is a whole number of seconds (check_ttl).
_LATER = "now() + $3::integer * interval '1 second'"


class Statements:
    """Every SQL statement of one store table and its user index."""

    def __init__(self, table: str) -> None:
        t = self.table = table
        i = self.index_table = f"{table}_index"
        self.schema = (
            f"CREATE TABLE {t} (key text PRIMARY KEY, data bytea NOT NULL, "
            "expires_at timestamptz NOT NULL)",
            f"CREATE INDEX {t}_expires_at ON {t} (expires_at)",
            f"CREATE TABLE {i} (index_key text NOT NULL, member text NOT NULL, "
            "expires_at bigint NOT NULL, PRIMARY KEY (index_key, member))",
            f"CREATE INDEX {i}_expires_at ON {i} (expires_at)",
        )
        self.load = f"SELECT data FROM {t} WHERE key = $1 AND expires_at > now()"
        self.upsert = (
            f"INSERT INTO {t} (key, data, expires_at) VALUES ($1, $2, {_LATER}) "
            "ON CONFLICT (key) DO UPDATE SET data = excluded.data, "
            "expires_at = excluded.expires_at"
        )
        self.replace = (
            f"UPDATE {t} SET data = $2, expires_at = {_LATER} WHERE key = $1 AND expires_at > now()"
        )
        # A row updated meanwhile is re-checked once its writer commits: a compare-and-set.
        self.replace_if = self.replace + " AND data = $4"
        # Of concurrent adds, one inserts; the others wait for its row lock and then find a
        # live row, which the WHERE keeps: "INSERT 0 0". An expired row is written over.
        self.add = (
            f"INSERT INTO {t} (key, data, expires_at) VALUES ($1, $2, {_LATER}) "
            "ON CONFLICT (key) DO UPDATE SET data = excluded.data, "
            f"expires_at = excluded.expires_at WHERE {t}.expires_at <= now()"
        )
        self.touch = (
            f"UPDATE {t} SET expires_at = now() + $2::integer * interval '1 second' "
            "WHERE key = $1 AND expires_at > now()"
        )
        # One statement: the row goes whether live or not, and says which it was.
        self.delete = f"DELETE FROM {t} WHERE key = $1 RETURNING expires_at > now()"
        self.index_add = (
            f"INSERT INTO {i} (index_key, member, expires_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (index_key, member) DO UPDATE SET expires_at = excluded.expires_at"
        )
        self.index_remove = f"DELETE FROM {i} WHERE index_key = $1 AND member = $2"
        # The CTE's DELETE and the SELECT see the same snapshot; the SELECT's filter keeps
        # out what the DELETE removes.
        self.index_members = (
            f"WITH pruned AS (DELETE FROM {i} WHERE index_key = $1 AND expires_at <= $2) "
            f"SELECT member, expires_at FROM {i} WHERE index_key = $1 AND expires_at > $2"
        )
        # SKIP LOCKED: several processes sweeping at once take different rows, never wait.
        self.sweep = (
            f"DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE expires_at <= now() "
            "LIMIT $1 FOR UPDATE SKIP LOCKED) AND expires_at <= now()"
        )
        self.index_sweep = (
            f"DELETE FROM {i} WHERE (index_key, member) IN (SELECT index_key, member "
            f"FROM {i} WHERE expires_at <= extract(epoch FROM now()) "
            "LIMIT $1 FOR UPDATE SKIP LOCKED)"
        )

    async def setup(self, connection: Any, where: str) -> None:
        """Create the schema, or check the one there, in one transaction.

        :raises ConfigurationError: for a table of a newer (or unknown) schema version, or
            one asgisession did not create.
        """
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {META_TABLE} "
                "(table_name text PRIMARY KEY, version integer NOT NULL)"
            )
            version = await connection.fetchval(
                f"SELECT version FROM {META_TABLE} WHERE table_name = $1", self.table
            )
            if version is None:
                for name in (self.table, self.index_table):
                    if await connection.fetchval("SELECT to_regclass($1)", name) is not None:
                        raise ConfigurationError(
                            f"{where} already has a table {name!r} that asgisession did not "
                            "create; give PostgresStore another table=."
                        )
                for statement in self.schema:
                    await connection.execute(statement)
                await connection.execute(
                    f"INSERT INTO {META_TABLE} VALUES ($1, $2)", self.table, SCHEMA_VERSION
                )
            elif version != SCHEMA_VERSION:
                # Version 1 is the first; a later one adds its migration step here.
                newer = version > SCHEMA_VERSION
                raise ConfigurationError(
                    f"table {self.table!r} in {where} has schema version {version}; this "
                    f"asgisession knows version {SCHEMA_VERSION}. "
                    + ("Upgrade asgisession, or" if newer else f"Fix its row in {META_TABLE}, or")
                    + " give PostgresStore another table=."
                )


def rows_changed(status: str) -> int:
    """The row count of a command status such as ``"UPDATE 1"`` or ``"INSERT 0 1"``."""
    return int(status.rpartition(" ")[2])
