"""Risk events: persisted, published after commit, and latched so one breach raises one event until it clears."""

from typing import Any

from django.db import IntegrityError, transaction

from nija.events import publish_on_commit
from risk.models import BreachLatch, RiskEvent


def risk_event_json(event: RiskEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "type": event.type,
        "severity": event.severity,
        "account_id": event.instance_id,
        "message": event.message,
        "details": event.details,
        "correlation_id": event.correlation_id,
        "created_at": event.created_at.isoformat(),
    }


def risk_event_raise(
    *,
    event_type: str,
    severity: str,
    message: str,
    instance_id: int | None = None,
    details: dict[str, Any] | None = None,
    correlation_id: str = "",
) -> RiskEvent:
    """Record an event and publish it (`risk_event`) once the surrounding transaction commits."""
    event = RiskEvent.objects.create(
        type=event_type,
        severity=severity,
        instance_id=instance_id,
        message=message,
        details=details or {},
        correlation_id=correlation_id,
    )
    publish_on_commit(event_type="risk_event", data=risk_event_json(event), account_id=instance_id)
    return event


def breach_latch(*, key: str, raise_event: Any) -> RiskEvent | None:
    """Raise the breach's event only if the breach is not already latched (the unique key decides, not a
    check-then-insert); returns the new event, or None when it was already raised."""
    if BreachLatch.objects.filter(key=key).exists():
        return None
    try:
        with transaction.atomic():
            event = raise_event()
            BreachLatch.objects.create(key=key, event=event)
    except IntegrityError:
        return None
    return event


def breach_clear(*, keys: set[str] | frozenset[str]) -> int:
    """Forget breaches that no longer hold, so the next occurrence raises again."""
    if not keys:
        return 0
    deleted, _ = BreachLatch.objects.filter(key__in=keys).delete()
    return deleted
