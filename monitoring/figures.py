"""The desk's figures over plain values: mark-to-market from grouped sums, concentration and limit usage.

Pure (no Django, no I/O, no clock), like the risk engine whose Decimal helpers it uses; the aggregation feeds it
what PostgreSQL summed.

Mark-to-market: the positions holding exposure are summed per (symbol, side) in SQL as the booked notional,
the open filled quantity and its exact cost (the positions' `open_cost`). At a mark m, the filled part is worth
quantity x m instead of its cost, so the group's market exposure is booked + (quantity x m - cost), and its
unrealized P&L is that move for a long and its opposite for a short; without a mark the booked value stands. (The
average entry price is rounded to 8 decimals: quantity x entry can miss the cost, by more the larger the quantity.)

Limit usage: how much of a limit is used, value / limit (1 = the limit is reached). At or above 1 the limit is
breached (no check can add to it, or the "has reached" rule rejects); at or above the near threshold it is near.
A zero limit (no equity to take a fraction of) has no usage figure: it is breached if anything is held, else ok.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from risk.engine.money import ZERO, add, mul, ratio, round8, sub
from risk.engine.values import Limits, Side


class UsageStatus(StrEnum):
    OK = "ok"
    NEAR = "near"
    BREACHED = "breached"


@dataclass(frozen=True, slots=True)
class HeldGroup:
    """Positions holding exposure (pending, approved, open) of one symbol and side, summed.

    `open_quantity` and `open_cost` cover the filled, still open part of positions with an entry price: its
    quantity and its exact cost (the positions' `open_cost`, never quantity x the rounded average entry price)."""

    symbol: str
    side: Side
    booked: Decimal
    open_quantity: Decimal
    open_cost: Decimal
    positions: int


@dataclass(frozen=True, slots=True)
class SymbolFigures:
    symbol: str
    mark: Decimal | None
    booked: Decimal
    market_exposure: Decimal
    unrealized_pnl: Decimal
    positions: int


@dataclass(frozen=True, slots=True)
class MarketTotals:
    booked: Decimal
    market_exposure: Decimal
    unrealized_pnl: Decimal
    positions: int
    by_symbol: tuple[SymbolFigures, ...] = field(default_factory=tuple)


def group_market_value(group: HeldGroup, mark: Decimal | None) -> tuple[Decimal, Decimal]:
    """(market exposure, unrealized P&L) of a group at `mark` (its booked value and 0 without one), exact."""
    if mark is None or not group.open_quantity:
        return group.booked, ZERO
    move = sub(mul(group.open_quantity, mark), group.open_cost)
    return add(group.booked, move), move if group.side == Side.LONG else -move


def market_totals(groups: Iterable[HeldGroup], marks: Mapping[str, Decimal | None]) -> MarketTotals:
    """Booked and mark-to-market exposure and unrealized P&L, in total and per symbol (sorted by symbol)."""
    sums: dict[str, tuple[Decimal, Decimal, Decimal, int]] = {}
    for group in groups:
        value, pnl = group_market_value(group, marks.get(group.symbol))
        booked, market, unrealized, count = sums.get(group.symbol, (ZERO, ZERO, ZERO, 0))
        sums[group.symbol] = (
            add(booked, group.booked),
            add(market, value),
            add(unrealized, pnl),
            count + group.positions,
        )
    booked = market = unrealized = ZERO
    for symbol_booked, symbol_market, symbol_unrealized, _ in sums.values():
        booked, market, unrealized = (
            add(booked, symbol_booked),
            add(market, symbol_market),
            add(unrealized, symbol_unrealized),
        )
    return MarketTotals(
        booked=booked,
        market_exposure=round8(market),
        unrealized_pnl=round8(unrealized),
        positions=sum(count for *_, count in sums.values()),
        by_symbol=tuple(
            SymbolFigures(symbol, marks.get(symbol), symbol_booked, round8(value), round8(pnl), count)
            for symbol, (symbol_booked, value, pnl, count) in sorted(sums.items())
        ),
    )


def drawdown(equity: Decimal, peak_equity: Decimal) -> Decimal:
    """(high-water mark - equity) / high-water mark with the mark max(peak, equity); 0 without a mark."""
    high_water = max(peak_equity, equity)
    return ratio(sub(high_water, equity), high_water) or ZERO


# ---------------------------------------------------------------------------------------------- limit usage
@dataclass(frozen=True, slots=True)
class LimitUsage:
    """One limit: what is used (`value`), the limit in the same unit, usage = value / limit and its status.

    `subject` names the symbol or correlation group for the limits that have one."""

    limit: str
    value: Decimal
    limit_value: Decimal
    usage: Decimal | None
    status: UsageStatus
    subject: str | None = None


def usage_of(
    limit: str, value: Decimal, limit_value: Decimal, *, near: Decimal, subject: str | None = None
) -> LimitUsage:
    """The `LimitUsage` of `value` against `limit_value` (a loss below zero, a gain, uses nothing)."""
    value = max(value, ZERO)
    if limit_value <= ZERO:
        status = UsageStatus.BREACHED if value > ZERO else UsageStatus.OK
        return LimitUsage(limit, value, limit_value, None, status, subject)
    usage = ratio(value, limit_value)
    return LimitUsage(limit, value, limit_value, usage, usage_status(usage, near=near), subject)


def usage_status(usage: Decimal | None, *, near: Decimal) -> UsageStatus:
    """Breached at 1 or more, near at the threshold or more, else ok (no figure: ok)."""
    if usage is None:
        return UsageStatus.OK
    if usage >= 1:
        return UsageStatus.BREACHED
    return UsageStatus.NEAR if usage >= near else UsageStatus.OK


@dataclass(frozen=True, slots=True)
class PortfolioCounters:
    """The counters the check path reads (booked exposure), for the portfolio, each symbol and each group."""

    equity: Decimal
    day_start_equity: Decimal
    exposure: Decimal
    position_count: int
    symbol_exposure: Mapping[str, Decimal]
    group_exposure: Mapping[str, tuple[Decimal, Decimal]]  # group -> (exposure, limit_pct)


def portfolio_usage(counters: PortfolioCounters, limits: Limits, *, near: Decimal) -> tuple[LimitUsage, ...]:
    """Every portfolio-wide limit's usage, as the check path counts it (booked exposure, reported equity)."""
    equity, day_start = counters.equity, counters.day_start_equity
    loss = sub(day_start, equity)
    usages = [
        usage_of("portfolio_exposure", counters.exposure, mul(limits.max_portfolio_exposure_pct, equity), near=near),
        usage_of(
            "max_open_positions", Decimal(counters.position_count), Decimal(limits.max_total_positions), near=near
        ),
        usage_of("daily_loss_limit", loss, mul(limits.max_daily_loss_pct, day_start), near=near),
        usage_of("emergency_daily_loss", loss, mul(limits.emergency_daily_loss_pct, day_start), near=near),
    ]
    symbol_cap = mul(limits.max_symbol_exposure_pct, equity)
    for symbol, exposure in sorted(counters.symbol_exposure.items()):
        usages.append(usage_of("symbol_concentration", exposure, symbol_cap, near=near, subject=symbol))
    for group, (exposure, limit_pct) in sorted(counters.group_exposure.items()):
        usages.append(usage_of("correlated_exposure", exposure, mul(limit_pct, equity), near=near, subject=group))
    return tuple(usages)
