"""One test session per test database and per test Redis server: a second session that would share either refuses
to start, naming the session that holds it.

Two sessions on one test database break each other at random: a transactional test's teardown TRUNCATEs every
table while the other session's tests hold row locks in open transactions (PostgreSQL answers `deadlock
detected` and the flush fails, leaving its rows to the next test), and one session's flush deletes the tokens,
positions and reference rows the other is using. Two sessions on one Redis server flush each other's keys, and a
fail-closed test shuts the server down under the other. None of that is a defect of the code under test, and all
of it looks like one.

The guard is a PostgreSQL session-level advisory lock per resource (`pg_try_advisory_lock`), taken on a
connection of its own to the cluster's `postgres` database (advisory locks are per database: every session takes
them in the same one) and held until the test session ends. PostgreSQL drops the locks with the connection, so a
killed session never leaves one behind. The connection's `application_name` names its holder (process id and
checkout), which is what the refusal quotes.
"""

import os
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg2

# The first key of every guard lock (two-key form of pg_try_advisory_lock): "nija" in ASCII.
NAMESPACE = 0x6E696A61
MAINTENANCE_DATABASE = "postgres"


class SessionClash(Exception):
    """Another test session holds a resource this one needs."""


@dataclass(frozen=True)
class GuardedResource:
    kind: str  # "database" or "redis"
    name: str  # the test database's name, the Redis server's host:port

    @property
    def key(self) -> int:
        """The second advisory lock key: a signed 32-bit hash of the resource."""
        digest = zlib.crc32(f"nija-test-{self.kind}:{self.name}".encode())
        return digest - (1 << 32) if digest >= 1 << 31 else digest


def redis_server(url: str) -> str:
    """host:port of a Redis URL (every database number of one server is one resource: a test may stop it)."""
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"


class SessionGuard:
    """Holds the advisory locks of one test session's database and Redis server until `release`."""

    def __init__(self, database_settings: dict, resources: list[GuardedResource]) -> None:
        self.database_settings = database_settings
        self.resources = resources
        self.connection = None

    def acquire(self) -> None:
        """Take every lock or none; raises SessionClash naming the holder of the first one taken elsewhere."""
        db = self.database_settings
        self.connection = psycopg2.connect(
            dbname=MAINTENANCE_DATABASE,
            user=db["USER"],
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            application_name=f"nija test session pid {os.getpid()} in {os.getcwd()}"[:63],
        )
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            for resource in self.resources:
                cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [NAMESPACE, resource.key])
                if not cursor.fetchone()[0]:
                    holder = _holder(cursor, resource)
                    self.release()
                    raise SessionClash(
                        f"the test {resource.kind} {resource.name} is in use by another test session ({holder}). "
                        "Two sessions on one test database or one test Redis break each other's tests (flush "
                        "deadlocks, rows and keys deleted under a running test): give this one its own with "
                        "NIJA_TEST_DB_SUFFIX=_<name> and TEST_REDIS_PORT=<port> (docs/development.md, Tests)."
                    )

    def release(self) -> None:
        if self.connection is not None:
            self.connection.close()  # the locks go with the connection
            self.connection = None


def _holder(cursor, resource: GuardedResource) -> str:
    cursor.execute(
        """
        SELECT a.application_name, a.client_addr, a.backend_start
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 AND l.granted
        """,
        # pg_locks shows the two int4 keys as oids (unsigned)
        [NAMESPACE, resource.key & 0xFFFFFFFF],
    )
    row = cursor.fetchone()
    if row is None:
        return "it has just ended: try again"
    name, address, started = row
    return f"{name or 'no application name'}, from {address or 'a local socket'}, since {started:%H:%M:%S %Z}"
