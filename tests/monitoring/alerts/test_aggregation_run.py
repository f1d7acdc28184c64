"""Alert rules evaluated by the aggregation run itself: a halt its emergency pass trips fires the kill-switch rule
in the same run, a silent bot fires its heartbeat rule and resolves, the step costs a fixed number of queries, and
/metrics counts firings and delivery attempts and shows how many alerts are firing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import TradingInstance
from monitoring.alerts.models import AlertEvent
from monitoring.alerts.services.rules import alert_rule_create
from monitoring.services import aggregation_run
from risk.models import RiskLimits
from risk.services.equity import equity_report
from tests.monitoring.alerts.conftest import webhook_channel
from tests.monitoring.desk import desk_of
from tests.monitoring.test_prometheus import scrape
from tests.risk.conftest import funded_account

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark or snapshot from another test."""


def rule(name: str, **values: object):
    return alert_rule_create(actor=None, name=name, **values)


def kill_switch_rule(**values: object):
    return rule(
        "account halted",
        scope="every_account",
        figure="trading_state",
        comparator="gte",
        threshold=Decimal(1),
        severity="critical",
        **values,
    )


def test_a_halt_the_emergency_pass_trips_fires_its_rule_in_the_same_run():
    account, _ = funded_account("100000"), funded_account("400000")
    equity_report(instance_id=account.pk, equity=Decimal("80000"), cash_balance=None, now=timezone.now())
    RiskLimits.objects.create(instance=account, emergency_drawdown_pct=Decimal("0.15"))
    kill_switch_rule()

    run = aggregation_run(now=timezone.now())

    assert run.snapshot["emergency"]["tripped"] == [f"account:{account.pk}:drawdown"]
    assert run.snapshot["alerts"] == {
        "evaluated": True,
        "error": None,
        "firing": 1,
        "raised": 1,
        "resolved": 0,
        "deliveries": 0,
    }
    assert list(AlertEvent.objects.values_list("rule_name", "instance_id", "state")) == [
        ("account halted", account.pk, "firing")
    ]
    again = aggregation_run(now=timezone.now() + timedelta(seconds=5))
    assert (again.snapshot["alerts"]["raised"], again.snapshot["alerts"]["firing"]) == (0, 1)  # once per episode


def test_a_silent_bot_fires_and_resolves_through_the_runs():
    talking, silent = funded_account("100000"), funded_account("100000")
    rule("silent bot", scope="every_account", figure="heartbeat_age_s", comparator="gt", threshold=Decimal(300))
    now = timezone.now()
    TradingInstance.objects.filter(pk=silent.pk).update(last_heartbeat=now - timedelta(seconds=400))

    assert aggregation_run(now=now).snapshot["alerts"]["raised"] == 1
    equity_report(instance_id=silent.pk, equity=Decimal("100000"), cash_balance=None, now=now)
    assert aggregation_run(now=now + timedelta(seconds=5)).snapshot["alerts"]["resolved"] == 1

    assert list(AlertEvent.objects.order_by("id").values_list("instance_id", "state")) == [
        (silent.pk, "firing"),
        (silent.pk, "resolved"),
    ]
    assert talking.pk not in AlertEvent.objects.values_list("instance_id", flat=True)


@pytest.mark.parametrize("accounts", [1, 8])
def test_the_alert_step_costs_the_same_number_of_queries_whatever_the_size_of_the_desk(
    accounts, django_assert_num_queries
):
    desk_of(accounts)
    kill_switch_rule()
    rule("deep drawdown", scope="every_account", figure="drawdown_pct", comparator="gte", threshold=Decimal("0.5"))
    now = timezone.now().replace(second=1)
    aggregation_run(now=now)  # the minute's history row

    # The run without alerts (20), whether a rule is enabled (1), the figures (6), the evaluation (savepoint, lock,
    # rules, channels, states, release: 6) and how many are firing (1).
    with django_assert_num_queries(34):
        aggregation_run(now=now + timedelta(seconds=5))


def test_metrics_count_alert_firings_and_delivery_attempts(api_client, settings, receiver, broker):
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True
    account = funded_account("100000")
    channel, _ = webhook_channel(receiver.url)
    kill_switch_rule(channel_ids=[channel.pk])
    fired = ("nija_alert_events_total", (("severity", "critical"), ("state", "firing")))
    delivered = ("nija_alert_delivery_attempts_total", (("kind", "webhook"), ("outcome", "delivered")))
    before = scrape(api_client)
    equity_report(instance_id=account.pk, equity=Decimal("70000"), cash_balance=None, now=timezone.now())  # halts

    with broker.capture(execute=True):
        aggregation_run(now=timezone.now())
    assert broker.run_all() == ["delivered"]

    after = scrape(api_client)
    assert after[fired] - before.get(fired, 0) == 1
    assert after[delivered] - before.get(delivered, 0) == 1
    assert after[("nija_alerts_firing", ())] == 1
