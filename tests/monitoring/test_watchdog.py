"""The heartbeat watchdog (monitoring.watchdog) against real PostgreSQL and Redis: a bot silent past its
heartbeat_timeout raises one warning event per silence, shows as stale and loses its unfilled reservations through
the release every other path uses (counters and books exact); its next authenticated request restores it at once;
a request writes nothing to PostgreSQL and Redis at most once a second; a run costs the same number of queries
whatever the number of accounts; a release racing fills leaves the books exact."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.liveness import heartbeat_guard_clear, heartbeat_record, seen_key
from accounts.models import TradingInstance
from monitoring.tasks import heartbeat_watchdog
from monitoring.watchdog import EVENT_TYPE, heartbeat_watch
from risk.models import RiskEvent, RiskLimits
from tests.accounts.factories import TradingInstanceFactory
from tests.risk.conftest import (
    books_drift,
    bot_client,
    counter_drift,
    funded_account,
    operator_client,
)
from tests.risk.services.scenario import exposures, fill, reserve
from tests.risk.services.test_lifecycle_concurrency import at_once
from trading.models import Position

pytestmark = pytest.mark.django_db

TIMEOUT = timedelta(seconds=120)


@pytest.fixture(autouse=True)
def clean_liveness(redis_client):
    """Redis flushed (redis_client) and this process's per-second guard forgotten, before and after."""
    heartbeat_guard_clear()
    yield
    heartbeat_guard_clear()


def heard_at(account: TradingInstance, moment) -> None:
    """The account's bot was heard from at `moment` (as the authentication records it)."""
    heartbeat_record(account.pk, now_second=int(moment.timestamp()))


def heartbeat_events(account: TradingInstance) -> list[RiskEvent]:
    return list(RiskEvent.objects.filter(type=EVENT_TYPE, instance=account).order_by("pk"))


def account_view(client, account: TradingInstance) -> dict:
    response = client.get(f"/api/accounts/{account.pk}")
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_silent_bot_is_stale_once_and_loses_its_unfilled_reservations_a_live_one_keeps_them():
    start = timezone.now()
    silent, live = funded_account("1000000"), funded_account("1000000")
    approved = reserve(silent, quantity="0.1", now=start)  # 5,000: approved at once
    pending = reserve(silent, quantity="1", now=start)  # 50,000: past the approval threshold
    partial = reserve(silent, quantity="0.3", now=start)
    fill(partial, "ex-1", "0.1", "50000", now=start)
    kept = reserve(live, quantity="0.1", now=start)
    assert (approved.status, pending.status, partial.status) == ("approved", "pending_approval", "approved")
    later = start + TIMEOUT + timedelta(seconds=5)
    heard_at(live, later)

    result = heartbeat_watch(now=later)

    assert result.lost == (silent.pk,)
    assert set(result.released_position_ids) == {approved.pk, pending.pk, partial.pk}
    events = heartbeat_events(silent)
    silent_for = int((later - TradingInstance.objects.get(pk=silent.pk).last_heartbeat).total_seconds())
    assert [(event.severity, event.details["silent_seconds"]) for event in events] == [("warning", silent_for)]
    assert 120 < silent_for <= 125
    assert heartbeat_events(live) == []
    statuses = dict(Position.objects.values_list("pk", "status"))
    assert (statuses[approved.pk], statuses[pending.pk], statuses[kept.pk]) == ("cancelled", "cancelled", "approved")
    partial.refresh_from_db()
    assert (partial.status, partial.notional) == ("open", Decimal("5000"))  # the filled 0.1 stays, its rest is gone
    assert partial.unfilled_released_at is not None
    assert exposures(silent)[:2] == (Decimal("5000"), 1)
    assert counter_drift() == []
    assert books_drift() == []

    again = heartbeat_watch(now=later + timedelta(seconds=30))  # still silent: latched, nothing more

    assert (again.lost, again.released_position_ids) == ((), ())
    assert len(heartbeat_events(silent)) == 1


