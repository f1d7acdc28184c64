"""A reserved position's life after the check: fill, close, cancel and expiry, each idempotent.

Each transition locks the scope (portfolio, symbol, group, account: `risk.locks.lock_scope`) and then the
position row, changes the position, and moves every counter by what the position now holds
(`risk.services.exposure.position_rehold`). A fill is keyed by its exchange order id, a close by its client close
id, a cancel by its position: the same call twice changes nothing the second time; the same key with a different
body is a 409, and so is a transition the position's status does not allow.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from risk import locks, selectors
from risk.engine.holding import OpenBook, average_price, book_close, book_fill, volume_weighted_price
from risk.errors import IdempotencyConflict, IllegalTransition, PositionNotFound, QuantityExceeded
from risk.models import Severity
from risk.services.day import locked_now
from risk.services.events import position_published, risk_event_raise
from risk.services.exposure import ACTIVE_STATUSES, position_rehold
from trading.models import DailyStatistic, Fill, Position, PositionStatus, Trade

CANCELLABLE = frozenset({PositionStatus.PENDING_APPROVAL, PositionStatus.APPROVED})


@dataclass(frozen=True)
class FillInput:
    exchange_order_id: str
    quantity: Decimal
    price: Decimal
    fees: Decimal = Decimal(0)


@dataclass(frozen=True)
class CloseInput:
    client_close_id: str
    exit_price: Decimal
    fees: Decimal = Decimal(0)
    quantity: Decimal | None = None  # None: everything still open


@dataclass(frozen=True)
class LockedPosition:
    scope: selectors.LockedScope
    position: Position


def lock_position(*, position_id: int, instance_id: int | None) -> LockedPosition:
    """Lock the position's scope in the fixed order, then the position row itself. `instance_id` restricts the
    lookup to one account (a bot's own); another account's position is simply not found."""
    locks.set_lock_timeouts()
    lookup = Position.objects.filter(pk=position_id)
    if instance_id is not None:
        lookup = lookup.filter(instance_id=instance_id)
    located = lookup.values("instance_id", "symbol").first()
    if located is None:
        raise PositionNotFound()
    scope = locks.lock_scope(instance_id=located["instance_id"], symbol=located["symbol"])
    position = Position.objects.select_for_update().get(pk=position_id)
    return LockedPosition(scope=scope, position=position)


def position_fill(
    *, position_id: int, instance_id: int | None, fill: FillInput, now: datetime | None = None
) -> Position:
    """Record an exchange fill: the position opens and its open cost grows by the fill's value. A fill within the
    checked quantity of an approved order is always recorded, even after the unfilled rest was released (it
    happened at the exchange): it then adds its exposure without a check and raises a warning event. Replaying the
    same exchange order id changes nothing. `now` None: the clock read under the portfolio lock (an explicit time
    is clamped the same way: never before the UTC day already rolled)."""
    with transaction.atomic():
        locked = lock_position(position_id=position_id, instance_id=instance_id)
        now = locked_now(scope=locked.scope, requested=now)
        position = locked.position
        existing = Fill.objects.filter(
            instance_id=position.instance_id, exchange_order_id=fill.exchange_order_id
        ).first()
        if existing is not None:
            _ensure_same_fill(existing, position, fill)
            return position
        _ensure_fillable(position, fill.quantity)
        was_active = position.status in ACTIVE_STATUSES
        _apply_fill(position, fill=fill, now=now)
        added = position_rehold(scope=locked.scope, position=position, was_active=was_active)
        position.save(update_fields=[*BOOK_FIELDS, "filled_quantity", "status", "opened_at", "closed_at", "notional"])
        Fill.objects.create(
            position=position,
            instance_id=position.instance_id,
            exchange_order_id=fill.exchange_order_id,
            quantity=fill.quantity,
            price=fill.price,
            fees=fill.fees,
            filled_at=now,
        )
        if position.unfilled_released_at is not None:
            _warn_fill_after_release(position, fill=fill, added=added)
        position_published(position)
    return position


# The columns a fill or a close changes in the position's books.
BOOK_FIELDS = ("open_cost", "open_entry_fees", "entry_price", "fees", "updated_at")


def open_book(position: Position) -> OpenBook:
    return OpenBook(
        quantity=position.filled_quantity - position.closed_quantity,
        cost=position.open_cost,
        entry_fees=position.open_entry_fees,
    )


def _apply_fill(position: Position, *, fill: FillInput, now: datetime) -> None:
    book = book_fill(open_book(position), quantity=fill.quantity, price=fill.price, fees=fill.fees)
    position.open_cost, position.open_entry_fees = book.cost, book.entry_fees
    position.entry_price = average_price(book)
    position.filled_quantity += fill.quantity
    position.fees += fill.fees
    position.status = PositionStatus.OPEN
    position.opened_at = position.opened_at or now
    position.closed_at = None


def _warn_fill_after_release(position: Position, *, fill: FillInput, added: Decimal) -> None:
    risk_event_raise(
        event_type="fill_after_release",
        severity=Severity.WARNING,
        instance_id=position.instance_id,
        message=(
            f"Position #{position.pk} ({position.symbol}) was filled {fill.quantity} @ {fill.price} after its unfilled"
            f" reservation was released: {added} of exposure added without a check."
        ),
        details={
            "position_id": position.pk,
            "exchange_order_id": fill.exchange_order_id,
            "quantity": str(fill.quantity),
            "price": str(fill.price),
            "exposure_added": str(added),
        },
    )


def _ensure_same_fill(existing: Fill, position: Position, fill: FillInput) -> None:
    same = (
        existing.position_id == position.pk
        and existing.quantity == fill.quantity
        and existing.price == fill.price
        and existing.fees == fill.fees
    )
    if not same:
        raise IdempotencyConflict("This exchange order id was already reported with a different fill.")


def _ensure_fillable(position: Position, quantity: Decimal) -> None:
    """Approved orders only (a pending or rejected check placed none), within the checked quantity."""
    if position.approved_at is None:
        raise IllegalTransition(f"A {position.status} position was never approved: there is no order to fill.")
    if position.filled_quantity + quantity > position.quantity:
        unfilled = position.quantity - position.filled_quantity
        raise QuantityExceeded(f"Fill quantity {quantity} exceeds the unfilled checked quantity {unfilled}.")


def position_close(
    *, position_id: int, instance_id: int | None, close: CloseInput, now: datetime | None = None
) -> Trade:
    """Close all or part of what is open: writes a `Trade` with its realized P&L, releases the exposure, updates
    the statistics of the UTC day it acts in. Accepted in every trading state, HALTED included. The unfilled rest of
    the order stays reserved (the order may still be live at the exchange); the position closes once nothing is
    open and nothing is reserved. Replaying the same client close id returns the original trade. `now` as for a
    fill."""
    with transaction.atomic():
        locked = lock_position(position_id=position_id, instance_id=instance_id)
        now = locked_now(scope=locked.scope, requested=now)
        position = locked.position
        existing = Trade.objects.filter(instance_id=position.instance_id, client_close_id=close.client_close_id).first()
        if existing is not None:
            _ensure_same_close(existing, position, close)
            return existing
        quantity = _close_quantity(position, close)
        trade = _close_apply(locked, quantity=quantity, close=close, now=now)
        position_published(position)
    return trade


def _ensure_same_close(existing: Trade, position: Position, close: CloseInput) -> None:
    same = (
        existing.position_id == position.pk
        and existing.exit_price == close.exit_price
        and existing.fees == close.fees
        and (close.quantity is None or existing.quantity == close.quantity)
    )
    if not same:
        raise IdempotencyConflict("This client close id was already used with a different close.")


def _close_quantity(position: Position, close: CloseInput) -> Decimal:
    open_quantity = position.filled_quantity - position.closed_quantity
    if position.status != PositionStatus.OPEN or open_quantity <= 0:
        raise IllegalTransition(f"A {position.status} position has nothing open to close.")
    quantity = open_quantity if close.quantity is None else close.quantity
    if quantity > open_quantity:
        raise QuantityExceeded(f"Close quantity {quantity} exceeds the open quantity {open_quantity}.")
    return quantity


def _close_apply(locked: LockedPosition, *, quantity: Decimal, close: CloseInput, now: datetime) -> Trade:
    position = locked.position
    before = open_book(position)
    booked = book_close(before, side=position.side, quantity=quantity, exit_price=close.exit_price, fees=close.fees)
    position.open_cost, position.open_entry_fees = booked.remaining.cost, booked.remaining.entry_fees
    position.entry_price = average_price(booked.remaining) or position.entry_price
    position.exit_price = volume_weighted_price(
        position.closed_quantity, position.exit_price, quantity, close.exit_price
    )
    position.closed_quantity += quantity
    position.realized_pnl += booked.pnl
    position.fees += close.fees
    _close_if_nothing_held(position, now=now)
    position_rehold(scope=locked.scope, position=position, was_active=True)
    position.save(
        update_fields=[*BOOK_FIELDS, "exit_price", "closed_quantity", "realized_pnl", "status", "closed_at", "notional"]
    )
    trade = Trade.objects.create(
        instance_id=position.instance_id,
        position=position,
        symbol=position.symbol,
        side=position.side,
        quantity=quantity,
        entry_price=average_price(before),
        exit_price=close.exit_price,
        pnl=booked.pnl,
        fees=close.fees,
        client_close_id=close.client_close_id,
        closed_at=now,
    )
    daily_statistic_add_trade(scope=locked.scope, pnl=booked.pnl, now=now)
    return trade


def _close_if_nothing_held(position: Position, *, now: datetime) -> None:
    """An open position with nothing open and nothing reserved (filled in full, or its rest released) is closed."""
    nothing_open = position.filled_quantity == position.closed_quantity
    nothing_reserved = position.filled_quantity == position.quantity or position.unfilled_released_at is not None
    if position.status == PositionStatus.OPEN and nothing_open and nothing_reserved:
        position.status = PositionStatus.CLOSED
        position.closed_at = now


def daily_statistic_add_trade(*, scope: selectors.LockedScope, pnl: Decimal, now: datetime) -> None:
    """Count a closed trade in the account's statistics of the UTC day (the row is created on first use)."""
    account = scope.account
    DailyStatistic.objects.get_or_create(
        instance_id=account.pk,
        date=now.date(),
        defaults={"start_equity": account.day_start_equity, "end_equity": account.equity},
    )
    win = pnl > 0
    DailyStatistic.objects.filter(instance_id=account.pk, date=now.date()).update(
        realized_pnl=F("realized_pnl") + pnl,
        trades=F("trades") + 1,
        wins=F("wins") + int(win),
        losses=F("losses") + int(pnl < 0),
        gross_profit=F("gross_profit") + (pnl if win else 0),
        gross_loss=F("gross_loss") + (-pnl if pnl < 0 else 0),
    )


def position_cancel(*, position_id: int, instance_id: int | None, now: datetime | None = None) -> Position:
    """Release what is reserved and unfilled. Pending or approved: the position is cancelled. Open with an
    unfilled rest: the rest is released, the filled part stays open (nothing open: the position closes).
    Cancelling again changes nothing. `now` as for a fill."""
    with transaction.atomic():
        locked = lock_position(position_id=position_id, instance_id=instance_id)
        now = locked_now(scope=locked.scope, requested=now)
        position = locked.position
        if reservation_release(locked, now=now, final_status=PositionStatus.CANCELLED):
            position_published(position)
        elif position.status not in (PositionStatus.CANCELLED, PositionStatus.OPEN):
            raise IllegalTransition(f"A {position.status} position cannot be cancelled.")
    return position


def reservation_release(locked: LockedPosition, *, now: datetime, final_status: str) -> bool:
    """Release the unfilled reservation of a locked position (cancel, expiry, halt). Returns False when there was
    nothing to release. Unfilled pending/approved positions end in `final_status`; an open one whose filled part
    is all closed has nothing left and closes."""
    position = locked.position
    if position.status in CANCELLABLE:
        position.status = final_status
    elif not (
        position.status == PositionStatus.OPEN
        and position.unfilled_released_at is None
        and position.filled_quantity < position.quantity
    ):
        return False
    position.unfilled_released_at = now
    _close_if_nothing_held(position, now=now)
    position_rehold(scope=locked.scope, position=position, was_active=True)
    position.save(update_fields=["status", "unfilled_released_at", "closed_at", "notional", "updated_at"])
    return True


def position_expire(*, position_id: int, now: datetime) -> bool:
    """Expire one reservation past its deadline (re-checked under the lock: a fill may have won the race)."""
    with transaction.atomic():
        locked = lock_position(position_id=position_id, instance_id=None)
        deadline = locked.position.reservation_expires_at
        if deadline is None or deadline > now:
            return False
        released = reservation_release(locked, now=now, final_status=PositionStatus.EXPIRED)
        if released:
            position = locked.position
            position_published(position)
    return released


def reservations_expire(*, now: datetime, batch_size: int = 500) -> int:
    """Expire every reservation past its deadline, one short transaction each (the beat task's body)."""
    expired = 0
    for position_id in selectors.expired_reservation_ids(now=now, limit=batch_size):
        expired += int(position_expire(position_id=position_id, now=now))
    return expired
