"""The desk aggregation at a small size and at 10,000 accounts x 200,000 positions (seed_demo): time and query count
of one run, which must be the same number of queries at both sizes; target under one second at full size.

Run: `make bench`, or `.venv/bin/pytest tests/bench/bench_aggregation.py -s -o addopts=""`. The small desk is
seeded first and measured, then seed_demo adds the rest up to the full size and the same runs are measured again.
Each figure is the median of several runs (after one warm-up), for a run that finds this minute's history row
already written (the usual run) and for the minute's first run (it also writes one point per account). The
statistics are refreshed (ANALYZE) after seeding, as autovacuum would on a live database. Printed, never asserted
on time.
"""

import io
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.services import aggregation_run, analytics_run
from tests.monitoring.desk import marks

SMALL = (20, 400)
FULL = (10_000, 200_000)
RUNS = 5
TARGET_SECONDS = 1.0


@pytest.mark.django_db(transaction=True)
def test_aggregation_time_and_queries_at_two_sizes(tmp_path, redis_client):
    seeded = (0, 0)
    figures = {}
    for accounts, positions in (SMALL, FULL):
        call_command(
            "seed_demo",
            accounts=accounts - seeded[0],
            positions=positions - seeded[1],
            tokens_out=tmp_path / f"tokens-{accounts}.json",
            seed=1,
            stdout=io.StringIO(),
        )
        seeded = (accounts, positions)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        marks(BTC="64000", ETH="3200", SOL="150", XRP="0.55")
        figures[(accounts, positions)] = _measure(minutes_ahead=10 + 100 * len(figures))
        analytics_seconds = _timed(lambda: analytics_run(now=timezone.now()))
        print(f"[bench_aggregation] {accounts} x {positions}: analytics run {analytics_seconds * 1000:.0f} ms")
    _print_verdict(figures)


def _measure(*, minutes_ahead: int) -> dict[str, tuple[float, int]]:
    """(median seconds, queries) of the usual run and of the minute's first run, at minutes no earlier
    measurement wrote."""
    minute = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=minutes_ahead)
    aggregation_run(now=minute)  # warm-up; also writes this minute's row
    usual = [_run(minute + timedelta(seconds=5 + n)) for n in range(RUNS)]
    first = [_run(minute + timedelta(minutes=1 + n)) for n in range(RUNS)]
    return {
        "usual": (statistics.median(s for s, _ in usual), usual[0][1]),
        "first of a minute": (statistics.median(s for s, _ in first), first[0][1]),
    }


def _run(now: datetime) -> tuple[float, int]:
    with CaptureQueriesContext(connection) as queries:
        seconds = _timed(lambda: aggregation_run(now=now))
    return seconds, len(queries)


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _print_verdict(figures: dict) -> None:
    small, full = figures[SMALL], figures[FULL]
    for kind in ("usual", "first of a minute"):
        (small_s, small_q), (full_s, full_q) = small[kind], full[kind]
        same = "equal" if small_q == full_q else "NOT EQUAL"
        verdict = "met" if full_s < TARGET_SECONDS else "MISSED"
        print(
            f"[bench_aggregation] {kind:17} run: {SMALL[0]} x {SMALL[1]}: {small_s * 1000:6.0f} ms, {small_q} queries;"
            f" {FULL[0]} x {FULL[1]}: {full_s * 1000:6.0f} ms, {full_q} queries ({full_s / small_s:.1f}x the small"
            f" desk's time); query count {same}; target < {TARGET_SECONDS:.0f} s: {verdict}"
        )
