"""Decimal arithmetic of the engine: exact where a rule decides, explicitly rounded where a figure is reported.

Why explicit contexts: Python's decimal arithmetic uses the calling thread's context, which any library may
change (a lower precision would silently round a limit). The engine therefore never relies on it:

- `EXACT` decides every rule. Its precision (64 digits) holds any product or sum of NUMERIC(18,8) values, and it
  traps `Inexact`, so an input outside that range raises `decimal.Inexact` instead of being rounded into a wrong
  decision.
- `quantize_up` / `quantize_down` put a value on the 8-decimal grid of NUMERIC(18,8): up for a notional (the
  reservation never understates the risk), down for a ceiling shown to the user, up for a floor shown to the user.
  On that grid `n > L` holds exactly when `n > quantize_down(L)`, and `loss >= L` exactly when
  `loss >= quantize_up(L)`, so the reported limits are the ones actually enforced.
- `ratio` divides for reports only (exposure pct, drawdown, win rate), rounded half-even to 8 decimals.
"""

from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

ZERO = Decimal(0)
EIGHT_PLACES = Decimal("0.00000001")

EXACT = Context(prec=64, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Inexact, Overflow, DivisionByZero])
_UP = Context(prec=64, rounding=ROUND_UP, traps=[InvalidOperation, Overflow, DivisionByZero])
_DOWN = Context(prec=64, rounding=ROUND_DOWN, traps=[InvalidOperation, Overflow, DivisionByZero])
_REPORT = Context(prec=64, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Overflow, DivisionByZero])

# Bound methods of the exact context: the hot path calls them without an attribute lookup.
mul = EXACT.multiply
add = EXACT.add
sub = EXACT.subtract


def quantize_up(value: Decimal) -> Decimal:
    """`value` on the 8-decimal grid, rounded away from zero (a notional, a floor shown to the user)."""
    return _UP.quantize(value, EIGHT_PLACES)


def quantize_down(value: Decimal) -> Decimal:
    """`value` on the 8-decimal grid, rounded toward zero (a ceiling shown to the user)."""
    return _DOWN.quantize(value, EIGHT_PLACES)


def round8(value: Decimal) -> Decimal:
    """`value` on the 8-decimal grid, rounded half-even: a reported figure, never a decision."""
    return _REPORT.quantize(value, EIGHT_PLACES)


def ratio_down(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator rounded toward zero to 8 decimals: a reported fraction that reached a limit.

    Rounding toward zero never shows a value below a limit the exact comparison found it reached (limits have at
    most 8 decimals). The denominator must not be zero.
    """
    return _DOWN.quantize(_DOWN.divide(numerator, denominator), EIGHT_PLACES)


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator / denominator rounded to 8 decimals for a report; None when the denominator is zero."""
    if not denominator:
        return None
    return _REPORT.quantize(_REPORT.divide(numerator, denominator), EIGHT_PLACES)
