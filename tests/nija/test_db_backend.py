"""The database backend's health check (nija.db.postgresql): a kept connection is reused without a `SELECT 1` while
it is in good order, and replaced before use when the server has ended it, so a database restart costs no request.

Against the suite's PostgreSQL: the server ends a connection for real (`pg_terminate_backend` from another
connection, as a restart does to every connection), and which statements reached the server is read from
`pg_stat_activity` (a backend's last statement), not from the code under test.
"""

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import psycopg2
import psycopg2.errors
import pytest
from django.db import connection, connections

from accounts.models import TokenKind
from tests.accounts.factories import issue_token
from tests.risk.conftest import funded_account
from tests.servers import server_env, web_server
from trading.market import market_price_set
from trading.models import Position

pytestmark = pytest.mark.django_db(transaction=True)

CHECK_URL = "/api/risk/check-position"


@pytest.fixture
def admin() -> Iterator[psycopg2.extensions.connection]:
    """A connection of its own to the suite's database (autocommit), to watch and end the app's connection."""
    settings = connection.settings_dict
    admin = psycopg2.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )
    admin.autocommit = True
    yield admin
    admin.close()


def _last_statement(admin, pid: int) -> str:
    with admin.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0]


def _terminate(admin, pid: int) -> None:
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])  # waits until the backend has gone
        assert cursor.fetchone()[0] is True


def test_the_project_uses_this_backend():
    assert connection.settings_dict["ENGINE"] == "nija.db.postgresql"
    assert type(connections["default"]).__module__ == "nija.db.postgresql.base"


def test_a_connection_in_good_order_is_usable_without_a_round_trip(admin):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last statement sent'")
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    assert _last_statement(admin, pid) == "SELECT pg_backend_pid()"
    assert connection.is_usable()
    assert _last_statement(admin, pid) == "SELECT pg_backend_pid()"  # no SELECT 1 reached the server


def test_a_connection_left_inside_a_transaction_is_asked_to_the_server(admin):
    """Django's check says such a connection is unusable after a failed statement; polling the socket cannot tell."""
    try:
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        with connection.connection.cursor() as cursor:  # psycopg2's own: a server-side transaction Django knows not
            cursor.execute("BEGIN")
            with pytest.raises(psycopg2.errors.DivisionByZero):
                cursor.execute("SELECT 1 / 0")
        assert not connection.is_usable()  # SELECT 1 failed: the transaction is aborted
        assert _last_statement(admin, pid) == "SELECT 1"
    finally:
        connection.close()


def test_a_connection_the_server_ended_is_unusable(admin):
    try:
        connection.ensure_connection()
        _terminate(admin, connection.connection.info.backend_pid)
        assert not connection.is_usable()
    finally:
        connection.close()


def test_a_closed_connection_is_unusable():
    connection.ensure_connection()
    connection.connection.close()
    assert not connection.is_usable()
    connection.close()


def test_a_check_after_the_server_ended_the_kept_connection_is_answered(admin):
    """A web process that keeps its connection (as production does) answers the first check after the server ended
    that connection: the health check replaces it before the check's first statement."""
    account = funded_account(Decimal("100000"))
    market_price_set(symbol="BTC-USD", price=Decimal("50000"))
    token = issue_token(TokenKind.BOT, instance=account)
    server = web_server(server_env(DB_CONN_MAX_AGE="60", MARKET_PRICE_TTL="3600"), threads=1).start()
    try:
        first = _post_check(server.base_url, token, account.pk, "before")
        assert first == (200, "approved")
        ended = _end_other_connections(admin, keep=connection.connection.info.backend_pid)
        assert ended >= 1  # the web process's kept connection among them

        after = _post_check(server.base_url, token, account.pk, "after")

        assert after == (200, "approved")
    finally:
        server.stop()
    assert set(Position.objects.values_list("client_order_id", flat=True)) == {"before", "after"}


def _post_check(base_url: str, token: str, account_id: int, client_order_id: str) -> tuple[int, str]:
    body = {
        "account_id": account_id,
        "symbol": "BTC-USD",
        "side": "long",
        "quantity": "0.1",
        "price": "50000",
        "client_order_id": client_order_id,
    }
    request = urllib.request.Request(  # noqa: S310 - a loopback http:// URL built here
        f"{base_url}{CHECK_URL}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - same
            return response.status, json.loads(response.read())["decision"]
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _end_other_connections(admin, *, keep: int) -> int:
    """End every connection to the suite's database but this test's two, as a server restart would; how many."""
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), %s)",
            [keep],
        )
        return len(cursor.fetchall())


FD_SETSIZE = 1024  # select()'s limit on descriptor numbers (glibc)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_healthy_connection_on_a_descriptor_above_fd_setsize_is_kept():
    """A process holding over 1,000 descriptors (the events process at 1,000 streams) keeps a healthy connection
    whose descriptor is past select()'s limit (review: select() raised, read as "gone", so it reconnected before
    every request's first query)."""
    connection.close()
    fillers = [os.open(os.devnull, os.O_RDONLY)]
    try:
        while fillers[-1] < FD_SETSIZE + 8:  # every lower descriptor taken, so the connection's is above
            fillers.append(os.dup(fillers[0]))
        first = _backend_pid()
        assert connection.connection.fileno() >= FD_SETSIZE

        usable = connection.is_usable()
        connection.health_check_done = False  # as at the start of the next request (close_if_unusable_or_obsolete)
        second = _backend_pid()

        assert (usable, second) == (True, first)  # usable, and still the same server process (no reconnect)
    finally:
        connection.close()
        for fd in fillers:
            os.close(fd)
