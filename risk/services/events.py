"""Live events of the risk app: risk events (persisted) and position changes, published after commit (the
emergency latch lives in risk.services.equity)."""

from typing import Any

from nija.events import publish_on_commit
from risk.models import RiskEvent
from risk.outputs import position_event_json, risk_event_json
from trading.models import Position


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


def position_published(position: Position) -> None:
    """Tell the dashboard (every figure) and the position's own bot (no portfolio-wide figure), once the
    surrounding transaction commits."""
    publish_on_commit(
        event_type="position",
        data=position_event_json(position, operator=True),
        account_id=position.instance_id,
        account_data=position_event_json(position, operator=False),
    )
