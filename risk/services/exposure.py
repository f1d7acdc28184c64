"""Moving exposure: the one place that changes the counters, under the locks the caller holds
(`risk.locks.lock_scope`, or `risk.locks.lock_check_scope` on the check path).

Every transition computes what a position holds afterwards (`risk.engine.holding.held_notional`) and moves the
portfolio, symbol, correlation-group and account counters by the difference (`x = x + delta`), in one SQL statement,
rows in the lock order. Applying differences (never recomputed totals) keeps the counters equal to the sum over
positions.
"""

import json
from decimal import Decimal

from django.db import connection

from risk.engine.holding import Holding, held_notional
from risk.selectors import LockedScope
from trading.models import Position, PositionStatus

ACTIVE_STATUSES = frozenset({PositionStatus.PENDING_APPROVAL, PositionStatus.APPROVED, PositionStatus.OPEN})
ZERO = Decimal(0)


# Every counter in one statement (data-modifying CTEs), so moving exposure costs one round trip while the
# portfolio lock is held. Rows are updated in the lock order; a NULL symbol or group matches no row.
_COUNTER_CTES = """
portfolio AS (
    UPDATE risk_portfolio SET exposure = exposure + %(notional)s, position_count = position_count + %(count)s
    WHERE id = %(portfolio_id)s RETURNING id
), symbol AS (
    UPDATE risk_symbolexposure SET exposure = exposure + %(notional)s, position_count = position_count + %(count)s,
        updated_at = now()
    WHERE symbol = %(symbol)s RETURNING symbol
), correlation_group AS (
    UPDATE risk_correlationgroup SET exposure = exposure + %(notional)s WHERE id = %(group_id)s RETURNING id
), account AS (
    UPDATE accounts_tradinginstance
    SET exposure = exposure + %(notional)s, position_count = position_count + %(count)s
    WHERE id = %(account_id)s RETURNING id
)"""
_COUNTERS_MOVE_SQL = f"WITH {_COUNTER_CTES} SELECT 1"


def _counter_params(scope: LockedScope, notional_delta: Decimal, count_delta: int) -> dict:
    return {
        "notional": notional_delta,
        "count": count_delta,
        "portfolio_id": scope.portfolio.pk,
        "symbol": scope.symbol_row.pk if scope.symbol_row is not None else None,
        "group_id": scope.group.pk if scope.group is not None else None,
        "account_id": scope.account.pk,
    }


def counters_move(*, scope: LockedScope, notional_delta: Decimal, count_delta: int) -> None:
    """Add `notional_delta` exposure and `count_delta` positions to every counter of the locked scope."""
    if not notional_delta and not count_delta:
        return
    with connection.cursor() as cursor:
        cursor.execute(_COUNTERS_MOVE_SQL, _counter_params(scope, notional_delta, count_delta))


# The position INSERT, built once from the model's own columns (never from input; values are parameters).
POSITION_COLUMNS = tuple(f for f in Position._meta.concrete_fields if not f.primary_key)
_INSERT_POSITION = "INSERT INTO {table} ({names}) VALUES ({values}) RETURNING id".format(  # noqa: S608
    table=Position._meta.db_table,
    names=", ".join(f.column for f in POSITION_COLUMNS),
    values=", ".join(f"%({f.column})s" for f in POSITION_COLUMNS),
)
_INSERT_POSITION_RESERVING = f"WITH new_position AS ({_INSERT_POSITION}), {_COUNTER_CTES} SELECT id FROM new_position"  # noqa: S608


def position_insert(*, scope: LockedScope, position: Position, reserve: bool) -> int:
    """Insert a checked position and, when it reserves, add its notional and one position to every counter: one
    statement, one round trip, under the check's locks (the ORM's create plus the counter update cost two round
    trips and more Python while every other check waits on the portfolio lock). Returns the new position id."""
    params: dict[str, object] = {
        f.column: json.dumps(position.reasons) if f.attname == "reasons" else getattr(position, f.attname)
        for f in POSITION_COLUMNS
    }
    if reserve:
        params |= _counter_params(scope, position.notional, 1)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_POSITION_RESERVING if reserve else _INSERT_POSITION, params)
        return cursor.fetchone()[0]


def holding_of(position: Position) -> Holding:
    """The position's quantities as the engine's `Holding`."""
    return Holding(
        checked_notional=position.checked_notional,
        quantity=position.quantity,
        filled_quantity=position.filled_quantity,
        closed_quantity=position.closed_quantity,
        open_cost=position.open_cost,
        unfilled_released=position.unfilled_released_at is not None,
    )


def position_rehold(*, scope: LockedScope, position: Position, was_active: bool) -> Decimal:
    """After a transition changed `position` in memory: set its notional to what it now holds and move the
    counters by the difference (and by one position if it entered or left the active set). Returns the delta.

    A position outside the active set (closed, rejected, expired, cancelled) holds nothing.
    """
    is_active = position.status in ACTIVE_STATUSES
    held_before = position.notional if was_active else ZERO
    held_after = held_notional(holding_of(position)) if is_active else ZERO
    if is_active:
        position.notional = held_after
    delta = held_after - held_before
    counters_move(scope=scope, notional_delta=delta, count_delta=int(is_active) - int(was_active))
    return delta
