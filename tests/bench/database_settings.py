"""The durability settings a benchmark's database ran with, printed next to its figures: a figure measured with
fsync or synchronous commits off is not a figure of the durable cluster `make run` starts.

tests/bench/conftest.py prints them for the in-process connection of every benchmark module; a benchmark that
starts a server prints its server's too (`print_durability(label, dsn)`).
"""

import time
from typing import Any

import psycopg2
from django.db import connection

DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")
_QUERY = "SELECT name, setting FROM pg_settings WHERE name = ANY(%s) ORDER BY name"


def _durability(cursor: Any) -> dict[str, str]:
    cursor.execute(_QUERY, [list(DURABILITY)])
    return dict(cursor.fetchall())


def print_durability(label: str, dsn: dict[str, Any] | None = None) -> None:
    """Django's connection's settings, or those of a new connection made with `dsn` (psycopg2 keywords)."""
    if dsn is None:
        with connection.cursor() as cursor:
            settings = _durability(cursor)
    else:
        with psycopg2.connect(**dsn) as server_connection, server_connection.cursor() as cursor:
            settings = _durability(cursor)
        server_connection.close()
    print(f"\n[database] {label}: " + ", ".join(f"{name}={value}" for name, value in settings.items()))


def wal_flush_seconds(dsn: dict[str, Any], commits: int = 300) -> float:
    """What the durable COMMIT's WAL flush costs on this server: the mean time of a one-row autocommit INSERT with
    synchronous_commit on, less the same with it off (a logged table made for it and dropped: a temporary one
    writes no WAL)."""
    server_connection = psycopg2.connect(**dsn)
    server_connection.autocommit = True
    try:
        with server_connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS bench_wal_flush_probe (id serial PRIMARY KEY, value int)")
            means = {}
            for mode in ("off", "on", "off", "on"):
                cursor.execute(f"SET synchronous_commit = {mode}")
                started = time.perf_counter()
                for _ in range(commits):
                    cursor.execute("INSERT INTO bench_wal_flush_probe (value) VALUES (1)")
                means.setdefault(mode, []).append((time.perf_counter() - started) / commits)
            cursor.execute("DROP TABLE bench_wal_flush_probe")
    finally:
        server_connection.close()
    return max(min(means["on"]) - min(means["off"]), 0.0)
