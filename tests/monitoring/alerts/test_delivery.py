"""Alerts reaching a real local HTTP receiver: rules evaluated by the service, deliveries enqueued on the real
broker and run as a worker would, signatures checked with the channel's secret, retries scheduled and asserted
without waiting for them."""

import json
import signal
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from accounts.liveness import heartbeat_guard_clear
from accounts.models import AuditEntry
from monitoring.alerts import transport
from monitoring.alerts.figures import alert_figures
from monitoring.alerts.models import AlertDelivery, AlertDeliveryAttempt, AlertEvent, AlertState
from monitoring.alerts.services.channels import alert_channel_create, alert_channel_test, alert_channel_update
from monitoring.alerts.services.delivery import ATTEMPT_TIME_LIMIT_SECONDS
from monitoring.alerts.services.evaluation import alerts_evaluate
from monitoring.alerts.services.rules import alert_rule_create
from tests.accounts.factories import TradingInstanceFactory
from tests.monitoring.alerts.conftest import webhook_channel
from tests.monitoring.alerts.receiver import Receiver
from tests.risk.conftest import bot_client

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OTHER_SECRET = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBvZiAzMiBieXQ="


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def drawdown_rule(account, channel, **overrides):
    values = {
        "name": "drawdown past 10 %",
        "scope": "account",
        "account_id": account.pk,
        "figure": "drawdown_pct",
        "comparator": "gte",
        "threshold": Decimal("0.10"),
        "for_seconds": 60,
        "cooldown_seconds": 600,
        "severity": "critical",
        "channel_ids": [channel.pk],
    } | overrides
    return alert_rule_create(actor=None, **values)


def body_of(request) -> dict:
    return json.loads(request.body)


