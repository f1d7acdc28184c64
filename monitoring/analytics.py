"""Desk analytics over plain values: correlation of accounts' daily returns, and the portfolio's historical
one-day value at risk and expected shortfall from its daily P&L.

Pure (no Django, no I/O). These are statistics about the books, not the books: a correlation coefficient is a
float in [-1, 1] (computed in float, from returns converted once), while VaR and expected shortfall stay Decimal,
being an observed day's P&L and the mean of a few of them.

Definitions:
- A daily return is (end equity - start equity) / start equity of one account's UTC day (days with no start
  equity have none). Two accounts are correlated over the days both have a return (Pearson's r); below
  `MIN_DAYS` common days, or when either series never moves, the coefficient is None, with the day count.
- Historical VaR at confidence c over n days of P&L: the loss of the k-th worst day, k = ceil(n x (1 - c))
  (at least 1): at least a (1 - c) share of the days lost that much or more. Expected shortfall: the mean loss
  of those k worst days. Both are positive for losses (a negative figure: even those days made money).
  Below `MIN_DAYS` days there is no figure, only the day count.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal

MIN_DAYS = 20
CONFIDENCES = (Decimal("0.95"), Decimal("0.99"))
_MEAN = Context(prec=64, rounding=ROUND_HALF_EVEN)
EIGHT_PLACES = Decimal("0.00000001")
ZERO = Decimal(0)


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's correlation coefficient of two equally long series; None when either has no variance."""
    n = len(xs)
    if n != len(ys):
        raise ValueError("series of different lengths")
    if n < 2:
        return None
    mean_x, mean_y = math.fsum(xs) / n, math.fsum(ys) / n
    dx = [x - mean_x for x in xs]
    dy = [y - mean_y for y in ys]
    sxx = math.fsum(d * d for d in dx)
    syy = math.fsum(d * d for d in dy)
    if sxx == 0 or syy == 0:
        return None
    r = math.fsum(a * b for a, b in zip(dx, dy, strict=True)) / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


@dataclass(frozen=True)
class CorrelationMatrix:
    """Square, in `account_ids` order: `coefficients[i][j]` over `days[i][j]` common days (None below MIN_DAYS).
    The diagonal is 1 for an account with enough days that moves, its own day count either way."""

    account_ids: tuple[int, ...]
    coefficients: tuple[tuple[float | None, ...], ...]
    days: tuple[tuple[int, ...], ...]


def correlation_matrix(returns: Mapping[int, Mapping[date, float]], *, min_days: int = MIN_DAYS) -> CorrelationMatrix:
    """Pairwise correlation of the accounts' daily returns over their common days (accounts in the given order)."""
    ids = tuple(returns)
    size = len(ids)
    coefficients: list[list[float | None]] = [[None] * size for _ in range(size)]
    days = [[0] * size for _ in range(size)]
    for i in range(size):
        for j in range(i, size):
            common = sorted(returns[ids[i]].keys() & returns[ids[j]].keys())
            days[i][j] = days[j][i] = len(common)
            if len(common) >= min_days:
                xs = [returns[ids[i]][day] for day in common]
                ys = [returns[ids[j]][day] for day in common]
                coefficients[i][j] = coefficients[j][i] = pearson(xs, ys)
    return CorrelationMatrix(
        account_ids=ids,
        coefficients=tuple(tuple(row) for row in coefficients),
        days=tuple(tuple(row) for row in days),
    )


def daily_return(start_equity: Decimal, end_equity: Decimal) -> float | None:
    """One day's return as a float; None without a start equity."""
    if start_equity <= 0:
        return None
    return float((end_equity - start_equity) / start_equity)


@dataclass(frozen=True)
class TailRisk:
    """VaR and expected shortfall at one confidence, over `days` days of P&L (None below MIN_DAYS): losses
    positive. `tail_days` is k, the number of worst days they rest on."""

    confidence: Decimal
    days: int
    tail_days: int
    value_at_risk: Decimal | None
    expected_shortfall: Decimal | None


def tail_risk(daily_pnl: Sequence[Decimal], confidence: Decimal, *, min_days: int = MIN_DAYS) -> TailRisk:
    """Historical one-day VaR and expected shortfall of a P&L series at `confidence` (0.95 for 95 %)."""
    n = len(daily_pnl)
    k = max(1, math.ceil(n * (1 - confidence)))
    if n < min_days:
        return TailRisk(confidence, n, 0, None, None)
    worst = sorted(daily_pnl)[:k]
    total = ZERO
    for pnl in worst:
        total = _MEAN.add(total, pnl)
    mean = _MEAN.divide(total, Decimal(k)).quantize(EIGHT_PLACES, context=_MEAN)
    return TailRisk(confidence, n, k, ZERO - worst[-1], ZERO - mean)
