"""The heartbeat watchdog at desk scale: 10,000 accounts (seed_demo's size), half of whose bots were heard from in
Redis and half silent, with the aggregation's budget (1 s) as the baseline.

Run: `make bench`, or `.venv/bin/pytest tests/bench/bench_watchdog.py -s -o addopts=""`.
Three runs are timed through the whole service (PostgreSQL, Redis, no reservations to release):
- marking: 5,000 silent bots marked stale (5,000 warning events) while 5,000 live bots' times are persisted;
- quiet: the next run (nothing changed: the marked stay marked, the persisted need nothing);
- restoring: the 5,000 silent bots heard from again and restored.
Query counts include the transaction's; they are the same at any size (tests/monitoring/test_watchdog.py pins
them). No assertion on time: the figures are printed.
"""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_redis import get_redis_connection

from accounts.liveness import heartbeat_guard_clear, heartbeat_record
from accounts.models import TradingInstance
from monitoring.watchdog import heartbeat_watch
from tests.accounts.factories import TradingInstanceFactory

ACCOUNTS = 10_000
BUDGET_SECONDS = 1.0


def _accounts(last_heartbeat) -> list[int]:
    owner = TradingInstanceFactory(last_heartbeat=last_heartbeat)
    TradingInstance.objects.bulk_create(
        (
            TradingInstance(user=owner.user, name=f"bench-{index}", last_heartbeat=last_heartbeat)
            for index in range(ACCOUNTS - 1)
        ),
        batch_size=2000,
    )
    return list(TradingInstance.objects.order_by("pk").values_list("pk", flat=True))


def _timed(label: str, now) -> None:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = heartbeat_watch(now=now)
        elapsed = time.perf_counter() - started
    print(
        f"  {label:<9} {elapsed * 1000:8.1f} ms  {elapsed / BUDGET_SECONDS:5.2f} x budget  {len(queries):2d} queries  "
        f"marked {len(result.lost)}  restored {len(result.restored)}"
    )


@pytest.mark.django_db(transaction=True)
def test_the_watchdog_at_desk_scale():
    get_redis_connection("default").flushdb()
    heartbeat_guard_clear()
    now = timezone.now()
    account_ids = _accounts(now - timedelta(seconds=600))
    silent, live = account_ids[::2], account_ids[1::2]
    for pk in live:
        heartbeat_record(pk, now_second=int(now.timestamp()))

    print(f"\nheartbeat watchdog: {ACCOUNTS} accounts, {len(silent)} silent (budget {BUDGET_SECONDS:.0f} s)")
    _timed("marking", now)
    _timed("quiet", now + timedelta(seconds=10))
    back = now + timedelta(seconds=20)
    for pk in silent:
        heartbeat_record(pk, now_second=int(back.timestamp()))
    _timed("restoring", back + timedelta(seconds=1))
    get_redis_connection("default").flushdb()
