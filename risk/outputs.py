"""The JSON of each risk resource, built in one place for every reader: the API's answers, the live events the services
publish after commit, and the monitoring endpoints that embed them.

Plain functions over rows (no web framework: services call them to publish). What only the API renders (limits,
account equity, trades) keeps Decimals and datetimes, which the API's renderer writes as strings; what also leaves
as a stream event (risk events, trading states, positions) carries ISO strings for times. Positions are rendered by
the API's `PositionOutput` (bodies) and `position_event_json` (stream events, amounts as strings); the check's
answer stays hand-built in risk/api.py (`outcome_json`), on the hot path.
"""

from typing import Any

from accounts.models import TradingInstance
from risk.models import RiskEvent, RiskLimits, TradingState
from risk.reasons import reasons_for
from trading.models import Position, Trade


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


def trading_state_json(state: TradingState | None) -> dict[str, Any]:
    """A trading state; None is the portfolio without a row (never after the data migrations): ACTIVE, which is
    what the check path assumes without one."""
    if state is None:
        return {
            "scope": "portfolio",
            "account_id": None,
            "state": "active",
            "reason": "",
            "changed_by": None,
            "changed_at": None,
        }
    return {
        "scope": "account" if state.instance_id else "portfolio",
        "account_id": state.instance_id,
        "state": state.state,
        "reason": state.reason,
        "changed_by": state.changed_by.get_username() if state.changed_by_id else None,
        "changed_at": state.changed_at.isoformat() if state.changed_at else None,
    }


def limits_json(row: RiskLimits, *, overrides_only: bool = False) -> dict[str, Any]:
    """Every limit of the row; for an account's override, only the fields it sets (the rest fall back)."""
    values = {name: getattr(row, name) for name in RiskLimits.LIMIT_FIELDS}
    if overrides_only:
        values = {name: value for name, value in values.items() if value is not None}
    return values


def account_equity_json(account: TradingInstance) -> dict[str, Any]:
    return {
        "account_id": account.pk,
        "equity": account.equity,
        "peak_equity": account.peak_equity,
        "day_start_equity": account.day_start_equity,
        "equity_reported_at": account.equity_reported_at,
    }


def trade_json(trade: Trade) -> dict[str, Any]:
    return {
        "id": trade.pk,
        "position_id": trade.position_id,
        "client_close_id": trade.client_close_id,
        "quantity": trade.quantity,
        "entry_price": trade.entry_price,
        "exit_price": trade.exit_price,
        "pnl": trade.pnl,
        "fees": trade.fees,
        "closed_at": trade.closed_at,
    }


def position_event_json(position: Position, *, operator: bool) -> dict[str, Any]:
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
