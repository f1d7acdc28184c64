"""seed_demo at the scale the benchmarks need: 10,000 accounts with 200,000 positions in under two minutes.

Run: `make bench`, or `.venv/bin/pytest tests/bench/bench_seed_demo.py -s -o addopts=""` (add
NIJA_TEST_DB_SUFFIX=... to use a throwaway test database). The seed runs inside the test's transaction, which is
rolled back afterwards, so the final COMMIT (about 2 s at this scale) is not in the figure; the command prints its
own time including it.
"""

import time

import pytest
from django.core.management import call_command
from django.db import connection

from trading.models import EXPOSURE_STATUSES

ACCOUNTS = 10_000
POSITIONS = 200_000
BOUND_SECONDS = 120


@pytest.mark.django_db
def test_seed_demo_full_scale(tmp_path, redis_client):
    started = time.monotonic()
    call_command("seed_demo", accounts=ACCOUNTS, positions=POSITIONS, tokens_out=tmp_path / "tokens.json", seed=1)
    seconds = time.monotonic() - started
    verdict = "within" if seconds < BOUND_SECONDS else "OVER"
    scale = f"{ACCOUNTS} accounts x {POSITIONS} positions"
    print(f"\nseed_demo {scale}: {seconds:.1f} s ({verdict} the {BOUND_SECONDS} s bound)")
    assert _instances_whose_counters_differ_from_their_positions() == 0


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
