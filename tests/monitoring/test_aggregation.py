"""The desk aggregation (monitoring.services.aggregation_run): exact figures at the cached marks, a fixed number of
queries at any size, the snapshot cached with its time, one history row a minute, a `metrics` event, one run at a
time, and counter drift reported."""

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from monitoring.models import AccountMetricPoint, MetricSnapshot
from monitoring.services import AGGREGATION_LOCK, aggregation_run, history_prune, metric_snapshot_record
from monitoring.snapshots import snapshot_get
from nija.event_store import stream_key
from nija.events import flush_published
from risk.engine import PositionView, Side, TradeStats, portfolio_metrics
from risk.models import Portfolio
from tests.monitoring.desk import D, desk_of, marks, small_desk
from tests.risk.conftest import bot_client, funded_account
from tests.risk.services.scenario import fill, reserve
from trading.models import EXPOSURE_STATUSES, Fill, Position


@pytest.fixture(autouse=True)
def _clean_redis(redis_client) -> None:
    """No mark or snapshot from another test."""


def by_symbol(snapshot: dict) -> dict[str, tuple[str, str, str]]:
    return {
        row["symbol"]: (row["exposure"], row["market_exposure"], row["unrealized_pnl"])
        for row in snapshot["concentration"]["by_symbol"]
    }


@pytest.mark.django_db
def test_the_snapshot_values_the_desk_at_the_cached_marks():
    small_desk()
    marks(BTC="60000", ETH="2500")  # SOL has no mark: its reservation stays at its booked value

    snapshot = aggregation_run(now=timezone.now()).snapshot

    portfolio = snapshot["portfolio"]
    # Booked: 15,000 + 6,000 + 1,000 (A) + 0.05 x 52,000 = 2,600 (B, half closed).
    # At the marks: 0.3 x 60,000 = 18,000; the short 6,000 + 2 x (2,500 - 3,000) = 5,000; 1,000; 0.05 x 60,000.
    assert (portfolio["equity"], portfolio["exposure"]) == ("150000.00000000", "24600.00000000")
    assert (portfolio["market_exposure"], portfolio["unrealized_pnl"]) == ("27000.00000000", "4400.00000000")
    assert portfolio["exposure_pct"] == "0.18000000"
    assert portfolio["positions"] == {"total": 4, "pending_approval": 0, "approved": 1, "open": 3}
    assert portfolio["trades"] == {
        "closed": 1,
        "wins": 1,
        "win_rate": "1.00000000",
        "gross_profit": "150.00000000",
        "gross_loss": "0.00000000",
        "profit_factor": None,  # no loss: undefined, never infinite
    }
    assert by_symbol(snapshot) == {
        "BTC-USD": ("17600.00000000", "21000.00000000", "3400.00000000"),
        "ETH-USD": ("6000.00000000", "5000.00000000", "1000.00000000"),
        "SOL-USD": ("1000.00000000", "1000.00000000", "0.00000000"),
    }
    (majors,) = snapshot["concentration"]["by_group"]
    assert (majors["group"], majors["exposure"], majors["market_exposure"]) == (
        "majors",
        "23600.00000000",
        "26000.00000000",
    )
    assert majors["pct"] == "0.17333333"  # 26,000 / 150,000
    assert snapshot["counters"] == {"consistent": True, "drift": []}


@pytest.mark.django_db
def test_the_snapshot_agrees_with_the_engine_metrics_over_the_same_positions():
    small_desk()
    marks(BTC="61234.5", ETH="2999.99", SOL="123.45678901")

    portfolio = aggregation_run(now=timezone.now()).snapshot["portfolio"]

    views = [
        PositionView(p.symbol, Side(p.side), p.filled_quantity - p.closed_quantity, p.entry_price, p.notional)
        for p in Position.objects.filter(status__in=EXPOSURE_STATUSES)
    ]
    prices = {"BTC-USD": D("61234.5"), "ETH-USD": D("2999.99"), "SOL-USD": D("123.45678901")}
    engine = portfolio_metrics(
        equity=D(150000),
        peak_equity=D(150000),
        day_start_equity=D(150000),
        positions=views,
        prices=prices,
        stats=TradeStats(),
    )
    assert D(portfolio["market_exposure"]) == engine.market_exposure
    assert D(portfolio["unrealized_pnl"]) == engine.unrealized_pnl
    assert D(portfolio["exposure"]) == engine.exposure


@pytest.mark.django_db
def test_mark_to_market_uses_the_exact_cost_of_what_is_open_not_the_rounded_average_entry():
    """Fills of 1 @ 100 and 2 @ 200 cost 500; their average entry 166.66666667 x 3 would be 500.00000001."""
    account = funded_account("100000")
    position = reserve(account, symbol="SOL-USD", quantity="3", price="200")
    fill(position, "sol-1", "1", "100")
    position = fill(position, "sol-2", "2", "200")
    marks(SOL="200")
    cost = sum(row.quantity * row.price for row in Fill.objects.filter(position=position))  # from the fills alone
    assert (position.entry_price * 3, cost) == (D("500.00000001"), D("500"))

    snapshot = aggregation_run(now=timezone.now()).snapshot
    detail = bot_client(account).get(f"/api/accounts/{account.pk}").json()

    assert (snapshot["portfolio"]["market_exposure"], snapshot["portfolio"]["unrealized_pnl"]) == (
        "600.00000000",
        f"{3 * D(200) - cost:.8f}",
    )
    assert by_symbol(snapshot)["SOL-USD"][1:] == ("600.00000000", "100.00000000")
    assert (detail["market_exposure"], detail["unrealized_pnl"]) == ("600.00000000", "100.00000000")


