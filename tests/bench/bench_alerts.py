"""Alert evaluation at desk scale: 1,000 rules (100 every-account, 900 portfolio or single-account) against 10,000
accounts, as the aggregation run would call it, with the aggregation's budget (1 s) as the baseline.

Run: `make bench`, or `.venv/bin/pytest tests/bench/bench_alerts.py -s -o addopts=""`.
Three runs are timed, each through the whole service (load, engine, writes; the query count is printed):
- quiet: nothing breached (the every-account rules compare 1,000,000 values and store nothing);
- storm: 1 % of the accounts breach every every-account rule at once (10,000 states and firing events, 100
  notifications);
- steady: the same breaches a run later (10,000 firing states loaded, nothing written).
Query counts include BEGIN and COMMIT. The engine alone is timed on the quiet figures too, and so is reading every
figure of the 10,000 accounts from PostgreSQL (`alert_figures`, no positions). No assertion on time: the figures
are printed.
"""

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import TradingInstance
from monitoring.alerts import engine
from monitoring.alerts.figures import alert_figures
from monitoring.alerts.models import AlertEvent, AlertRule, AlertState
from monitoring.alerts.selectors import evaluation_inputs
from monitoring.alerts.services.evaluation import alerts_evaluate
from tests.accounts.factories import TradingInstanceFactory

ACCOUNTS = 10_000
EVERY_ACCOUNT_RULES = 100
OTHER_RULES = 900
BUDGET_SECONDS = 1.0
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
# Quiet values, and how far past each every-account rule's threshold a breach goes.
QUIET = {
    engine.Figure.EQUITY: Decimal("100000"),
    engine.Figure.DRAWDOWN_PCT: Decimal("0.02"),
    engine.Figure.DAILY_LOSS_PCT: Decimal("0.01"),
    engine.Figure.EXPOSURE_PCT: Decimal("0.40"),
    engine.Figure.HEARTBEAT_AGE_S: Decimal("3"),
    engine.Figure.REJECTION_RATE: Decimal("0.05"),
    engine.Figure.PENDING_APPROVALS: Decimal("0"),
    engine.Figure.OPEN_POSITIONS: Decimal("4"),
    engine.Figure.TRADING_STATE: Decimal("0"),
    engine.Figure.CRITICAL_EVENTS: Decimal("0"),
}
THRESHOLDS = {  # (comparator, threshold): quiet values do not breach, BREACH values do
    engine.Figure.EQUITY: ("lt", Decimal("1000")),
    engine.Figure.DRAWDOWN_PCT: ("gte", Decimal("0.10")),
    engine.Figure.DAILY_LOSS_PCT: ("gte", Decimal("0.05")),
    engine.Figure.EXPOSURE_PCT: ("gt", Decimal("0.90")),
    engine.Figure.HEARTBEAT_AGE_S: ("gt", Decimal("120")),
    engine.Figure.REJECTION_RATE: ("gt", Decimal("0.5")),
    engine.Figure.PENDING_APPROVALS: ("gte", Decimal("5")),
    engine.Figure.OPEN_POSITIONS: ("gte", Decimal("40")),
    engine.Figure.TRADING_STATE: ("gte", Decimal("1")),
    engine.Figure.CRITICAL_EVENTS: ("gt", Decimal("0")),
}
BREACH = {
    engine.Figure.EQUITY: Decimal("10"),
    engine.Figure.DRAWDOWN_PCT: Decimal("0.3"),
    engine.Figure.DAILY_LOSS_PCT: Decimal("0.2"),
    engine.Figure.EXPOSURE_PCT: Decimal("2"),
    engine.Figure.HEARTBEAT_AGE_S: Decimal("600"),
    engine.Figure.REJECTION_RATE: Decimal("0.9"),
    engine.Figure.PENDING_APPROVALS: Decimal("9"),
    engine.Figure.OPEN_POSITIONS: Decimal("45"),
    engine.Figure.TRADING_STATE: Decimal("2"),
    engine.Figure.CRITICAL_EVENTS: Decimal("3"),
}