def test_the_account_shows_stale_until_its_next_request_restores_it_and_a_new_silence_raises_again():
    start = timezone.now()
    account = funded_account("100000")
    operator, _ = operator_client("viewer")
    heartbeat_watch(now=start + TIMEOUT + timedelta(seconds=1))

    shown = account_view(operator, account)
    assert (shown["stale"], shown["heartbeat_stale"], shown["equity_stale"]) == (True, True, False)
    assert shown["heartbeat_lost_at"] is not None
    listed = operator.get("/api/accounts", {"stale": "true"}).json()["results"]
    assert [row["id"] for row in listed] == [account.pk]

    bot = bot_client(account)
    own = account_view(bot, account)  # the request that ends the silence is answered as restored

    assert (own["stale"], own["heartbeat_stale"], own["heartbeat_lost_at"]) == (False, False, None)
    assert own["heartbeat_age_s"] in (0, 1)
    account.refresh_from_db()
    assert account.heartbeat_lost_at is None
    assert operator.get("/api/accounts", {"stale": "true"}).json()["results"] == []

    heartbeat_watch(now=timezone.now() + TIMEOUT + timedelta(seconds=2))  # silent again: a second episode

    assert len(heartbeat_events(account)) == 2


def test_a_bot_back_before_the_next_run_is_restored_by_it_when_its_request_found_no_mark(redis_client):
    """The request path clears the mark through Redis's lost set; without it (lost with Redis's data, say), the
    next run sees the bot heard from within its timeout and restores it."""
    start = timezone.now()
    account = funded_account("100000")
    heartbeat_watch(now=start + TIMEOUT + timedelta(seconds=1))
    redis_client.delete(seen_key().replace(":seen", ":lost"))
    back = start + TIMEOUT + timedelta(seconds=20)
    heard_at(account, back)

    result = heartbeat_watch(now=back + timedelta(seconds=1))

    assert result.restored == (account.pk,)
    account.refresh_from_db()
    assert account.heartbeat_lost_at is None
    assert account.last_heartbeat == back.replace(microsecond=0)  # the Redis time persisted


def test_an_override_of_the_timeout_counts_for_its_account_only():
    start = timezone.now()
    patient, default = funded_account("100000"), funded_account("100000")
    RiskLimits.objects.create(instance=patient, heartbeat_timeout_seconds=600)

    result = heartbeat_watch(now=start + TIMEOUT + timedelta(seconds=5))

    assert result.lost == (default.pk,)


def test_a_bot_never_heard_from_and_an_inactive_account_are_not_judged():
    start = timezone.now()
    TradingInstanceFactory(last_heartbeat=None)
    inactive = funded_account("100000")
    TradingInstance.objects.filter(pk=inactive.pk).update(is_active=False)

    assert heartbeat_watch(now=start + TIMEOUT * 10).lost == ()


def test_the_task_runs_the_watchdog():
    account = funded_account("100000")
    TradingInstance.objects.filter(pk=account.pk).update(last_heartbeat=timezone.now() - TIMEOUT * 2)

    assert heartbeat_watchdog() == (1, 0, 0)
    assert len(heartbeat_events(account)) == 1