@pytest.mark.django_db
@pytest.mark.parametrize("accounts", [1, 8])
def test_a_run_costs_the_same_number_of_queries_whatever_the_size_of_the_desk(accounts, django_assert_num_queries):
    desk_of(accounts)
    marks(BTC="60000")
    now = timezone.now().replace(second=1)

    # 20 + 1 without an alert rule (whether any is enabled); the first run of a minute also writes its history.
    with django_assert_num_queries(23):
        aggregation_run(now=now)
    with django_assert_num_queries(21):
        aggregation_run(now=now + timedelta(seconds=5))

    assert AccountMetricPoint.objects.count() == accounts


@pytest.mark.django_db
def test_the_snapshot_is_cached_with_its_time_and_a_metrics_event_is_published(redis_client):
    small_desk()
    now = timezone.now()

    aggregation_run(now=now)

    cached = snapshot_get()
    assert cached["computed_at"] == now.isoformat()
    assert cached["portfolio"]["equity"] == "150000.00000000"
    assert flush_published()
    stored = [fields for _, fields in redis_client.xrange(stream_key("dashboard"))]
    metrics = [json.loads(fields[b"d"]) for fields in stored if fields[b"t"] == b"metrics"]
    assert len(metrics) == 1
    assert metrics[0]["computed_at"] == now.isoformat()
    assert metrics[0]["portfolio"] == cached["portfolio"]
    assert metrics[0]["accounts"]["active"] == 2


@pytest.mark.django_db
def test_history_is_one_row_a_minute_with_each_active_accounts_point():
    a, b = small_desk()
    minute = timezone.now().replace(second=0, microsecond=0)

    first = aggregation_run(now=minute + timedelta(seconds=3))
    again = aggregation_run(now=minute + timedelta(seconds=40))
    later = aggregation_run(now=minute + timedelta(seconds=61))

    assert (first.history_recorded, again.history_recorded, later.history_recorded) == (True, False, True)
    rows = list(MetricSnapshot.objects.values_list("minute", "equity", "exposure", "account_count"))
    assert rows == [
        (minute, D("150000"), D("24600"), 2),
        (minute + timedelta(minutes=1), D("150000"), D("24600"), 2),
    ]
    points = AccountMetricPoint.objects.filter(snapshot__minute=minute)
    a.refresh_from_db()
    b.refresh_from_db()
    assert sorted(points.values_list("instance_id", "equity", "exposure")) == [
        (a.pk, D("100000"), D("22000")),
        (b.pk, D("50000"), D("2600")),
    ]


@pytest.mark.django_db
def test_pruning_deletes_account_points_and_snapshots_past_their_retention(settings):
    settings.MONITORING_ACCOUNT_HISTORY_RETENTION_DAYS = 2
    settings.MONITORING_HISTORY_RETENTION_DAYS = 5
    desk_of(2, positions_each=1)
    now = timezone.now()
    snapshot = aggregation_run(now=now).snapshot
    for days in (1, 3, 6):
        metric_snapshot_record(snapshot=snapshot, now=now - timedelta(days=days))

    assert history_prune(now=now) == (1, 4)  # the 6-day row (2 points with it), the 3-day row's 2 points

    kept = {(now - row.minute).days: row.account_points.count() for row in MetricSnapshot.objects.all()}
    assert kept == {0: 2, 1: 2, 3: 0}
    assert history_prune(now=now) == (0, 0)


@pytest.mark.django_db
def test_a_counter_that_disagrees_with_its_positions_is_reported():
    small_desk()
    Portfolio.objects.update(exposure=F("exposure") + 1)

    counters = aggregation_run(now=timezone.now()).snapshot["counters"]

    assert counters == {
        "consistent": False,
        "drift": [
            {
                "counter": "portfolio",
                "exposure": "24601.00000000",
                "positions_exposure": "24600.00000000",
                "count": 4,
                "positions_count": 4,
            }
        ],
    }


@pytest.mark.django_db(transaction=True)
def test_a_second_run_while_one_is_in_progress_does_nothing():
    small_desk()
    results: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            results[name] = aggregation_run(now=timezone.now())
        finally:
            connection.close()

    with transaction.atomic():
        # Hold the portfolio table: the first run takes the run lock, then waits on its first portfolio read.
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE risk_portfolio IN ACCESS EXCLUSIVE MODE")
        first = threading.Thread(target=run, args=("first",))
        first.start()
        _wait_for_the_run_lock()
        second = threading.Thread(target=run, args=("second",))
        second.start()
        second.join(timeout=10)
        assert results["second"] is None
        assert MetricSnapshot.objects.count() == 0
    first.join(timeout=30)

    assert results["first"] is not None
    assert results["first"].history_recorded is True
    assert MetricSnapshot.objects.count() == 1


def _wait_for_the_run_lock() -> None:
    """Until the aggregation's own advisory lock is granted in this database (other advisory locks - the suite's
    session guard, other databases' runs - are not it: counting any of them let the second run start first)."""
    for _ in range(200):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND ((classid::bigint << 32) | objid::bigint) = %s",
                [AGGREGATION_LOCK],
            )
            if cursor.fetchone()[0]:
                return
        threading.Event().wait(0.05)
    raise AssertionError("the first run never took the run lock")


def test_decimal_strings_are_on_the_eight_decimal_grid():
    from monitoring.desk import amount

    assert (amount(Decimal("1")), amount(Decimal("0.123456785")), amount(None)) == ("1.00000000", "0.12345678", None)
