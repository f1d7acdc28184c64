"""Delivering notifications: each delivery is one Celery task per attempt, idempotent by delivery id and attempt.

An attempt is claimed before anything is sent: under the delivery's row lock, attempt n is claimed only if the
delivery is not finished and n is the next number (an `AlertDeliveryAttempt` row `sending`, unique per number).
A task delivered twice by the broker therefore sends once; the second copy finds the claim and does nothing.
If a worker dies after its claim, nobody knows whether the receiver got the message: once the claim is older
than the task's hard time limit, the next copy of that task marks it `interrupted` and the delivery failed,
without sending again.

After an attempt: 2xx delivered; a refused target (non-public address) or a 4xx other than 408/429 ends the
delivery; anything else is retried after an exponential, jittered delay (honouring a longer Retry-After, up to the
cap) until ALERT_DELIVERY_MAX_ATTEMPTS, by enqueueing the next attempt with that countdown after commit. An attempt
that raises instead of answering (the worker's soft time limit over a receiver that never answers, a reply nothing
can read) is a failed attempt like a timeout: recorded and retried.
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.alerts import transport
from monitoring.alerts.models import (
    FINAL_DELIVERY_STATUSES,
    AlertDelivery,
    AlertDeliveryAttempt,
    AttemptOutcome,
    ChannelKind,
    DeliveryStatus,
    NotificationChannel,
)
from nija.metrics import ALERT_DELIVERY_ATTEMPTS, child

logger = structlog.get_logger(__name__)

# The delivery task's hard time limit (monitoring.alerts.tasks): a claim older than this is not running any more.
ATTEMPT_TIME_LIMIT_SECONDS = 45
_jitter = random.Random()  # noqa: S311 - jitter, not security
ATTEMPT_OUTCOMES = {
    transport.Outcome.DELIVERED: AttemptOutcome.DELIVERED,
    transport.Outcome.RETRY: AttemptOutcome.FAILED,
    transport.Outcome.REJECTED: AttemptOutcome.REJECTED,
    transport.Outcome.REFUSED: AttemptOutcome.REFUSED,
}


@dataclass(frozen=True)
class Claim:
    """Everything one attempt sends, read under the delivery's lock."""

    delivery_id: int
    attempt: int
    message_id: str
    payload: dict[str, Any]
    channel_kind: str
    url: str = field(repr=False)  # an Apprise URL carries credentials
    secret: str | None = field(repr=False)


def deliveries_enqueue_on_commit(delivery_ids: list[int]) -> None:
    """Enqueue attempt 1 of each delivery once the transaction that created them commits."""
    if delivery_ids:
        transaction.on_commit(lambda: [_enqueue(delivery_id, 1) for delivery_id in delivery_ids])


def _enqueue(delivery_id: int, attempt: int, countdown: float | None = None) -> None:
    """A broker error is logged, never raised: the delivery stays recorded (pending or retrying) either way."""
    from monitoring.alerts.tasks import alert_deliver  # the task module imports this one

    try:
        alert_deliver.apply_async((delivery_id, attempt), countdown=countdown)
    except Exception:  # kombu and redis raise several types; the committed delivery must stand
        logger.error("alert_delivery_enqueue_failed", delivery_id=delivery_id, attempt=attempt, exc_info=True)


def alert_delivery_attempt(*, delivery_id: int, attempt: int) -> str:
    """Claim, send and record attempt `attempt` of a delivery; returns the outcome (or `skipped`)."""
    claim = _claim(delivery_id=delivery_id, attempt=attempt, now=timezone.now())
    if claim is None:
        return "skipped"
    try:
        result = channel_send(
            kind=claim.channel_kind,
            url=claim.url,
            secret=claim.secret,
            message_id=claim.message_id,
            payload=claim.payload,
            now=timezone.now(),
        )
    except Exception as exc:  # noqa: BLE001 - the worker's soft time limit, an answer nothing could read...
        # ...are this attempt's failure: recorded and retried, never a claim left `sending` that nothing resumes.
        result = transport.SendResult(transport.Outcome.RETRY, error=type(exc).__name__)
    _record(claim, result, now=timezone.now())
    child(ALERT_DELIVERY_ATTEMPTS, claim.channel_kind, result.outcome).inc()
    return result.outcome


def channel_send(
    *, kind: str, url: str, secret: str | None, message_id: str, payload: dict[str, Any], now: datetime
) -> transport.SendResult:
    """Send one message to a channel's target with the configured timeout and address policy."""
    timeout = settings.ALERT_DELIVERY_TIMEOUT_SECONDS
    allow_private = settings.ALERT_ALLOW_PRIVATE_TARGETS
    if kind == ChannelKind.WEBHOOK:
        body = transport.message_body(payload)
        return transport.webhook_post(
            url=url,
            secret=secret or "",
            message_id=message_id,
            body=body,
            now=now,
            timeout=timeout,
            allow_private=allow_private,
        )
    title, text = message_text(payload)
    return transport.apprise_send(url=url, title=title, body=text, timeout=timeout, allow_private=allow_private)


def message_text(payload: dict[str, Any]) -> tuple[str, str]:
    """A chat or mail rendering of a notification: a title and one line per alert."""
    data = payload["data"]
    if "rule" not in data:  # a channel's test message
        return "NIJA test notification", data["message"]
    rule = data["rule"]
    title = f"[{rule['severity'].upper()}] {data['state'].upper()}: {rule['name']}"
    condition = f"{rule['figure']} {rule['comparator']} {rule['threshold']}"
    lines = [
        f"{'portfolio' if alert['account_id'] is None else 'account ' + str(alert['account_id'])}: "
        f"{rule['figure']} = {alert['value']} at {alert['occurred_at']}"
        for alert in data["alerts"]
    ]
    more = data["count"] - len(data["alerts"])
    return title, "\n".join([f"Rule: {condition}", *lines, *([f"... and {more} more"] if more > 0 else [])])


