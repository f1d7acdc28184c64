"""Alerts in admin: changelists, rules saved through the audited service, a generated secret shown once on its own
page, the "send test" action, and append-only alert events; plus the demo desk's example rules."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import DatabaseError, transaction
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEntry
from monitoring.alerts.engine import Figures
from monitoring.alerts.models import AlertEvent, AlertRule, NotificationChannel
from monitoring.alerts.services.channels import alert_channel_create
from monitoring.alerts.services.evaluation import alerts_evaluate
from monitoring.alerts.services.rules import DEMO_RULES, alert_rules_ensure_demo
from tests.accounts.factories import OperatorFactory, TradingInstanceFactory
from tests.monitoring.alerts.conftest import webhook_channel

pytestmark = pytest.mark.django_db


def admin_as(*roles: str) -> tuple[Client, object]:
    operator = OperatorFactory()
    operator.groups.add(*Group.objects.filter(name__in=roles))
    client = Client()
    client.force_login(operator)
    return client, operator


@pytest.mark.parametrize("model", ["alertrule", "alertstate", "alertevent", "notificationchannel", "alertdelivery"])
def test_changelists_open_for_a_risk_admin(model):
    client, _ = admin_as("risk_admin")
    assert client.get(reverse(f"admin:monitoring_{model}_changelist")).status_code == 200


def test_a_viewer_sees_rules_but_not_channels():
    client, _ = admin_as("viewer")
    assert client.get(reverse("admin:monitoring_alertrule_changelist")).status_code == 200
    assert client.get(reverse("admin:monitoring_notificationchannel_changelist")).status_code == 403


def rule_form(**changes: object) -> dict:
    return {
        "name": "drawdown",
        "description": "",
        "scope": "every_account",
        "instance": "",
        "figure": "drawdown_pct",
        "comparator": "gte",
        "threshold": "0.1",
        "for_seconds": "60",
        "cooldown_seconds": "900",
        "severity": "warning",
        "enabled": "on",
    } | changes


def test_a_rule_added_in_admin_goes_through_the_audited_service(settings):
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True
    channel, _ = webhook_channel("http://127.0.0.1:9/hook")
    client, operator = admin_as("risk_admin")

    response = client.post(reverse("admin:monitoring_alertrule_add"), rule_form(channels=[channel.pk]))

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = AlertRule.objects.get()
    assert list(rule.channels.values_list("pk", flat=True)) == [channel.pk]
    entry = AuditEntry.objects.get(action="alert_rule.create")
    assert (entry.actor, entry.after["threshold"], entry.after["channel_ids"]) == (operator, "0.10000000", [channel.pk])


def test_an_invalid_rule_in_admin_shows_the_problem_and_writes_nothing():
    client, _ = admin_as("risk_admin")

    response = client.post(reverse("admin:monitoring_alertrule_add"), rule_form(threshold="3"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["threshold"] == ["For drawdown_pct: from 0 to 1."]
    assert AlertRule.objects.count() == 0


def test_a_webhook_added_in_admin_shows_its_generated_secret_once():
    client, _ = admin_as("risk_admin")
    form = {"name": "desk", "kind": "webhook", "url": "https://example.com/hook", "secret": "", "enabled": "on"}

    response = client.post(reverse("admin:monitoring_notificationchannel_add"), form)

    channel = NotificationChannel.objects.get()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert channel.secret in response.content.decode()
    change_page = client.get(reverse("admin:monitoring_notificationchannel_change", args=[channel.pk]))
    listing = client.get(reverse("admin:monitoring_notificationchannel_changelist"))
    assert channel.secret not in change_page.content.decode() + listing.content.decode()
    assert AuditEntry.objects.get(action="alert_channel.create").after["secret"] == "set"


def test_the_send_test_action_reports_each_channel(settings):
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True
    channel, _ = webhook_channel("http://localhost:9/hook")
    settings.ALERT_ALLOW_PRIVATE_TARGETS = False
    client, _ = admin_as("risk_admin")

    response = client.post(
        reverse("admin:monitoring_notificationchannel_changelist"),
        {"action": "send_test", "_selected_action": [channel.pk], "index": 0},
        follow=True,
    )

    [message] = [str(message) for message in response.context["messages"]]
    assert message.startswith("desk-webhook: refused: localhost resolves to 127.0.0.1")


def test_alert_events_are_append_only_in_the_database():
    account = TradingInstanceFactory()
    AlertRule.objects.create(
        name="r", scope="account", instance=account, figure="equity", comparator="lt", threshold=Decimal(5)
    )
    alerts_evaluate(figures=Figures(accounts={"equity": {account.pk: Decimal(1)}}), now=datetime.now(UTC))
    event = AlertEvent.objects.get()

    for attempt in (
        lambda: AlertEvent.objects.filter(pk=event.pk).update(value=Decimal(2)),
        lambda: AlertEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert AlertEvent.objects.get().value == Decimal(1)


def test_the_demo_rules_are_created_once():
    first = alert_rules_ensure_demo()
    AlertRule.objects.filter(name=DEMO_RULES[0]["name"]).update(threshold=Decimal("0.2"))  # an operator's edit
    second = alert_rules_ensure_demo()

    assert [created for _, created in first] == [True, True]
    assert [created for _, created in second] == [False, False]
    assert sorted(AlertRule.objects.values_list("figure", "scope")) == [
        ("drawdown_pct", "every_account"),
        ("heartbeat_age_s", "every_account"),
    ]
    assert AlertRule.objects.get(name=DEMO_RULES[0]["name"]).threshold == Decimal("0.2")
    assert AuditEntry.objects.filter(action="alert_rule.create").count() == 2


def test_a_rule_edited_in_admin_is_audited_with_before_and_after():
    rule = AlertRule.objects.create(
        name="drawdown",
        scope="every_account",
        figure="drawdown_pct",
        comparator="gte",
        threshold=Decimal("0.1"),
        for_seconds=60,
        cooldown_seconds=900,
    )
    client, operator = admin_as("risk_admin")

    response = client.post(reverse("admin:monitoring_alertrule_change", args=[rule.pk]), rule_form(threshold="0.2"))

    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="alert_rule.update")
    assert (entry.actor, entry.before, entry.after) == (
        operator,
        {"threshold": "0.10000000"},
        {"threshold": "0.20000000"},
    )


def test_a_channel_edited_in_admin_keeps_its_secret_unless_one_is_given():
    client, _ = admin_as("risk_admin")
    write = alert_channel_create(actor=None, name="desk", kind="webhook", url="https://example.com/hook")
    url = reverse("admin:monitoring_notificationchannel_change", args=[write.channel.pk])
    form = {"name": "desk-renamed", "kind": "webhook", "url": "", "secret": "", "enabled": "on"}

    assert client.post(url, form).status_code == 302

    channel = NotificationChannel.objects.get()
    assert (channel.name, channel.webhook_url, channel.secret) == (
        "desk-renamed",
        "https://example.com/hook",
        write.revealed_secret,
    )
