"""Lifecycle transitions sent at the same instant from separate threads (transactional tests, real PostgreSQL, every
call commits): replays yield one fill or one trade, competing fills never over-fill, and a fill racing the expiry
sweep is recorded whichever wins, both orders forced (one transaction holds the lock both queue on), with every
counter equal to the sum over positions and every position's books equal to its fills and closes."""

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from risk.locks import lock_portfolio
from risk.models import RiskEvent
from risk.services.lifecycle import reservations_expire
from tests.risk.conftest import books_drift, counter_drift, funded_account
from tests.risk.services.scenario import close, exposures, fill, reserve
from tests.risk.threads import rows_locked
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
    assert books_drift() == []


def test_competing_fills_never_fill_more_than_was_reserved():
    account = funded_account("100000")
    position = reserve(account, quantity="0.3")

    results = at_once([lambda n=n: fill(position, f"ex-{n}", "0.05", "50000") for n in range(THREADS)])

    assert kinds(results) == Counter({"Position": 6, "QuantityExceeded": THREADS - 6})
    position.refresh_from_db()
    assert (position.filled_quantity, position.notional) == (Decimal("0.3"), Decimal("15000"))
    assert Fill.objects.count() == 6
    assert counter_drift() == []
    assert books_drift() == []


def test_the_same_close_sent_by_many_threads_at_once_writes_one_trade():
    account = funded_account("100000")
    position = fill(reserve(account, quantity="0.3"), "ex-1", "0.3", "50000")

    results = at_once([lambda: close(position, "c-1", "51000", quantity="0.1")] * THREADS)

    assert kinds(results) == Counter({"Trade": THREADS})
    assert {trade.pk for trade in results} == {Trade.objects.get().pk}
    position.refresh_from_db()
    assert (position.closed_quantity, position.realized_pnl) == (Decimal("0.1"), Decimal("100"))
    assert counter_drift() == []
    assert books_drift() == []


def test_a_fill_racing_the_expiry_sweep_ends_in_exactly_one_outcome():
    """Released together: whichever wins, every fill is recorded; a fill that lost to the sweep came after the
    release (its rest stays released, a warning says so) and counts again."""
    account = funded_account("1000000")
    start = timezone.now()
    positions = [reserve(account, quantity="0.1", now=start) for _ in range(THREADS // 2)]
    deadline_passed = start + timedelta(seconds=121)
    calls = [lambda p=p: fill(p, f"ex-{p.pk}", "0.1", "50000") for p in positions]
    calls += [lambda: reservations_expire(now=deadline_passed)] * (THREADS // 2)

    results = at_once(calls)

    fills, sweeps = results[: THREADS // 2], results[THREADS // 2 :]
    assert all(isinstance(result, Position) for result in fills)
    assert not [r for r in sweeps if isinstance(r, BaseException)]
    warned = set(RiskEvent.objects.filter(type="fill_after_release").values_list("details__position_id", flat=True))
    for position in Position.objects.filter(pk__in=[p.pk for p in positions]):
        assert position.status == "open"  # filled either way
        assert (position.unfilled_released_at is not None) == (position.pk in warned)  # expired first: released
    assert sum(sweeps) == len(warned)
    assert Fill.objects.count() == len(positions)
    assert exposures(account)[:2] == (Decimal(5000) * len(positions), len(positions))
    assert counter_drift() == []
    assert books_drift() == []


# ---------------------------------------------------------------------------------------------- forced orders
@pytest.fixture
def long_lock_waits(settings) -> None:
    """The forced-order tests hold the portfolio row while two transactions queue on it: no lock timeout."""
    settings.RISK_LOCK_TIMEOUT_MS = 30_000
    settings.RISK_STATEMENT_TIMEOUT_MS = 30_000


def lock_waiters() -> int:
    """How many sessions of this test database are waiting for a lock now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for_lock_waiters(count: int) -> None:
    deadline = time.monotonic() + 30
    while lock_waiters() < count:
        assert time.monotonic() < deadline, f"{count} sessions never queued on the lock"
        time.sleep(0.005)


def in_order(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """Run `first`, then `second`, each in its own thread, queued in that order on the portfolio row while
    another transaction holds it; both proceed when it is released, `first` first (PostgreSQL grants a row lock
    to its waiters in the order they queued). Returns each call's result or the exception it raised."""

    def closing(call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                return exc
            finally:
                connection.close()

        return run

    with ThreadPoolExecutor(max_workers=2) as pool:
        with rows_locked(lock_portfolio):
            first_done = pool.submit(closing(first))
            wait_for_lock_waiters(1)
            second_done = pool.submit(closing(second))
            wait_for_lock_waiters(2)
        return first_done.result(timeout=60), second_done.result(timeout=60)


def test_a_fill_that_takes_the_lock_before_the_expiry_sweep_leaves_the_sweep_nothing_to_expire(long_lock_waits):
    account = funded_account("100000")
    position = reserve(account, quantity="0.1", now=timezone.now() - timedelta(seconds=121))  # past its deadline

    filled, expired = in_order(
        lambda: fill(position, "ex-1", "0.1", "50000"),
        lambda: reservations_expire(now=timezone.now()),
    )

    assert isinstance(filled, Position)
    assert expired == 0  # the sweep had read the position as due, and re-checked it under the lock
    position.refresh_from_db()
    assert (position.status, position.unfilled_released_at, position.notional) == ("open", None, Decimal(5000))
    assert not RiskEvent.objects.filter(type="fill_after_release").exists()
    assert exposures(account)[:2] == (Decimal(5000), 1)
    assert counter_drift() == []
    assert books_drift() == []


def test_a_fill_that_waits_behind_the_expiry_sweep_is_still_recorded_after_the_release(long_lock_waits):
    account = funded_account("100000")
    position = reserve(account, quantity="0.1", now=timezone.now() - timedelta(seconds=121))

    expired, filled = in_order(
        lambda: reservations_expire(now=timezone.now()),
        lambda: fill(position, "ex-1", "0.1", "50000"),
    )

    assert expired == 1
    assert isinstance(filled, Position)
    position.refresh_from_db()
    assert position.status == "open"
    assert position.unfilled_released_at is not None
    assert position.notional == Decimal(5000)
    assert RiskEvent.objects.get(type="fill_after_release").details["position_id"] == position.pk
    assert exposures(account)[:2] == (Decimal(5000), 1)
    assert counter_drift() == []
    assert books_drift() == []