# ---------------------------------------------------------------------------------------------- claim
@transaction.atomic
def _claim(*, delivery_id: int, attempt: int, now: datetime) -> Claim | None:
    delivery = AlertDelivery.objects.select_for_update().filter(pk=delivery_id).first()
    if delivery is None or delivery.status in FINAL_DELIVERY_STATUSES:
        return None
    if attempt <= delivery.attempts:
        _interrupted_mark(delivery, attempt, now=now)
        return None
    if attempt != delivery.attempts + 1:
        return None  # a copy of a task from another order of events: only the next number may be claimed
    channel = NotificationChannel.objects.filter(pk=delivery.channel_id).first()
    if channel is None or not channel.enabled:
        _finish(delivery, DeliveryStatus.FAILED, error="the channel was deleted or disabled before sending")
        return None
    AlertDeliveryAttempt.objects.create(delivery=delivery, number=attempt, started_at=now)
    delivery.status, delivery.attempts = DeliveryStatus.SENDING, attempt
    delivery.save(update_fields=["status", "attempts", "updated_at"])
    url = channel.webhook_url if channel.kind == ChannelKind.WEBHOOK else channel.apprise_url
    return Claim(delivery.pk, attempt, delivery.message_id, delivery.payload, channel.kind, url or "", channel.secret)


def _interrupted_mark(delivery: AlertDelivery, attempt: int, *, now: datetime) -> None:
    """A second copy of an attempt's task: if the first is past its time limit while still `sending`, its worker
    died mid-attempt; mark it interrupted and end the delivery (sending again could deliver twice)."""
    stale_before = now - timedelta(seconds=ATTEMPT_TIME_LIMIT_SECONDS)
    interrupted = AlertDeliveryAttempt.objects.filter(
        delivery=delivery, number=attempt, outcome=AttemptOutcome.SENDING, started_at__lt=stale_before
    ).update(outcome=AttemptOutcome.INTERRUPTED, finished_at=now, error="the worker stopped during this attempt")
    if interrupted and delivery.status == DeliveryStatus.SENDING:
        _finish(delivery, DeliveryStatus.FAILED, error="interrupted during an attempt; not resent (outcome unknown)")


def _finish(
    delivery: AlertDelivery, status: str, *, error: str = "", code: int | None = None, at: datetime | None = None
) -> None:
    delivery.status, delivery.last_error, delivery.last_response_code = status, error, code
    delivery.next_attempt_at, delivery.delivered_at = None, at if status == DeliveryStatus.DELIVERED else None
    fields = ["status", "last_error", "last_response_code", "next_attempt_at", "delivered_at", "updated_at"]
    delivery.save(update_fields=fields)


# ---------------------------------------------------------------------------------------------- record
@transaction.atomic
def _record(claim: Claim, result: transport.SendResult, *, now: datetime) -> None:
    delivery = AlertDelivery.objects.select_for_update().get(pk=claim.delivery_id)
    attempt = AlertDeliveryAttempt.objects.select_for_update().get(delivery=delivery, number=claim.attempt)
    if attempt.outcome != AttemptOutcome.SENDING:
        return  # already recorded (or marked interrupted meanwhile)
    delay = retry_delay_for(claim.attempt, result) if result.outcome == transport.Outcome.RETRY else None
    attempt.outcome = ATTEMPT_OUTCOMES[result.outcome]
    attempt.finished_at, attempt.response_code, attempt.error = now, result.status_code, result.error
    attempt.duration_ms = result.duration_ms
    attempt.next_retry_at = now + timedelta(seconds=delay) if delay is not None else None
    attempt.save()
    if result.outcome == transport.Outcome.DELIVERED:
        _finish(delivery, DeliveryStatus.DELIVERED, code=result.status_code, at=now)
    elif delay is not None:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, attempt.next_retry_at
        delivery.last_error, delivery.last_response_code = result.error, result.status_code
        delivery.save(update_fields=["status", "next_attempt_at", "last_error", "last_response_code", "updated_at"])
        transaction.on_commit(lambda: _enqueue(claim.delivery_id, claim.attempt + 1, countdown=delay))
    else:
        status = DeliveryStatus.REFUSED if result.outcome == transport.Outcome.REFUSED else DeliveryStatus.FAILED
        _finish(delivery, status, error=_final_error(result, claim.attempt), code=result.status_code)
    logger.info("alert_delivery_attempt", delivery_id=claim.delivery_id, attempt=claim.attempt, outcome=attempt.outcome)


def _final_error(result: transport.SendResult, attempt: int) -> str:
    if result.outcome == transport.Outcome.RETRY:
        return f"gave up after {attempt} attempts: {result.error}"
    return result.error


def retry_delay_for(attempt: int, result: transport.SendResult) -> float | None:
    """Seconds before the next attempt after a retryable failure of `attempt`; None when no attempt is left."""
    if attempt >= settings.ALERT_DELIVERY_MAX_ATTEMPTS:
        return None
    cap = settings.ALERT_DELIVERY_BACKOFF_CAP_SECONDS
    delay = transport.retry_delay(attempt, base=settings.ALERT_DELIVERY_BACKOFF_SECONDS, cap=cap, rng=_jitter)
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, cap))
    return delay
