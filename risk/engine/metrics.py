"""Account and portfolio metrics over plain values: what the dashboard, `/api/accounts` and snapshots report.

Definitions (docs/design.md, Risk semantics): exposure is the booked notional of every pending, approved and open
position (the n it was checked with, re-fixed at the fill price), the same sum the check path keeps in counters.
Reports also show it mark-to-market: the filled quantity of a position revalued at the latest price, the unfilled
rest of its reservation at its booked notional. Exposure pct and concentration (by symbol, by correlation group)
are fractions of equity over the mark-to-market exposure. Drawdown is measured from the high-water mark (the
larger of the recorded peak and the current equity, so a peak not yet raised cannot show a negative drawdown).
Daily P&L is equity minus the first equity of the UTC day. Win rate = wins / closed trades; profit factor =
gross profit / gross loss. A ratio whose denominator is zero is None (undefined), never 0 or infinity; a drawdown
with no peak is 0.

Sums are exact (`EXACT` context); reported figures are rounded half-even to 8 decimals, as NUMERIC(18,8) stores them.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from risk.engine.money import ZERO, add, mul, ratio, round8, sub
from risk.engine.values import AccountState, Side


@dataclass(frozen=True, slots=True)
class PositionView:
    """A position that holds exposure (pending, approved or open).

    `quantity` is its filled, still open quantity (0 for an unfilled reservation), `entry_price` its volume-weighted
    fill price (None before any fill), `notional` its booked notional.
    """

    symbol: str
    side: Side
    quantity: Decimal
    entry_price: Decimal | None
    notional: Decimal


@dataclass(frozen=True, slots=True)
class TradeStats:
    """Closed-trade statistics (from `Trade` / `DailyStatistic` rows). `gross_loss` is a positive amount."""

    closed_trades: int = 0
    wins: int = 0
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Metrics:
    """The figures of one account or of the portfolio. Fractions are of equity (0.25 is 25 %)."""

    equity: Decimal
    exposure: Decimal
    market_exposure: Decimal
    exposure_pct: Decimal | None
    unrealized_pnl: Decimal
    peak_equity: Decimal
    drawdown: Decimal
    day_start_equity: Decimal
    daily_pnl: Decimal
    daily_pnl_pct: Decimal | None
    position_count: int
    largest_position: Decimal | None
    average_position: Decimal | None
    win_rate: Decimal | None
    profit_factor: Decimal | None
    concentration_by_symbol: dict[str, Decimal | None] = field(default_factory=dict)
    concentration_by_group: dict[str, Decimal | None] = field(default_factory=dict)


def account_metrics(
    *,
    account: AccountState,
    positions: Iterable[PositionView],
    prices: Mapping[str, Decimal],
    stats: TradeStats,
    groups: Mapping[str, str] | None = None,
) -> Metrics:
    """One account's metrics from its state row, its positions holding exposure and the latest prices."""
    return _metrics(
        equity=account.equity,
        peak_equity=account.peak_equity,
        day_start_equity=account.day_start_equity,
        positions=positions,
        prices=prices,
        stats=stats,
        groups=groups or {},
    )


def portfolio_metrics(
    *,
    equity: Decimal,
    peak_equity: Decimal,
    day_start_equity: Decimal,
    positions: Iterable[PositionView],
    prices: Mapping[str, Decimal],
    stats: TradeStats,
    groups: Mapping[str, str] | None = None,
) -> Metrics:
    """The portfolio's metrics: its summed equity figures and every account's positions holding exposure."""
    return _metrics(
        equity=equity,
        peak_equity=peak_equity,
        day_start_equity=day_start_equity,
        positions=positions,
        prices=prices,
        stats=stats,
        groups=groups or {},
    )


def position_market_value(position: PositionView, prices: Mapping[str, Decimal]) -> tuple[Decimal, Decimal]:
    """(mark-to-market exposure, unrealized P&L) of one position at the latest price (booked value without one).

    The filled quantity moves by quantity x (mark - entry); the P&L takes the side's sign.
    """
    mark = prices.get(position.symbol)
    if mark is None or position.entry_price is None or not position.quantity:
        return position.notional, ZERO
    move = mul(position.quantity, sub(mark, position.entry_price))
    pnl = move if position.side == Side.LONG else -move
    return add(position.notional, move), pnl


def _metrics(
    *,
    equity: Decimal,
    peak_equity: Decimal,
    day_start_equity: Decimal,
    positions: Iterable[PositionView],
    prices: Mapping[str, Decimal],
    stats: TradeStats,
    groups: Mapping[str, str],
) -> Metrics:
    """The shared computation behind account and portfolio metrics."""
    positions = tuple(positions)
    booked = [p.notional for p in positions]
    exposure, market_exposure, unrealized, by_symbol = _exposures(positions, prices)
    by_group: dict[str, Decimal] = {}
    for symbol, value in by_symbol.items():
        group = groups.get(symbol)
        if group is not None:
            by_group[group] = add(by_group.get(group, ZERO), value)
    daily_pnl = sub(equity, day_start_equity)
    return Metrics(
        equity=equity,
        exposure=exposure,
        market_exposure=round8(market_exposure),
        exposure_pct=ratio(market_exposure, equity),
        unrealized_pnl=round8(unrealized),
        peak_equity=peak_equity,
        drawdown=_drawdown(equity, peak_equity),
        day_start_equity=day_start_equity,
        daily_pnl=daily_pnl,
        daily_pnl_pct=ratio(daily_pnl, day_start_equity),
        position_count=len(positions),
        largest_position=max(booked) if booked else None,
        average_position=ratio(_sum(booked), Decimal(len(booked))),
        win_rate=ratio(Decimal(stats.wins), Decimal(stats.closed_trades)),
        profit_factor=ratio(stats.gross_profit, stats.gross_loss),
        concentration_by_symbol={symbol: ratio(value, equity) for symbol, value in sorted(by_symbol.items())},
        concentration_by_group={group: ratio(value, equity) for group, value in sorted(by_group.items())},
    )


def _exposures(
    positions: tuple[PositionView, ...], prices: Mapping[str, Decimal]
) -> tuple[Decimal, Decimal, Decimal, dict[str, Decimal]]:
    """Booked exposure, mark-to-market exposure, unrealized P&L, and mark-to-market exposure per symbol."""
    exposure = market_exposure = unrealized = ZERO
    by_symbol: dict[str, Decimal] = {}
    for position in positions:
        value, pnl = position_market_value(position, prices)
        exposure = add(exposure, position.notional)
        market_exposure = add(market_exposure, value)
        unrealized = add(unrealized, pnl)
        by_symbol[position.symbol] = add(by_symbol.get(position.symbol, ZERO), value)
    return exposure, market_exposure, unrealized, by_symbol


def _drawdown(equity: Decimal, peak_equity: Decimal) -> Decimal:
    """(high-water mark - equity) / high-water mark, the mark being max(peak, equity); 0 with no peak."""
    high_water = max(peak_equity, equity)
    if high_water <= ZERO:
        return ZERO
    return ratio(sub(high_water, equity), high_water)


def _sum(values: list[Decimal]) -> Decimal:
    """An exact sum (the `EXACT` context, never the caller's)."""
    total = ZERO
    for value in values:
        total = add(total, value)
    return total
