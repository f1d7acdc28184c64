"""The evaluation service: a fixed number of queries whatever the number of rules and accounts, rows only for
pairs that are not ok, one run at a time, and the `alert` event on the dashboard stream."""

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import TradingInstance
from monitoring.alerts.engine import Figures
from monitoring.alerts.models import AlertDelivery, AlertEvent, AlertRule, AlertState
from monitoring.alerts.services.evaluation import EVALUATION_LOCK_KEY, alerts_evaluate
from monitoring.alerts.services.rules import alert_rule_create, alert_rule_delete, alert_rule_update
from nija.event_store import FANOUT_CHANNEL
from tests.accounts.factories import TradingInstanceFactory
from tests.monitoring.alerts.conftest import webhook_channel

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def every_account_rule(name: str, threshold: str, channel_ids: list[int] | None = None) -> AlertRule:
    return alert_rule_create(
        actor=None,
        name=name,
        scope="every_account",
        figure="drawdown_pct",
        comparator="gte",
        threshold=Decimal(threshold),
        channel_ids=channel_ids or [],
    )


def drawdowns(accounts: list[int], breached: set[int]) -> Figures:
    return Figures(
        accounts={"drawdown_pct": {pk: Decimal("0.5") if pk in breached else Decimal("0.01") for pk in accounts}}
    )


def make_accounts(count: int) -> list[int]:
    owner = TradingInstanceFactory()
    TradingInstance.objects.bulk_create(
        TradingInstance(user=owner.user, name=f"bulk-{index}") for index in range(count - 1)
    )
    return list(TradingInstance.objects.values_list("pk", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize(("rules", "accounts", "breached"), [(2, 5, 2), (20, 300, 150)])
def test_the_query_count_does_not_grow_with_rules_accounts_or_alerts(rules, accounts, breached, settings):
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True
    channel, _ = webhook_channel("http://127.0.0.1:9/hook")
    ids = make_accounts(accounts)
    for index in range(rules):
        every_account_rule(f"rule {index}", "0.2", [channel.pk])
    alert_rule_create(
        actor=None, name="portfolio", scope="portfolio", figure="equity", comparator="lt", threshold=Decimal(10)
    )
    firing = set(ids[:breached])

    with CaptureQueriesContext(connection) as first:  # creates states, events and deliveries
        summary = alerts_evaluate(figures=drawdowns(ids, firing), now=at(0))
    assert (summary.firing, summary.deliveries) == (rules * breached, rules)
    with CaptureQueriesContext(connection) as second:  # half resolve (update, events, deliveries)
        alerts_evaluate(figures=drawdowns(ids, set(ids[: breached // 2])), now=at(10))
    with CaptureQueriesContext(connection) as quiet:
        alerts_evaluate(figures=drawdowns(ids, set(ids[: breached // 2])), now=at(20))

    # The savepoint and its release, the lock, rules, channels, states; then one statement per kind of write.
    assert len(quiet) == 6
    assert len(first) == 6 + 3  # + insert states, events, deliveries
    assert len(second) == 6 + 3  # + update states, events, deliveries


@pytest.mark.django_db
def test_quiet_accounts_store_nothing_and_only_pairs_that_are_not_ok_are_stored():
    ids = make_accounts(500)
    rule = every_account_rule("drawdown", "0.2")

    alerts_evaluate(figures=drawdowns(ids, set()), now=at(0))
    assert AlertState.objects.count() == 0

    alerts_evaluate(figures=drawdowns(ids, {ids[3], ids[7]}), now=at(5))
    assert sorted(AlertState.objects.values_list("instance_id", "status")) == [
        (ids[3], "firing"),
        (ids[7], "firing"),
    ]

    alert_rule_update(rule_id=rule.pk, actor=None, cooldown_seconds=0)
    alerts_evaluate(figures=drawdowns(ids, set()), now=at(10))
    assert AlertState.objects.count() == 0
    assert list(AlertEvent.objects.order_by("id").values_list("state", flat=True)) == [
        "firing",
        "firing",
        "resolved",
        "resolved",
    ]


@pytest.mark.django_db
def test_disabling_a_rule_drops_its_states_and_stops_its_evaluation():
    ids = make_accounts(3)
    rule = every_account_rule("drawdown", "0.2")
    alerts_evaluate(figures=drawdowns(ids, {ids[0]}), now=at(0))

    alert_rule_update(rule_id=rule.pk, actor=None, enabled=False)
    alerts_evaluate(figures=drawdowns(ids, set(ids)), now=at(5))

    assert AlertState.objects.count() == 0
    assert AlertEvent.objects.count() == 1


@pytest.mark.django_db
def test_the_alert_event_goes_on_the_dashboard_stream(redis_client, django_capture_on_commit_callbacks):
    ids = make_accounts(2)
    rule = every_account_rule("drawdown", "0.2")
    subscriber = redis_client.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(FANOUT_CHANNEL)  # every events process listens there
    subscriber.get_message(timeout=1)

    with django_capture_on_commit_callbacks(execute=True):
        alerts_evaluate(figures=drawdowns(ids, {ids[1]}), now=at(0))

    message = json.loads(subscriber.get_message(timeout=2)["data"])
    subscriber.close()
    data = json.loads(message["d"])
    assert (message["c"], message["t"]) == ("dashboard", "alert")
    assert (data["rule"]["id"], data["state"], data["count"]) == (rule.pk, "firing", 1)
    assert data["alerts"][0]["account_id"] == ids[1]


@pytest.mark.django_db(transaction=True)
def test_a_run_that_cannot_take_the_lock_does_nothing():
    ids = make_accounts(2)
    every_account_rule("drawdown", "0.2")
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [EVALUATION_LOCK_KEY])
            holding.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert holding.wait(10)
    try:
        summary = alerts_evaluate(figures=drawdowns(ids, set(ids)), now=at(0))
    finally:
        release.set()
        holder.join()

    assert summary.skipped
    assert AlertState.objects.count() == AlertEvent.objects.count() == AlertDelivery.objects.count() == 0
    assert alerts_evaluate(figures=drawdowns(ids, set(ids)), now=at(1)).firing == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_raise_each_firing_once():
    ids = make_accounts(50)
    every_account_rule("drawdown", "0.2")
    figures = drawdowns(ids, set(ids))
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            alerts_evaluate(figures=figures, now=at(0))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    alerts_evaluate(figures=figures, now=at(1))  # whoever skipped: nothing more to raise

    assert AlertEvent.objects.filter(state="firing").count() == 50
    assert AlertState.objects.filter(status="firing").count() == 50


@pytest.mark.django_db(transaction=True)
def test_a_rule_deletion_waits_for_a_running_evaluation():
    rule = every_account_rule("drawdown", "0.2")
    holding, release, deleted = threading.Event(), threading.Event(), threading.Event()

    def evaluation_running() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [EVALUATION_LOCK_KEY])
            holding.set()
            release.wait(10)
        connection.close()

    def delete() -> None:
        try:
            alert_rule_delete(rule_id=rule.pk, actor=None)
            deleted.set()
        finally:
            connection.close()

    runner, deleter = threading.Thread(target=evaluation_running), threading.Thread(target=delete)
    runner.start()
    assert holding.wait(10)
    deleter.start()
    waited = not deleted.wait(0.5)
    release.set()
    runner.join()
    deleter.join()

    assert waited
    assert deleted.is_set()
    assert not AlertRule.objects.exists()
