"""Live events of the risk app: risk events (persisted) and position changes, published after commit (the
emergency latch lives in risk.services.equity)."""

from typing import Any

from nija.events import publish_on_commit
from risk.models import RiskEvent
from risk.reasons import reasons_for
from trading.models import Position


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


def position_event(position: Position, *, operator: bool) -> dict[str, Any]:
    """The `position` event's payload (SSE), amounts as strings, its reasons as the viewer may see them."""
    return {
        "position_id": position.pk,
        "account_id": position.instance_id,
        "symbol": position.symbol,
        "side": position.side,
        "status": position.status,
        "quantity": str(position.quantity),
        "notional": str(position.notional),
        "reasons": reasons_for(position.reasons, operator=operator),
    }


def position_published(position: Position) -> None:
    """Tell the dashboard (every figure) and the position's own bot (no portfolio-wide figure), once the
    surrounding transaction commits."""
    publish_on_commit(
        event_type="position",
        data=position_event(position, operator=True),
        account_id=position.instance_id,
        account_data=position_event(position, operator=False),
    )
