"""The emergency thresholds evaluated desk-wide without any equity report (risk.services.emergency), as the
monitoring aggregation runs them: a breach no report revealed trips its HALT once, a quiet desk takes no lock."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from risk.models import BreachLatch, RiskEvent, RiskLimits, TradingState
from risk.services.emergency import emergencies_evaluate_all
from risk.services.equity import equity_report
from risk.services.trading_state import trading_resume
from tests.accounts.factories import OperatorFactory
from tests.risk.conftest import counter_drift, funded_account
from tests.risk.services.scenario import reserve
from trading.models import Position

D = Decimal


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark from another test."""


def report(account, equity: str) -> None:
    equity_report(instance_id=account.pk, equity=D(equity), cash_balance=None, now=timezone.now())


def state_of(account=None) -> str:
    row = TradingState.objects.filter(instance=account).first() if account else TradingState.objects.get(instance=None)
    return row.state if row else "active"


def critical_events(kind: str) -> list[int | None]:
    return list(
        RiskEvent.objects.filter(type=f"emergency_{kind}", severity="critical").values_list("instance_id", flat=True)
    )


@pytest.mark.django_db
def test_a_tightened_drawdown_threshold_trips_the_halt_without_any_report():
    account, other = funded_account("100000"), funded_account("400000")
    held = reserve(account, quantity="0.1", price="50000")
    report(account, "80000")  # a 20 % drawdown, under the 25 % threshold; the portfolio lost 4 % (8 %): no trip
    assert (state_of(account), state_of()) == ("active", "active")
    RiskLimits.objects.create(instance=account, emergency_drawdown_pct=D("0.15"))

    sweep = emergencies_evaluate_all(now=timezone.now())

    assert [breach.key for breach in sweep.tripped] == [f"account:{account.pk}:drawdown"]
    assert (state_of(account), state_of(other), state_of()) == ("halted", "active", "active")
    assert critical_events("drawdown") == [account.pk]
    assert sweep.cancelled_position_ids == (held.pk,)
    assert Position.objects.get(pk=held.pk).status == "cancelled"
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_latched_breach_trips_once_and_a_quiet_desk_takes_no_lock():
    account, _ = funded_account("100000"), funded_account("400000")
    report(account, "80000")
    RiskLimits.objects.create(instance=account, emergency_drawdown_pct=D("0.15"))
    emergencies_evaluate_all(now=timezone.now())

    with CaptureQueriesContext(connection) as queries:
        again = emergencies_evaluate_all(now=timezone.now())

    assert again.tripped == ()
    assert again.cleared == frozenset()
    assert critical_events("drawdown") == [account.pk]
    assert len(queries) == 4
    assert not any("FOR UPDATE" in query["sql"] for query in queries.captured_queries)


@pytest.mark.django_db
def test_the_portfolio_daily_loss_threshold_trips_without_any_report():
    first, second = funded_account("100000"), funded_account("100000")
    report(first, "95000")
    report(second, "96000")  # the portfolio lost 9,000 of 200,000 today: 4.5 %, under the 8 % threshold
    RiskLimits.objects.filter(instance__isnull=True).update(emergency_daily_loss_pct=D("0.04"))

    sweep = emergencies_evaluate_all(now=timezone.now())

    assert [breach.key for breach in sweep.tripped] == ["portfolio:daily_loss"]
    assert state_of() == "halted"
    assert critical_events("daily_loss") == [None]


@pytest.mark.django_db
def test_resuming_into_a_breach_that_still_holds_trips_it_again():
    account, _ = funded_account("100000"), funded_account("400000")
    report(account, "70000")  # 30 %: the report itself trips the 25 % threshold
    assert state_of(account) == "halted"
    trading_resume(instance_id=account.pk, reason="back on", actor=OperatorFactory(), now=timezone.now())

    sweep = emergencies_evaluate_all(now=timezone.now())

    assert [breach.key for breach in sweep.tripped] == [f"account:{account.pk}:drawdown"]
    assert state_of(account) == "halted"
    assert critical_events("drawdown") == [account.pk, account.pk]


@pytest.mark.django_db
def test_a_latch_whose_breach_is_gone_is_cleared_and_a_deactivated_accounts_latch_dropped():
    recovered, deactivated, _ = funded_account("100000"), funded_account("100000"), funded_account("1000000")
    report(recovered, "70000")
    report(deactivated, "70000")
    RiskLimits.objects.create(instance=recovered, emergency_drawdown_pct=D("0.50"))  # 30 % no longer reaches it
    type(deactivated).objects.filter(pk=deactivated.pk).update(is_active=False)

    sweep = emergencies_evaluate_all(now=timezone.now())

    assert sweep.tripped == ()
    assert sweep.cleared == {f"account:{recovered.pk}:drawdown", f"account:{deactivated.pk}:drawdown"}
    assert not BreachLatch.objects.exists()
