"""seed_demo at the scale the benchmarks need: 10,000 accounts with 200,000 positions in under two minutes.

Run: `make bench`, or `.venv/bin/pytest tests/bench/bench_seed_demo.py -s -o addopts=""` (add
NIJA_TEST_DB_SUFFIX=... to use a throwaway test database). The seed commits, as the command does (its COMMIT is in
the figure); the tables are emptied after the test. It also renders the operator's busiest admin changelists at
this scale and prints their query counts and times.
"""

import time

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.accounts.factories import OperatorFactory
from tests.risk.conftest import counter_drift
from trading.models import EXPOSURE_STATUSES

ACCOUNTS = 10_000
POSITIONS = 200_000
BOUND_SECONDS = 120
ADMIN_PAGES = [
    ("positions", "/admin/trading/position/"),
    ("positions, open BTC-USD", "/admin/trading/position/?status__exact=open&symbol=BTC-USD"),
    ("trading instances", "/admin/accounts/tradinginstance/"),
    ("trades", "/admin/trading/trade/"),
    ("risk events", "/admin/risk/riskevent/"),
]


@pytest.mark.django_db(transaction=True)
def test_seed_demo_full_scale(tmp_path, redis_client):
    started = time.monotonic()
    call_command("seed_demo", accounts=ACCOUNTS, positions=POSITIONS, tokens_out=tmp_path / "tokens.json", seed=1)
    seconds = time.monotonic() - started
    verdict = "within" if seconds < BOUND_SECONDS else "OVER"
    scale = f"{ACCOUNTS} accounts x {POSITIONS} positions"
    print(f"\nseed_demo {scale}: {seconds:.1f} s ({verdict} the {BOUND_SECONDS} s bound)")
    assert _instances_whose_counters_differ_from_their_positions() == 0
    assert counter_drift() == []
    _print_admin_changelists()


def _print_admin_changelists() -> None:
    """The operator's busiest admin pages at this scale: queries and time of one render each."""
    client = Client()
    client.force_login(OperatorFactory(is_superuser=True))
    for name, url in ADMIN_PAGES:
        client.get(url)  # warm (templates, caches)
        with CaptureQueriesContext(connection) as queries:
            started = time.monotonic()
            response = client.get(url)
            milliseconds = (time.monotonic() - started) * 1000
        assert response.status_code == 200
        print(f"admin {name:30} {len(queries.captured_queries):3d} queries  {milliseconds:7.1f} ms")


def _instances_whose_counters_differ_from_their_positions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM accounts_tradinginstance i
            LEFT JOIN (
                SELECT instance_id, sum(notional) AS exposure, count(*) AS held
                FROM trading_position WHERE status = ANY(%s) GROUP BY instance_id
            ) p ON p.instance_id = i.id
            WHERE i.exposure <> coalesce(p.exposure, 0) OR i.position_count <> coalesce(p.held, 0)
            """,
            [[str(status) for status in EXPOSURE_STATUSES]],
        )
        return cursor.fetchone()[0]
