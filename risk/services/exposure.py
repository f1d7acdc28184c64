"""Moving exposure: the one place that changes the counters, under the locks the caller holds
(`risk.locks.lock_scope`, or `risk.locks.lock_check_scope` on the check path's locked fallback), or under the locks
its one statement takes (`position_reserve_verified`, the check's reservation of a decision made on a snapshot).

Every transition computes what a position holds afterwards (`risk.engine.holding.held_notional`) and moves the
portfolio, symbol, correlation-group and account counters by the difference (`x = x + delta`), in one SQL statement,
rows in the lock order. Applying differences (never recomputed totals) keeps the counters equal to the sum over
positions.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils.dateparse import parse_datetime

from nija.api.parsers import loads_decimal
from risk.defaults import PORTFOLIO_ID
from risk.engine.bounds import CounterBounds
from risk.engine.holding import Holding, held_notional
from risk.selectors import CheckScope, LockedScope
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


_REJECTION_INSERT = (
    "SELECT set_config('lock_timeout', %(lock_timeout)s, true), "
    "set_config('statement_timeout', %(statement_timeout)s, true); " + _INSERT_POSITION
)


def _insert_params(position: Position) -> dict[str, object]:
    return {
        f.column: json.dumps(position.reasons) if f.attname == "reasons" else getattr(position, f.attname)
        for f in POSITION_COLUMNS
    }


def position_insert(*, scope: LockedScope, position: Position, reserve: bool) -> int:
    """Insert a checked position and, when it reserves, add its notional and one position to every counter: one
    statement, one round trip, under the check's locks (the ORM's create plus the counter update cost two round
    trips and more Python while every other check waits on the portfolio lock). Returns the new position id."""
    params = _insert_params(position)
    if reserve:
        params |= _counter_params(scope, position.notional, 1)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_POSITION_RESERVING if reserve else _INSERT_POSITION, params)
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class Reservation:
    """What the reserving statement did. `position_id` is the new position's (None: the snapshot no longer held and
    nothing was written); `clock` is PostgreSQL's once the rows were locked (the position's decision time);
    `held_seconds` how long it held them before its COMMIT, measured by PostgreSQL (the COMMIT's WAL flush follows,
    then the rows are free); `account_exposure` the account's exposure after."""

    held_seconds: float
    position_id: int | None = None
    clock: datetime | None = None
    account_exposure: Decimal | None = None


_TIMEOUTS_SQL = "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true); "
_RESERVE_VERIFIED_SQL = _TIMEOUTS_SQL + "SELECT risk_check_reserve(%s, %s, %s, %s, %s, %s, %s, %s, %s)"


def _timeouts() -> list[str]:
    return [f"{settings.RISK_LOCK_TIMEOUT_MS}ms", f"{settings.RISK_STATEMENT_TIMEOUT_MS}ms"]


def position_reserve_verified(
    *, snapshot: CheckScope, bounds: CounterBounds, position: Position, fresh_until: datetime, ttl: timedelta
) -> Reservation:
    """Reserve `position`, approved on `snapshot`, in one statement (`risk_check_reserve`, migrations risk 0012 and
    0013): it locks the rows in the declared order, verifies that nothing but the counters changed since the
    snapshot, that the account's equity report is fresh until `fresh_until` and the counters are within `bounds` (so
    the decision is still the decision: risk.engine.bounds), then inserts the position and moves every counter. When
    any of that does not hold it writes no position and moves no counter (it may have created the symbol's counter
    row, on the symbol's first check). Outside a transaction the statement commits itself on the same round trip: no
    Python runs while the rows are locked. The lock and statement timeouts apply as on every locked path."""
    params = [
        *_timeouts(),
        PORTFOLIO_ID,
        position.instance_id,
        position.symbol,
        position.client_order_id,
        snapshot.inputs_digest,
        fresh_until,
        json.dumps(_bounds_json(bounds)),
        ttl,
        json.dumps(_position_json(position)),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_RESERVE_VERIFIED_SQL, params)
        (text,) = cursor.fetchone()
    answer = loads_decimal(text)
    held = max(float(answer["held"]), 0.0)
    if answer["outcome"] != "reserved":
        return Reservation(held_seconds=held)
    return Reservation(
        held_seconds=held,
        position_id=answer["id"],
        clock=parse_datetime(answer["clock"]),
        account_exposure=answer["account_exposure"],
    )


def rejection_insert(*, position: Position) -> int:
    """Record a rejected check (it reserves nothing, so it takes no row lock of its own), with the lock and
    statement timeouts every check path has: its foreign keys still wait on rows another transaction holds, and
    the gate fails closed (503) past them. One round trip. Returns the new position id."""
    params = dict(zip(("lock_timeout", "statement_timeout"), _timeouts(), strict=True)) | _insert_params(position)
    with connection.cursor() as cursor:
        cursor.execute(_REJECTION_INSERT, params)
        return cursor.fetchone()[0]


def _bounds_json(bounds: CounterBounds) -> dict:
    """The bounds with every amount as a string (exact in PostgreSQL's numeric), counts as integers."""
    return {
        "notional": str(bounds.notional),
        "account_exposure_cap": str(bounds.account_exposure_cap),
        "portfolio_exposure_cap": str(bounds.portfolio_exposure_cap),
        "symbol_exposure_cap": _str_or_none(bounds.symbol_exposure_cap),
        "group_exposure_cap": _str_or_none(bounds.group_exposure_cap),
        "account_positions_limit": bounds.account_positions_limit,
        "portfolio_positions_limit": bounds.portfolio_positions_limit,
    }


def _position_json(position: Position) -> dict:
    """The new position's columns as JSON for `jsonb_populate_record`: amounts and times as strings (exact), the
    reasons as JSON. The statement sets the id and every time it decides."""
    return {field.column: _column_json(getattr(position, field.attname)) for field in POSITION_COLUMNS}


def _column_json(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _str_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


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