def test_an_authenticated_request_writes_nothing_to_postgresql_and_redis_once_a_second(redis_client):
    account = funded_account("100000")
    bot = bot_client(account)
    for _ in range(2):  # warm: the token resolved and cached, its last use recorded
        account_view(bot, account)
    heartbeat_guard_clear()

    with CaptureQueriesContext(connection) as first:
        account_view(bot, account)
    with CaptureQueriesContext(connection) as second:
        account_view(bot, account)

    writes = [q["sql"] for q in [*first, *second] if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert len(first) == len(second)
    assert redis_client.zscore(seen_key(), account.pk) >= int(timezone.now().timestamp()) - 1

    redis_client.config_resetstat()
    second_now = int(timezone.now().timestamp()) + 1000  # one second, many requests
    for _ in range(5):
        heartbeat_record(account.pk, now_second=second_now)
    heartbeat_record(account.pk, now_second=second_now + 1)

    assert redis_client.info("commandstats")["cmdstat_srem"]["calls"] == 2  # one script call a second
    assert redis_client.zscore(seen_key(), account.pk) == second_now + 1


# One run: the watched accounts, the portfolio lock (with its timeouts, in a savepoint here), the persisted times,
# the marks, the events (one INSERT), the ids of reservations to release. Restoring: the restore instead of the
# marks and events.
MARKING_QUERIES = 9
RESTORING_QUERIES = 8


@pytest.mark.parametrize("size", [4, 40])
def test_a_run_costs_the_same_queries_at_any_number_of_accounts(django_assert_num_queries, size):
    """`size` silent bots marked (an event each) while `size` live bots' times are persisted, then the silent ones
    heard from again and restored: the same number of queries at 4 and at 40 accounts of each kind."""
    old = timezone.now() - TIMEOUT * 3
    silent = [TradingInstanceFactory(last_heartbeat=old) for _ in range(size)]
    live = [TradingInstanceFactory(last_heartbeat=old) for _ in range(size)]
    now = timezone.now()
    for account in live:
        heard_at(account, now)

    with django_assert_num_queries(MARKING_QUERIES):
        marked = heartbeat_watch(now=now)
    for account in silent:
        heard_at(account, now + timedelta(seconds=1))
    with django_assert_num_queries(RESTORING_QUERIES):
        restored = heartbeat_watch(now=now + timedelta(seconds=2))

    assert marked.lost == restored.restored == tuple(account.pk for account in silent)
    assert RiskEvent.objects.filter(type=EVENT_TYPE).count() == size
    persisted = set(
        TradingInstance.objects.filter(pk__in=[a.pk for a in live]).values_list("last_heartbeat", flat=True)
    )
    assert persisted == {now.replace(microsecond=0)}


@pytest.mark.django_db(transaction=True)
def test_releases_racing_fills_on_the_same_positions_leave_the_books_exact(settings):
    """Watchdog runs and the bot's fills released together (threads, each its own connection): whichever takes a
    position's locks first, every fill is recorded, every unfilled rest ends released, a fill that came after its
    release says so, and every counter and every position's books equal their fills."""
    start = timezone.now()
    account = funded_account("1000000")
    positions = [reserve(account, quantity="0.1", now=start) for _ in range(6)]
    settings.MONITORING_HEARTBEAT_RELEASE_BATCH = 0  # marked silent, nothing released yet
    later = start + TIMEOUT + timedelta(seconds=1)
    assert heartbeat_watch(now=later).lost == (account.pk,)
    settings.MONITORING_HEARTBEAT_RELEASE_BATCH = 500
    calls = [lambda p=p: fill(p, f"ex-{p.pk}", "0.05", "50000") for p in positions]
    calls += [lambda: heartbeat_watch(now=later)] * 3

    results = at_once(calls)

    assert [type(result).__name__ for result in results] == ["Position"] * 6 + ["WatchResult"] * 3
    released = [pk for result in results[6:] for pk in result.released_position_ids]
    assert sorted(released) == sorted(p.pk for p in positions)  # each released once, by one run
    warned = set(RiskEvent.objects.filter(type="fill_after_release").values_list("details__position_id", flat=True))
    for position in Position.objects.filter(pk__in=[p.pk for p in positions]):
        assert (position.status, position.filled_quantity) == ("open", Decimal("0.05"))
        assert position.unfilled_released_at is not None
        assert position.notional == Decimal("2500")
    assert warned <= {p.pk for p in positions}
    assert exposures(account)[:2] == (Decimal("15000"), 6)
    assert counter_drift() == []
    assert books_drift() == []