def _accounts() -> list[int]:
    owner = TradingInstanceFactory()
    TradingInstance.objects.bulk_create(
        (TradingInstance(user=owner.user, name=f"bench-{index}") for index in range(ACCOUNTS - 1)), batch_size=2000
    )
    return list(TradingInstance.objects.order_by("pk").values_list("pk", flat=True))


def _rules(account_ids: list[int]) -> None:
    figures = list(engine.Figure)
    rng = random.Random(11)
    rows = []
    for index in range(EVERY_ACCOUNT_RULES + OTHER_RULES):
        figure = figures[index % len(figures)]
        comparator, threshold = THRESHOLDS[figure]
        if index < EVERY_ACCOUNT_RULES:
            scope, instance_id = engine.Scope.EVERY_ACCOUNT, None
        elif index % 3 == 0 and engine.FIGURES[figure].portfolio:
            scope, instance_id = engine.Scope.PORTFOLIO, None
        else:
            scope, instance_id = engine.Scope.ACCOUNT, rng.choice(account_ids)
        rows.append(
            AlertRule(
                name=f"bench {index}",
                scope=scope,
                instance_id=instance_id,
                figure=figure,
                comparator=comparator,
                threshold=threshold,
                cooldown_seconds=600,
            )
        )
    AlertRule.objects.bulk_create(rows, batch_size=1000)


def _figures(account_ids: list[int], breached: set[int]) -> engine.Figures:
    return engine.Figures(
        portfolio=dict(QUIET),
        accounts={
            figure: {pk: BREACH[figure] if pk in breached else value for pk in account_ids}
            for figure, value in QUIET.items()
        },
    )


def _timed_run(label: str, figures: engine.Figures, now: datetime) -> None:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        summary = alerts_evaluate(figures=figures, now=now)
        elapsed = time.perf_counter() - started
    print(
        f"  {label:<7} {elapsed * 1000:8.1f} ms  {elapsed / BUDGET_SECONDS:5.2f} x budget  "
        f"{len(queries):2d} queries  states +{summary.states_created}/~{summary.states_updated}/-"
        f"{summary.states_deleted}  firing {summary.firing}  deliveries {summary.deliveries}"
    )


@pytest.mark.django_db(transaction=True)
def test_alert_evaluation_at_desk_scale():
    account_ids = _accounts()
    _rules(account_ids)
    quiet = _figures(account_ids, set())
    breached = set(random.Random(5).sample(account_ids, ACCOUNTS // 100))
    storm = _figures(account_ids, breached)

    inputs = evaluation_inputs()
    started = time.perf_counter()
    result = engine.evaluate(inputs.rules, inputs.states, quiet, T0)
    engine_only = time.perf_counter() - started
    assert result.events == []

    print(
        f"\nalerts: {EVERY_ACCOUNT_RULES} every-account + {OTHER_RULES} other rules x {ACCOUNTS} accounts "
        f"(budget {BUDGET_SECONDS:.0f} s, the aggregation run's)"
    )
    print(f"  engine  {engine_only * 1000:8.1f} ms  {engine_only / BUDGET_SECONDS:5.2f} x budget  (quiet, no I/O)")
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        alert_figures(now=T0)
        elapsed = time.perf_counter() - started
    ratio = elapsed / BUDGET_SECONDS
    print(f"  figures {elapsed * 1000:8.1f} ms  {ratio:5.2f} x budget  {len(queries):2d} queries (read)")
    _timed_run("quiet", quiet, T0)
    _timed_run("storm", storm, T0 + timedelta(seconds=5))
    _timed_run("steady", storm, T0 + timedelta(seconds=10))
    print(f"  stored: {AlertState.objects.count()} states, {AlertEvent.objects.count()} events")
