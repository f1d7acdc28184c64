"""The figures alert rules watch, read from the real desk: accounts funded, checked, halted and silent through the
risk services and the API, figures exact, a fixed number of queries, and rules firing on them end to end."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import TradingInstance
from monitoring.alerts.figures import alert_figures
from monitoring.alerts.models import AlertEvent
from monitoring.alerts.services.evaluation import alerts_evaluate
from monitoring.alerts.services.rules import alert_rule_create
from risk.services.activation import trading_instance_activation_set
from risk.services.equity import equity_report
from risk.services.trading_state import trading_halt
from tests.risk.conftest import bot_client, funded_account

pytestmark = pytest.mark.django_db


def check(account, quantity: str) -> str:
    body = {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": quantity, "price": "60000"}
    response = bot_client(account).post("/api/risk/check-position", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["decision"]


@pytest.fixture
def desk(relaxed_rate_limits):
    now = timezone.now()
    busy = funded_account("1000000")  # first: the portfolio's loss below stays far from its emergency threshold
    falling = funded_account("100000")
    equity_report(instance_id=falling.pk, equity=Decimal("88000"), cash_balance=None, now=now)
    assert [check(busy, "0.5"), check(busy, "10"), check(busy, "0.1")] == ["pending_approval", "rejected", "approved"]
    silent = funded_account("50000")
    TradingInstance.objects.filter(pk=silent.pk).update(last_heartbeat=now - timedelta(seconds=600))
    trading_halt(instance_id=silent.pk, mode="halted", reason="test", actor=None, now=now)
    gone = funded_account("70000")
    trading_instance_activation_set(instance_id=gone.pk, active=False, actor=None, reason="test")
    return {"falling": falling.pk, "busy": busy.pk, "silent": silent.pk, "gone": gone.pk, "now": now}


def test_every_figure_of_every_active_account(desk):
    now = desk["now"] + timedelta(seconds=5)
    figures = alert_figures(now=now)
    accounts = figures.accounts
    falling, busy, silent = desk["falling"], desk["busy"], desk["silent"]

    assert accounts["equity"] == {falling: Decimal("88000"), busy: Decimal("1000000"), silent: Decimal("50000")}
    assert accounts["drawdown_pct"][falling] == Decimal("0.12")
    assert accounts["daily_loss_pct"][falling] == Decimal("0.12")
    assert accounts["exposure_pct"][busy] == Decimal("0.036")  # 30,000 pending + 6,000 approved
    assert accounts["heartbeat_age_s"][silent] == Decimal(605)
    reported = TradingInstance.objects.get(pk=falling).last_heartbeat  # the report's own clock, read under its lock
    assert accounts["heartbeat_age_s"][falling] == Decimal(int((now - reported).total_seconds()))
    assert accounts["trading_state"] == {falling: 0, busy: 0, silent: 2}
    assert accounts["pending_approvals"] == {falling: 0, busy: 1, silent: 0}
    assert accounts["open_positions"] == {falling: 0, busy: 0, silent: 0}
    assert accounts["rejection_rate"] == {busy: Decimal("0.33333333")}  # only accounts that were checked
    assert accounts["critical_events"] == {falling: 0, busy: 0, silent: 1}  # the halt


def test_the_portfolio_figures(desk):
    portfolio = alert_figures(now=desk["now"]).portfolio

    assert portfolio["equity"] == Decimal("1138000")
    assert portfolio["drawdown_pct"] == Decimal("0.01043478")  # 12,000 / 1,150,000
    assert portfolio["pending_approvals"] == 1
    assert portfolio["rejection_rate"] == Decimal("0.33333333")
    assert portfolio["critical_events"] == 1
    assert portfolio["trading_state"] == 0
    assert "heartbeat_age_s" not in portfolio


def test_the_query_count_does_not_grow_with_accounts(django_assert_num_queries, relaxed_rate_limits):
    for size in (2, 30):
        for _ in range(size):
            check(funded_account("1000000"), "0.5")
        with django_assert_num_queries(6):
            alert_figures(now=timezone.now())


def test_a_silent_bot_fires_the_heartbeat_rule_from_the_desk_itself(desk):
    alert_rule_create(
        actor=None,
        name="silent bot",
        scope="every_account",
        figure="heartbeat_age_s",
        comparator="gt",
        threshold=Decimal(300),
    )
    now = desk["now"] + timedelta(seconds=5)

    summary = alerts_evaluate(figures=alert_figures(now=now), now=now)

    assert summary.firing == 1
    assert list(AlertEvent.objects.values_list("instance_id", "value")) == [(desk["silent"], Decimal(605))]


def test_the_kill_switch_is_one_rule(desk):
    alert_rule_create(
        actor=None,
        name="kill switch",
        scope="portfolio",
        figure="trading_state",
        comparator="gte",
        threshold=Decimal(1),
        severity="critical",
    )
    now = desk["now"]
    assert alerts_evaluate(figures=alert_figures(now=now), now=now).firing == 0

    trading_halt(instance_id=None, mode="reducing", reason="desk", actor=None, now=now)

    assert alerts_evaluate(figures=alert_figures(now=now), now=now + timedelta(seconds=5)).firing == 1
