"""Lifecycle transitions sent at the same instant from separate threads (transactional tests, real PostgreSQL, every
call commits): replays yield one fill or one trade, competing fills never over-fill, and a fill racing the expiry
sweep ends in exactly one of the two outcomes, with every counter equal to the sum over positions."""

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from risk.errors import IllegalTransition
from risk.services.lifecycle import reservations_expire
from tests.risk.conftest import counter_drift, funded_account
from tests.risk.services.scenario import close, exposures, fill, reserve
from trading.models import Fill, Position, Trade

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 16


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Every call in its own thread (own connection, closed after), released by one barrier; results or the
    exceptions raised, in call order."""
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(slot: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[slot] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each call raised
            results[slot] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(slot, call)) for slot, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def kinds(results: list[Any]) -> Counter:
    return Counter(type(result).__name__ for result in results)


def test_the_same_fill_sent_by_many_threads_at_once_is_recorded_once():
    account = funded_account("100000")
    position = reserve(account, quantity="0.3")

    results = at_once([lambda: fill(position, "ex-1", "0.1", "49000", fees="1")] * THREADS)

    assert kinds(results) == Counter({"Position": THREADS})
    position.refresh_from_db()
    assert (position.filled_quantity, position.fees, position.notional) == (
        Decimal("0.1"),
        Decimal("1"),
        Decimal("14900"),
    )
    assert Fill.objects.count() == 1
    assert counter_drift() == []


def test_competing_fills_never_fill_more_than_was_reserved():
    account = funded_account("100000")
    position = reserve(account, quantity="0.3")

    results = at_once([lambda n=n: fill(position, f"ex-{n}", "0.05", "50000") for n in range(THREADS)])

    assert kinds(results) == Counter({"Position": 6, "QuantityExceeded": THREADS - 6})
    position.refresh_from_db()
    assert (position.filled_quantity, position.notional) == (Decimal("0.3"), Decimal("15000"))
    assert Fill.objects.count() == 6
    assert counter_drift() == []


def test_the_same_close_sent_by_many_threads_at_once_writes_one_trade():
    account = funded_account("100000")
    position = fill(reserve(account, quantity="0.3"), "ex-1", "0.3", "50000")

    results = at_once([lambda: close(position, "c-1", "51000", quantity="0.1")] * THREADS)

    assert kinds(results) == Counter({"Trade": THREADS})
    assert {trade.pk for trade in results} == {Trade.objects.get().pk}
    position.refresh_from_db()
    assert (position.closed_quantity, position.realized_pnl) == (Decimal("0.1"), Decimal("100"))
    assert counter_drift() == []


def test_a_fill_racing_the_expiry_sweep_ends_in_exactly_one_outcome():
    account = funded_account("1000000")
    start = timezone.now()
    positions = [reserve(account, quantity="0.1", now=start) for _ in range(THREADS // 2)]
    deadline_passed = start + timedelta(seconds=121)
    calls = [lambda p=p: fill(p, f"ex-{p.pk}", "0.1", "50000") for p in positions]
    calls += [lambda: reservations_expire(now=deadline_passed)] * (THREADS // 2)

    results = at_once(calls)

    fills, sweeps = results[: THREADS // 2], results[THREADS // 2 :]
    assert not [r for r in sweeps if isinstance(r, BaseException)]
    statuses = dict(Position.objects.values_list("pk", "status"))
    for position, outcome in zip(positions, fills, strict=True):
        if isinstance(outcome, Position):
            assert statuses[position.pk] == "open"  # filled first: nothing left to expire
        else:
            assert isinstance(outcome, IllegalTransition)
            assert statuses[position.pk] == "expired"
    assert sum(sweeps) == Counter(statuses.values())["expired"]
    assert Fill.objects.count() == Counter(statuses.values())["open"]
    assert exposures(account)[:2] == (Decimal(5000) * Fill.objects.count(), Fill.objects.count())
    assert counter_drift() == []
