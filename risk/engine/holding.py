"""What a position holds against the limits, over its life: pure arithmetic on plain Decimals.

A position's notional is the n it was checked with while nothing is filled; each fill re-fixes the filled part at
the fill price (volume-weighted entry); the unfilled rest keeps its share of the checked n until it is filled,
released (reservation TTL, cancel, halt) or the position is closed; closes shrink the filled part. The services
compare the new holding with the stored one and move every counter by the difference, so the counters always equal
the sum over positions.
"""

from dataclasses import dataclass
from decimal import Decimal

from risk.engine.money import _UP, EIGHT_PLACES, ZERO, add, mul, quantize_up, round8, sub


@dataclass(frozen=True, slots=True)
class Holding:
    """The quantities that decide a position's notional."""

    checked_notional: Decimal
    quantity: Decimal
    filled_quantity: Decimal = ZERO
    closed_quantity: Decimal = ZERO
    entry_price: Decimal | None = None
    unfilled_released: bool = False

    @property
    def open_quantity(self) -> Decimal:
        """Filled and not yet closed."""
        return sub(self.filled_quantity, self.closed_quantity)

    @property
    def unfilled_quantity(self) -> Decimal:
        return sub(self.quantity, self.filled_quantity)


def held_notional(holding: Holding) -> Decimal:
    """The exposure the position holds now: open filled quantity at entry, plus the unreleased unfilled share."""
    filled_part = ZERO
    if holding.open_quantity > 0 and holding.entry_price is not None:
        filled_part = quantize_up(mul(holding.open_quantity, holding.entry_price))
    unfilled_part = ZERO
    if not holding.unfilled_released and holding.unfilled_quantity > 0:
        share = _UP.divide(mul(holding.checked_notional, holding.unfilled_quantity), holding.quantity)
        unfilled_part = _UP.quantize(share, EIGHT_PLACES)
    return add(filled_part, unfilled_part)


def volume_weighted_price(
    quantity_before: Decimal, price_before: Decimal | None, quantity_added: Decimal, price_added: Decimal
) -> Decimal:
    """The entry price after a fill: the volume-weighted average, rounded half-even to 8 decimals."""
    if quantity_before <= 0 or price_before is None:
        return price_added
    total = add(mul(quantity_before, price_before), mul(quantity_added, price_added))
    return round8(_UP.divide(total, add(quantity_before, quantity_added)))


def realized_pnl(*, side: str, quantity: Decimal, entry_price: Decimal, exit_price: Decimal, fees: Decimal) -> Decimal:
    """(exit - entry) x quantity for a long, (entry - exit) x quantity for a short, less fees (a rebate adds)."""
    move = sub(exit_price, entry_price) if side == "long" else sub(entry_price, exit_price)
    return sub(mul(move, quantity), fees)
