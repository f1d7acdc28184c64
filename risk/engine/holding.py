"""What a position holds and what its closes book: pure arithmetic on plain Decimals.

The books of a position keep the exact cost of what is open, never a rounded average price:

- The value of a quantity at a price is quantity x price rounded up to 8 decimals (`value_at`), the way the check
  prices n: a fill adds the value of its quantity at its price to the open cost, and its fees to the open entry fees.
- A close takes the closed share of the open cost and of the open entry fees (rounded toward zero, so what stays
  open keeps a positive cost) and books realized P&L = proceeds - that cost - its own fees - that share of the entry
  fees, for a long (cost - proceeds - fees for a short). The close that leaves nothing open takes the whole
  remainder, so the closes of a position add up to its cash P&L exactly: proceeds - costs - every fee.
- A fill after a partial close averages the new lots with what is still open, never with what was closed.

What a position holds against the limits (`held_notional`) is its open cost plus, until it is filled or released
(reservation TTL, cancel, halt, deactivation, watchdog), the unfilled rest's share of the checked n. The services
compare the new holding with the stored one and move every counter by the difference, so the counters always equal
the sum over positions.
"""

from dataclasses import dataclass
from decimal import Decimal

from risk.engine.money import _DOWN, _UP, EIGHT_PLACES, ZERO, add, mul, quantize_up, ratio, round8, sub


@dataclass(frozen=True, slots=True)
class Holding:
    """The quantities that decide a position's notional."""

    checked_notional: Decimal
    quantity: Decimal
    filled_quantity: Decimal = ZERO
    closed_quantity: Decimal = ZERO
    open_cost: Decimal = ZERO
    unfilled_released: bool = False

    @property
    def open_quantity(self) -> Decimal:
        """Filled and not yet closed."""
        return sub(self.filled_quantity, self.closed_quantity)

    @property
    def unfilled_quantity(self) -> Decimal:
        return sub(self.quantity, self.filled_quantity)


def held_notional(holding: Holding) -> Decimal:
    """The exposure the position holds now: the cost of what is open, plus the unreleased unfilled share of n."""
    unfilled_part = ZERO
    if not holding.unfilled_released and holding.unfilled_quantity > 0:
        share = _UP.divide(mul(holding.checked_notional, holding.unfilled_quantity), holding.quantity)
        unfilled_part = _UP.quantize(share, EIGHT_PLACES)
    return add(holding.open_cost, unfilled_part)


def value_at(quantity: Decimal, price: Decimal) -> Decimal:
    """quantity x price on the 8-decimal grid, rounded up: a fill's cost, a close's proceeds."""
    return quantize_up(mul(quantity, price))


@dataclass(frozen=True, slots=True)
class OpenBook:
    """What is open: its quantity, its exact cost and the entry fees not yet booked by a close."""

    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    entry_fees: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class BookedClose:
    """One close: the cost and entry fees it took from the open book, its P&L, and what stays open."""

    cost: Decimal
    entry_fees: Decimal
    pnl: Decimal
    remaining: OpenBook


def book_fill(book: OpenBook, *, quantity: Decimal, price: Decimal, fees: Decimal) -> OpenBook:
    """The open book after a fill of `quantity` at `price` paying `fees`."""
    return OpenBook(
        quantity=add(book.quantity, quantity),
        cost=add(book.cost, value_at(quantity, price)),
        entry_fees=add(book.entry_fees, fees),
    )


def book_close(book: OpenBook, *, side: str, quantity: Decimal, exit_price: Decimal, fees: Decimal) -> BookedClose:
    """Close `quantity` (at most what is open) at `exit_price` paying `fees`; the last close takes the remainder."""
    if quantity == book.quantity:
        cost, entry_fees = book.cost, book.entry_fees
    else:
        cost = _share(book.cost, quantity, book.quantity)
        entry_fees = _share(book.entry_fees, quantity, book.quantity)
    proceeds = value_at(quantity, exit_price)
    gain = sub(proceeds, cost) if side == "long" else sub(cost, proceeds)
    remaining = OpenBook(
        quantity=sub(book.quantity, quantity), cost=sub(book.cost, cost), entry_fees=sub(book.entry_fees, entry_fees)
    )
    return BookedClose(cost=cost, entry_fees=entry_fees, pnl=sub(sub(gain, fees), entry_fees), remaining=remaining)


def _share(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """amount x part / whole on the 8-decimal grid, rounded toward zero (what stays open keeps the rest)."""
    return _DOWN.quantize(_DOWN.divide(mul(amount, part), whole), EIGHT_PLACES)


def average_price(book: OpenBook) -> Decimal | None:
    """The open cost over the open quantity (half-even, 8 decimals): the entry price shown; None when nothing is
    open. Never used to book anything."""
    return ratio(book.cost, book.quantity) if book.quantity > 0 else None


def volume_weighted_price(
    quantity_before: Decimal, price_before: Decimal | None, quantity_added: Decimal, price_added: Decimal
) -> Decimal:
    """The average of two prices weighted by quantity, rounded half-even to 8 decimals (the exit price shown)."""
    if quantity_before <= 0 or price_before is None:
        return price_added
    total = add(mul(quantity_before, price_before), mul(quantity_added, price_added))
    return round8(_UP.divide(total, add(quantity_before, quantity_added)))