def test_a_drawdown_rule_fires_after_its_duration_signed_once_and_resolves(allow_private, receiver, broker, evaluate):
    account = TradingInstanceFactory()
    channel, secret = webhook_channel(receiver.url)
    rule = drawdown_rule(account, channel)
    dd = {account.pk: "0.12"}

    evaluate(at(0), drawdown_pct=dd)
    evaluate(at(30), drawdown_pct=dd)
    assert broker.queued() == []  # pending: not yet its duration
    assert AlertEvent.objects.count() == 0

    summary = evaluate(at(60), drawdown_pct=dd)
    assert (summary.firing, summary.deliveries) == (1, 1)
    assert broker.run_all() == ["delivered"]
    [request] = receiver.requests
    payload = Webhook(secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(request.body, request.headers)
    assert payload["type"] == "alert.firing"
    assert payload["data"]["rule"] == {
        "id": rule.pk,
        "name": "drawdown past 10 %",
        "scope": "account",
        "figure": "drawdown_pct",
        "comparator": "gte",
        "threshold": "0.10000000",
        "severity": "critical",
    }
    [alert] = payload["data"]["alerts"]
    assert (alert["account_id"], alert["value"], alert["occurred_at"]) == (account.pk, "0.12", at(60).isoformat())
    delivery = AlertDelivery.objects.get()
    assert request.headers["webhook-id"] == delivery.message_id
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("delivered", 1, 200)

    evaluate(at(90), drawdown_pct={account.pk: "0.30"})  # still breached: one firing per episode
    assert broker.run_all() == []

    summary = evaluate(at(120), drawdown_pct={account.pk: "0.04"})
    assert summary.resolved == 1
    assert broker.run_all() == ["delivered"]
    resolved = Webhook(secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    assert resolved["type"] == "alert.resolved"
    assert resolved["data"]["alerts"][0]["value"] == "0.04"
    assert resolved["data"]["alerts"][0]["fired_at"] == at(60).isoformat()
    assert len(receiver.requests) == 2
    assert list(AlertEvent.objects.order_by("id").values_list("state", flat=True)) == ["firing", "resolved"]


def test_a_500_is_retried_after_its_backoff_and_then_succeeds(allow_private, receiver, broker, evaluate, settings):
    settings.ALERT_DELIVERY_BACKOFF_SECONDS = 10
    account = TradingInstanceFactory()
    channel, secret = webhook_channel(receiver.url)
    drawdown_rule(account, channel, for_seconds=0)
    receiver.answer(500, 503)

    evaluate(at(0), drawdown_pct={account.pk: "0.2"})
    assert broker.run_all() == ["retry"]

    delivery = AlertDelivery.objects.get()
    first = AlertDeliveryAttempt.objects.get(delivery=delivery, number=1)
    assert (delivery.status, first.outcome, first.response_code) == ("retrying", "failed", 500)
    waited = (first.next_retry_at - first.finished_at).total_seconds()
    assert 5 <= waited <= 10  # retry 1: base 10 s x 2^0, jittered into [5, 10]
    [queued] = broker.queued()
    assert (queued.delivery_id, queued.attempt) == (delivery.pk, 2)
    assert abs((queued.eta - first.next_retry_at).total_seconds()) < 1  # enqueued with that countdown

    assert broker.run_all() == ["retry"]  # 503
    second = AlertDeliveryAttempt.objects.get(delivery=delivery, number=2)
    assert 10 <= (second.next_retry_at - second.finished_at).total_seconds() <= 20  # retry 2: [10, 20]

    assert broker.run_all() == ["delivered"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("delivered", 3, 200)
    assert len(receiver.requests) == 3
    assert len({request.headers["webhook-id"] for request in receiver.requests}) == 1  # one message, resent
    for request in receiver.requests:
        Webhook(secret).verify(request.body, request.headers)


def test_a_429_waits_at_least_its_retry_after(allow_private, receiver, broker, evaluate):
    account = TradingInstanceFactory()
    channel, _ = webhook_channel(receiver.url)
    drawdown_rule(account, channel, for_seconds=0)
    receiver.answer(429, headers={"Retry-After": "120"})

    evaluate(at(0), drawdown_pct={account.pk: "0.2"})
    broker.run_all()

    attempt = AlertDeliveryAttempt.objects.get()
    assert (attempt.next_retry_at - attempt.finished_at).total_seconds() == pytest.approx(120, abs=0.01)


def test_a_400_is_not_retried(allow_private, receiver, broker, evaluate):
    account = TradingInstanceFactory()
    channel, _ = webhook_channel(receiver.url)
    drawdown_rule(account, channel, for_seconds=0)
    receiver.answer(400)

    evaluate(at(0), drawdown_pct={account.pk: "0.2"})
    assert broker.run_all() == ["rejected"]

    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("failed", 1, 400)
    assert AlertDeliveryAttempt.objects.get().next_retry_at is None
    assert broker.queued() == []
    assert len(receiver.requests) == 1


def test_retries_stop_after_the_last_attempt(allow_private, receiver, broker, evaluate, settings):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 3
    account = TradingInstanceFactory()
    channel, _ = webhook_channel(receiver.url)
    drawdown_rule(account, channel, for_seconds=0)
    receiver.answer(500, 500, 500, 500)

    evaluate(at(0), drawdown_pct={account.pk: "0.2"})
    outcomes = broker.run_all() + broker.run_all() + broker.run_all() + broker.run_all()

    assert outcomes == ["retry", "retry", "retry"]
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.last_error == "gave up after 3 attempts: HTTP 500"
    assert len(receiver.requests) == 3


def test_a_redelivered_task_never_sends_twice(allow_private, receiver, broker, evaluate):
    account = TradingInstanceFactory()
    channel, _ = webhook_channel(receiver.url)
    drawdown_rule(account, channel, for_seconds=0)
    evaluate(at(0), drawdown_pct={account.pk: "0.2"})
    [queued] = broker.queued()

    assert broker.run(queued.delivery_id, 1) == "delivered"
    assert broker.run(queued.delivery_id, 1) == "skipped"  # the broker hands the same message out again
    assert broker.run(queued.delivery_id, 2) == "skipped"  # a stray later attempt of a finished delivery

    assert len(receiver.requests) == 1
    assert AlertDeliveryAttempt.objects.count() == 1


def test_a_claim_left_by_a_dead_worker_is_marked_interrupted_and_not_resent(allow_private, receiver, broker, evaluate):
    account = TradingInstanceFactory()
    channel, _ = webhook_channel(receiver.url)
    drawdown_rule(account, channel, for_seconds=0)
    evaluate(at(0), drawdown_pct={account.pk: "0.2"})
    delivery = AlertDelivery.objects.get()
    # A worker claimed attempt 1 and died before recording anything.
    long_ago = timezone.now() - timedelta(seconds=ATTEMPT_TIME_LIMIT_SECONDS + 1)
    AlertDeliveryAttempt.objects.create(delivery=delivery, number=1, started_at=long_ago)
    AlertDelivery.objects.filter(pk=delivery.pk).update(status="sending", attempts=1)

    assert broker.run(delivery.pk, 1) == "skipped"

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert AlertDeliveryAttempt.objects.get().outcome == "interrupted"
    assert receiver.requests == []


def test_a_second_breach_inside_the_cooldown_sends_nothing(allow_private, receiver, broker, evaluate):
    account = TradingInstanceFactory()
    channel, _ = webhook_channel(receiver.url)
    drawdown_rule(account, channel, for_seconds=0, cooldown_seconds=600)

    evaluate(at(0), drawdown_pct={account.pk: "0.2"})
    evaluate(at(10), drawdown_pct={account.pk: "0.01"})
    broker.run_all()
    assert [body_of(request)["type"] for request in receiver.requests] == ["alert.firing", "alert.resolved"]

    evaluate(at(20), drawdown_pct={account.pk: "0.2"})
    evaluate(at(30), drawdown_pct={account.pk: "0.01"})
    evaluate(at(300), drawdown_pct={account.pk: "0.25"})

    assert broker.run_all() == []
    assert len(receiver.requests) == 2
    assert AlertEvent.objects.count() == 2
    assert AlertState.objects.get().status == "resolved"


def test_a_silent_bot_fires_a_heartbeat_rule(allow_private, receiver, broker, evaluate):
    talking, silent = TradingInstanceFactory(), TradingInstanceFactory()
    channel, secret = webhook_channel(receiver.url)
    alert_rule_create(
        actor=None,
        name="silent bot",
        scope="every_account",
        figure="heartbeat_age_s",
        comparator="gt",
        threshold=Decimal(120),
        channel_ids=[channel.pk],
    )

    evaluate(at(0), heartbeat_age_s={talking.pk: "3", silent.pk: "95"})
    assert broker.run_all() == []
    evaluate(at(30), heartbeat_age_s={talking.pk: "2", silent.pk: "125"})
    assert broker.run_all() == ["delivered"]

    payload = Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert [(alert["account_id"], alert["value"]) for alert in payload["data"]["alerts"]] == [(silent.pk, "125")]
    assert AlertState.objects.get().instance_id == silent.pk


def test_many_accounts_tripping_one_rule_make_one_message_per_channel(allow_private, receiver, broker, evaluate):
    accounts = TradingInstanceFactory.create_batch(3)
    first, _ = webhook_channel(receiver.url, name="first")
    second, _ = webhook_channel(receiver.url, name="second")
    alert_rule_create(
        actor=None,
        name="deep drawdown",
        scope="every_account",
        figure="drawdown_pct",
        comparator="gte",
        threshold=Decimal("0.2"),
        channel_ids=[first.pk, second.pk],
    )

    evaluate(at(0), drawdown_pct={account.pk: "0.3" for account in accounts})

    assert sorted(broker.run_all()) == ["delivered", "delivered"]
    for request in receiver.requests:
        data = body_of(request)["data"]
        assert data["count"] == 3
        assert sorted(alert["account_id"] for alert in data["alerts"]) == sorted(a.pk for a in accounts)


def test_a_private_target_is_refused_when_private_targets_are_not_allowed(receiver, broker, evaluate, settings):
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True
    account = TradingInstanceFactory()
    channel, _ = webhook_channel(receiver.url.replace("127.0.0.1", "localhost"))
    drawdown_rule(account, channel, for_seconds=0)
    settings.ALERT_ALLOW_PRIVATE_TARGETS = False  # production's default

    evaluate(at(0), drawdown_pct={account.pk: "0.2"})
    assert broker.run_all() == ["refused"]

    delivery = AlertDelivery.objects.get()
    assert delivery.status == "refused"
    assert "localhost resolves to 127.0.0.1" in delivery.last_error
    assert broker.queued() == []  # never retried
    assert receiver.requests == []


def test_an_apprise_channel_posts_through_apprise(allow_private, receiver, broker, evaluate):
    account = TradingInstanceFactory()
    apprise_url = receiver.url.replace("http://", "json://").split("?")[0]
    write = alert_channel_create(actor=None, name="apprise-json", kind="apprise", url=apprise_url)
    drawdown_rule(account, write.channel, for_seconds=0)

    evaluate(at(0), drawdown_pct={account.pk: "0.2"})
    assert broker.run_all() == ["delivered"]

    [request] = receiver.requests
    message = body_of(request)
    assert message["title"] == "[CRITICAL] FIRING: drawdown past 10 %"
    assert f"account {account.pk}: drawdown_pct = 0.2" in message["message"]


@pytest.mark.parametrize("ask", ["", "?redirect=yes"])  # Apprise follows redirects by default, or when asked
def test_an_apprise_target_that_redirects_is_not_followed(allow_private, broker, evaluate, ask):
    """A redirect would lead past the address check (a public receiver answering 307 to an internal address)."""
    with Receiver() as first, Receiver() as elsewhere:
        first.answer(307, headers={"Location": elsewhere.url})
        account = TradingInstanceFactory()
        apprise_url = first.url.replace("http://", "json://").split("?")[0] + ask
        write = alert_channel_create(actor=None, name="apprise-json", kind="apprise", url=apprise_url)
        drawdown_rule(account, write.channel, for_seconds=0)

        evaluate(at(0), drawdown_pct={account.pk: "0.2"})
        outcomes = broker.run_all()

        assert len(first.requests) == 1
        assert elsewhere.requests == []
        assert outcomes == ["retry"]  # Apprise says only that it failed


def test_a_disabled_channel_gets_no_delivery_and_a_channel_disabled_meanwhile_gets_no_send(
    allow_private, receiver, broker, evaluate
):
    account = TradingInstanceFactory()
    channel, _ = webhook_channel(receiver.url)
    drawdown_rule(account, channel, for_seconds=0)
    evaluate(at(0), drawdown_pct={account.pk: "0.2"})

    alert_channel_update(channel_id=channel.pk, actor=None, enabled=False)
    assert broker.run_all() == ["skipped"]
    assert AlertDelivery.objects.get().status == "failed"

    evaluate(at(10), drawdown_pct={account.pk: "0.01"})
    assert AlertDelivery.objects.count() == 1  # the resolution went to no channel
    assert AlertEvent.objects.count() == 2
    assert receiver.requests == []


def test_send_test_reaches_the_receiver_signed_and_is_audited(allow_private, receiver):
    channel, secret = webhook_channel(receiver.url)

    result = alert_channel_test(channel_id=channel.pk, actor=None)

    assert (result.outcome, result.status_code) == (transport.Outcome.DELIVERED, 200)
    payload = Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert payload["type"] == "alert.test"
    entry = AuditEntry.objects.filter(action="alert_channel.test").get()
    assert entry.after == {"outcome": "delivered", "response_code": 200, "error": ""}


def test_a_retry_after_of_non_ascii_digits_is_ignored_and_the_delivery_retried(
    allow_private, receiver, broker, evaluate, settings
):
    account = TradingInstanceFactory()
    channel, _ = webhook_channel(receiver.url)
    drawdown_rule(account, channel, for_seconds=0)
    receiver.answer(503, headers={"Retry-After": "\u00b2"})  # superscript two: str.isdigit() says yes

    evaluate(at(0), drawdown_pct={account.pk: "0.2"})
    assert broker.run_all() == ["retry"]

    delivery, attempt = AlertDelivery.objects.get(), AlertDeliveryAttempt.objects.get()
    assert (delivery.status, attempt.outcome, attempt.response_code) == ("retrying", "failed", 503)
    assert (attempt.next_retry_at - attempt.finished_at).total_seconds() <= settings.ALERT_DELIVERY_BACKOFF_SECONDS
    assert [queued.attempt for queued in broker.queued()] == [2]


def test_an_attempt_cut_short_by_the_soft_time_limit_is_recorded_and_retried(allow_private, broker, evaluate):
    """A receiver that never answers, and the worker's soft time limit (Celery raises it from a signal handler in
    the worker process; here the same exception from a real timer signal) interrupting the send."""
    silent = socket.create_server(("127.0.0.1", 0))
    account = TradingInstanceFactory()
    channel, _ = webhook_channel(f"http://127.0.0.1:{silent.getsockname()[1]}/hooks")
    drawdown_rule(account, channel, for_seconds=0)
    evaluate(at(0), drawdown_pct={account.pk: "0.2"})

    def soft_time_limit(*args: object) -> None:
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, soft_time_limit)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        assert broker.run_all() == ["retry"]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        silent.close()

    delivery, attempt = AlertDelivery.objects.get(), AlertDeliveryAttempt.objects.get()
    assert (delivery.status, attempt.outcome, attempt.error) == ("retrying", "failed", "SoftTimeLimitExceeded")
    assert [queued.attempt for queued in broker.queued()] == [2]


def test_a_silent_bot_fires_a_heartbeat_rule_at_the_receiver_and_a_bot_heard_from_does_not(
    allow_private, receiver, broker, redis_client, django_capture_on_commit_callbacks
):
    """The heartbeat figure is the watchdog's liveness: both accounts' last time in PostgreSQL is ten minutes old,
    but one bot has just made an authenticated request (recorded in Redis only): it does not fire; the silent one
    does, signed, at the local receiver."""
    now = timezone.now().replace(microsecond=0)
    silent, heard = (TradingInstanceFactory(last_heartbeat=now - timedelta(seconds=600)) for _ in range(2))
    heartbeat_guard_clear()
    assert bot_client(heard).get(f"/api/accounts/{heard.pk}").status_code == 200
    channel, secret = webhook_channel(receiver.url)
    alert_rule_create(
        actor=None,
        name="silent bot",
        scope="every_account",
        figure="heartbeat_age_s",
        comparator="gte",
        threshold=Decimal(120),
        for_seconds=0,
        severity="warning",
        channel_ids=[channel.pk],
    )
    later = now + timedelta(seconds=5)

    with django_capture_on_commit_callbacks(execute=True):
        summary = alerts_evaluate(figures=alert_figures(now=later), now=later)

    assert summary.firing == 1
    assert broker.run_all() == ["delivered"]
    [request] = receiver.requests
    payload = Webhook(secret).verify(request.body, request.headers)
    assert (payload["type"], payload["data"]["rule"]["figure"]) == ("alert.firing", "heartbeat_age_s")
    [alert] = payload["data"]["alerts"]
    assert (alert["account_id"], alert["value"]) == (silent.pk, "605")
