"""Moving exposure: the one place that changes the counters, under the locks of `risk.selectors.lock_scope`.

Every transition computes what a position holds afterwards (`risk.engine.holding.held_notional`) and moves the
portfolio, symbol, correlation-group and account counters by the difference with F() expressions, in the lock
order. Applying differences (never recomputed totals) keeps the counters equal to the sum over positions.
"""

from decimal import Decimal

from django.db.models import F

from accounts.models import TradingInstance
from risk.engine.holding import Holding, held_notional
from risk.models import CorrelationGroup, Portfolio, SymbolExposure
from risk.selectors import LockedScope
from trading.models import Position, PositionStatus

ACTIVE_STATUSES = frozenset({PositionStatus.PENDING_APPROVAL, PositionStatus.APPROVED, PositionStatus.OPEN})
ZERO = Decimal(0)


def counters_move(*, scope: LockedScope, notional_delta: Decimal, count_delta: int) -> None:
    """Add `notional_delta` exposure and `count_delta` positions to every counter of the locked scope."""
    if not notional_delta and not count_delta:
        return
    Portfolio.objects.filter(pk=scope.portfolio.pk).update(
        exposure=F("exposure") + notional_delta, position_count=F("position_count") + count_delta
    )
    if scope.symbol_row is not None:
        SymbolExposure.objects.filter(pk=scope.symbol_row.pk).update(
            exposure=F("exposure") + notional_delta, position_count=F("position_count") + count_delta
        )
    if scope.group is not None and notional_delta:
        CorrelationGroup.objects.filter(pk=scope.group.pk).update(exposure=F("exposure") + notional_delta)
    TradingInstance.objects.filter(pk=scope.account.pk).update(
        exposure=F("exposure") + notional_delta, position_count=F("position_count") + count_delta
    )


def holding_of(position: Position, *, unfilled_released: bool | None = None) -> Holding:
    """The position's quantities as the engine's `Holding`."""
    released = position.unfilled_released_at is not None if unfilled_released is None else unfilled_released
    return Holding(
        checked_notional=position.checked_notional,
        quantity=position.quantity,
        filled_quantity=position.filled_quantity,
        closed_quantity=position.closed_quantity,
        entry_price=position.entry_price,
        unfilled_released=released,
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
