"""The durability settings a benchmark's database ran with, printed next to its figures: a figure measured with
fsync or synchronous commits off is not a figure of the durable cluster `make run` starts.

tests/bench/conftest.py prints them for the in-process connection of every benchmark module; a benchmark that
starts a server prints its server's too (`print_durability(label, dsn)`).
"""

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
