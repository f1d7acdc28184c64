"""Reads behind the desk snapshot: portfolio and per-account figures from PostgreSQL aggregate queries and the
cached marks, assembled into the snapshot the dashboard, `/api/portfolio/metrics` and Prometheus read.

A fixed number of queries whatever the number of accounts and positions: the portfolio row, the limits and the
portfolio's state, the symbol and correlation-group counters, the positions holding exposure summed per (symbol,
side), the trade totals, one pass over every account's figures (`monitoring.account_figures`: the counts and the
ids of the accounts nearest their limits and of the largest ones) and the figures of those few, plus one MGET
for every mark. Outside a surrounding
transaction they run in one REPEATABLE READ snapshot, so the sums agree with each other and with the counters
(a difference is a real drift, reported under `counters`).

Money and ratios are rendered as strings with 8 decimals (JSON carries no Decimal); counts as integers.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Count, DecimalField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from accounts.models import TradingInstance
from monitoring.account_figures import (
    ACCOUNT_LIMITS,
    ZERO_LIMIT_USAGE,
    account_figures,
    counted_in_portfolio,
    usage_field,
)
from monitoring.figures import (
    HeldGroup,
    MarketTotals,
    PortfolioCounters,
    drawdown,
    market_totals,
    portfolio_usage,
    usage_status,
)
from risk import selectors as risk_selectors
from risk.engine import Side, TradingMode
from risk.engine.money import ZERO, ratio, round8, sub
from risk.models import CorrelationGroup, Portfolio, SymbolExposure, TradingState
from trading.market import market_prices_get
from trading.models import EXPOSURE_STATUSES, Position, Trade

NUMBER = DecimalField(max_digits=40, decimal_places=16)


def amount(value: Decimal | None) -> str | None:
    """A Decimal as the API writes money and ratios: a string on the 8-decimal grid (None stays None)."""
    return None if value is None else f"{round8(value):f}"


def usage_text(value: Decimal | None) -> str | None:
    """A usage figure; the zero-limit sentinel (breached, no finite figure) renders as None."""
    return None if value is None or value >= ZERO_LIMIT_USAGE else amount(value)


# ---------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class PortfolioInputs:
    portfolio: Portfolio
    limits: risk_selectors.LimitsInForce
    state: str
    symbol_counters: dict[str, tuple[Decimal, int]]
    groups: dict[str, tuple[Decimal, Decimal, tuple[str, ...]]]  # name -> (exposure, limit_pct, symbols)
    held: tuple[HeldGroup, ...]
    status_counts: dict[str, int]
    trades: dict[str, Any]


def held_sums() -> dict[str, Any]:
    """The aggregates of positions holding exposure that mark-to-market needs (see monitoring.figures.HeldGroup),
    with their count per status."""
    open_quantity = F("filled_quantity") - F("closed_quantity")
    with_entry = Q(entry_price__isnull=False)
    return {
        "booked": Sum("notional"),
        "positions": Count("id"),
        "open_quantity": Sum(open_quantity, filter=with_entry, output_field=NUMBER),
        "open_cost": Sum("open_cost", filter=with_entry),  # exact: entry_price is only its rounded average
        **{status: Count("id", filter=Q(status=status)) for status in EXPOSURE_STATUSES},
    }


def held_group(row: dict[str, Any]) -> HeldGroup:
    return HeldGroup(
        symbol=row["symbol"],
        side=Side(row["side"]),
        booked=row["booked"],
        open_quantity=row["open_quantity"] or ZERO,
        open_cost=row["open_cost"] or ZERO,
        positions=row["positions"],
    )


def held_groups() -> tuple[tuple[HeldGroup, ...], dict[str, int]]:
    """Positions holding exposure summed per (symbol, side), and their count per status (one query)."""
    rows = (
        Position.objects.filter(status__in=EXPOSURE_STATUSES)
        .values("symbol", "side")
        .annotate(**held_sums())
        .order_by("symbol", "side")
    )
    groups, counts = [], dict.fromkeys(EXPOSURE_STATUSES, 0)
    for row in rows:
        groups.append(held_group(row))
        for status in EXPOSURE_STATUSES:
            counts[status] += row[status]
    return tuple(groups), counts


def trade_sums() -> dict[str, Any]:
    """Closed trades (a partial close is one): count, wins, gross profit and gross loss (a positive amount)."""
    return {
        "closed": Count("id"),
        "wins": Count("id", filter=Q(pnl__gt=0)),
        "gross_profit": Coalesce(Sum("pnl", filter=Q(pnl__gt=0)), ZERO, output_field=NUMBER),
        "gross_loss": Coalesce(Sum(-F("pnl"), filter=Q(pnl__lt=0), output_field=NUMBER), ZERO, output_field=NUMBER),
    }


def trade_stats_json(sums: dict[str, Any]) -> dict[str, Any]:
    """Win rate = wins / closed trades, profit factor = gross profit / gross loss (null when undefined)."""
    return {
        "closed": sums["closed"],
        "wins": sums["wins"],
        "win_rate": amount(ratio(Decimal(sums["wins"]), Decimal(sums["closed"]))),
        "gross_profit": amount(sums["gross_profit"]),
        "gross_loss": amount(sums["gross_loss"]),
        "profit_factor": amount(ratio(sums["gross_profit"], sums["gross_loss"])),
    }


def portfolio_inputs() -> PortfolioInputs:
    """Everything portfolio-wide the snapshot needs from PostgreSQL (seven queries)."""
    groups: dict[str, tuple[Decimal, Decimal, tuple[str, ...]]] = {}
    for row in CorrelationGroup.objects.values("name", "exposure", "limit_pct", "members__symbol").order_by("name"):
        exposure, limit_pct, symbols = groups.get(row["name"], (row["exposure"], row["limit_pct"], ()))
        member = (row["members__symbol"],) if row["members__symbol"] else ()
        groups[row["name"]] = (exposure, limit_pct, tuple(sorted(symbols + member)))
    held, status_counts = held_groups()
    state = TradingState.objects.filter(instance__isnull=True).values_list("state", flat=True).first()
    return PortfolioInputs(
        portfolio=Portfolio.objects.get(pk=Portfolio.SINGLETON_ID),
        limits=risk_selectors.limits_in_force(instance_id=None),
        state=state or TradingMode.ACTIVE.value,
        symbol_counters={
            symbol: (exposure, count)
            for symbol, exposure, count in SymbolExposure.objects.values_list("symbol", "exposure", "position_count")
        },
        groups=groups,
        held=held,
        status_counts=status_counts,
        trades=Trade.objects.aggregate(**trade_sums()),
    )


# ---------------------------------------------------------------------------------------------- accounts
def accounts_queryset(*, now: datetime, inputs: PortfolioInputs) -> QuerySet[TradingInstance]:
    return account_figures(
        now=now, limits=inputs.limits.engine, equity_max_age_seconds=_seconds(inputs.limits.equity_max_age)
    )


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


_SUMMARY_COLUMNS = ("id", "is_active", "exposure", "state", "stale", "counted", "equity", "high_water")


def _summary_sql(inner: str, *, size: int) -> str:
    """One pass over every account's figures: the counts, and the ids of the accounts nearest their limits and of
    the largest ones. The figures are a MATERIALIZED CTE, so each is computed once per account: inlined into the
    aggregate, PostgreSQL recomputed every usage expression for each FILTER that reads it (4x the time at 10,000
    accounts)."""
    per_limit = ", ".join(
        f"count(*) FILTER (WHERE a.is_active AND a.{usage_field(limit)} >= %(near)s AND a.{usage_field(limit)} < 1)"
        f" AS {limit}__near, count(*) FILTER (WHERE a.is_active AND a.{usage_field(limit)} >= 1) AS {limit}__breached"
        for limit in ACCOUNT_LIMITS
    )
    worst = ", ".join(f"f.{usage_field(limit)}" for limit in ACCOUNT_LIMITS)
    return f"""
        WITH figures AS MATERIALIZED ({inner})
        SELECT count(*) AS total,
            count(*) FILTER (WHERE a.is_active) AS active,
            count(*) FILTER (WHERE a.is_active AND a.stale) AS stale,
            count(*) FILTER (WHERE a.is_active AND a.state = 'halted') AS halted,
            count(*) FILTER (WHERE a.is_active AND a.state = 'reducing') AS reducing,
            count(*) FILTER (WHERE a.is_active AND a.worst_usage >= %(near)s AND a.worst_usage < 1) AS near_limit,
            count(*) FILTER (WHERE a.is_active AND a.worst_usage >= 1) AS past_limit,
            sum(a.equity) FILTER (WHERE a.counted) AS counted_equity,
            sum(a.high_water) FILTER (WHERE a.counted) AS counted_high_water,
            coalesce((array_agg(a.id ORDER BY a.worst_usage DESC, a.id)
                FILTER (WHERE a.is_active AND a.worst_usage >= %(near)s))[1:{size:d}], '{{}}') AS near_ids,
            coalesce((array_agg(a.id ORDER BY a.exposure DESC, a.id)
                FILTER (WHERE a.is_active))[1:{size:d}], '{{}}') AS largest_ids,
            {per_limit}
        FROM (SELECT f.*, GREATEST({worst}) AS worst_usage FROM figures AS f) AS a
    """  # noqa: S608 - every name is ours; values are parameters


def accounts_summary(figures: QuerySet[TradingInstance], *, size: int) -> dict[str, Any]:
    """Counts over every account (active, stale, by state, near and past each limit), the sums the portfolio's
    drawdown rests on, and the ids of the `size` accounts nearest their limits and of the `size` largest: one
    query whatever the number of accounts."""
    columns = figures.annotate(counted=ExpressionWrapper(counted_in_portfolio(), output_field=BooleanField()))
    inner, inner_params = columns.values(*_SUMMARY_COLUMNS, *map(usage_field, ACCOUNT_LIMITS)).query.sql_with_params()
    params = {f"p{index}": value for index, value in enumerate(inner_params)} | {"near": settings.MONITORING_NEAR_LIMIT}
    named_inner = inner % tuple(f"%(p{index})s" for index in range(len(inner_params)))
    with connection.cursor() as cursor:
        cursor.execute(_summary_sql(named_inner, size=size), params)
        names = [column.name for column in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def account_rows(figures: QuerySet[TradingInstance], ids: list[int]) -> dict[int, dict[str, Any]]:
    """The figures of a few accounts, by id (one query)."""
    fields = ["id", "name", "state", "equity", "exposure", "drawdown", "daily_pnl", "worst_usage"]
    rows = figures.filter(pk__in=ids).values(*fields, *map(usage_field, ACCOUNT_LIMITS))
    return {row["id"]: row for row in rows}


def _near_json(row: dict[str, Any]) -> dict[str, Any]:
    """An account near or past its limits: each limit at or past the near threshold, with its usage."""
    near = settings.MONITORING_NEAR_LIMIT
    return {
        "account_id": row["id"],
        "name": row["name"],
        "state": row["state"],
        "limits": [
            {
                "limit": limit,
                "usage": usage_text(row[usage_field(limit)]),
                "status": usage_status(row[usage_field(limit)], near=near).value,
            }
            for limit in ACCOUNT_LIMITS
            if row[usage_field(limit)] is not None and row[usage_field(limit)] >= near
        ],
    }


def _largest_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": row["id"],
        "name": row["name"],
        "state": row["state"],
        "equity": amount(row["equity"]),
        "exposure": amount(row["exposure"]),
        "exposure_pct": amount(ratio(row["exposure"], row["equity"])),
        "drawdown": amount(row["drawdown"]),
        "daily_pnl": amount(row["daily_pnl"]),
        "worst_usage": usage_text(row["worst_usage"]),
    }


# ---------------------------------------------------------------------------------------------- snapshot
def desk_snapshot(*, now: datetime) -> dict[str, Any]:
    """The whole snapshot, read in one consistent database snapshot when no transaction surrounds the call."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:  # REPEATABLE READ must be the transaction's first statement
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        inputs = portfolio_inputs()
        figures = accounts_queryset(now=now, inputs=inputs)
        summary = accounts_summary(figures, size=settings.MONITORING_SNAPSHOT_LIST_SIZE)
        listed = account_rows(figures, [*summary["near_ids"], *summary["largest_ids"]])
    marks = {symbol: mark.price if mark else None for symbol, mark in _marks(inputs, now=now).items()}
    totals = market_totals(inputs.held, marks)
    return {
        "computed_at": now.isoformat(),
        "portfolio": _portfolio_json(inputs, totals, summary, now=now),
        "concentration": _concentration_json(inputs, totals),
        "limits": {
            "near_threshold": amount(settings.MONITORING_NEAR_LIMIT),
            "portfolio": _portfolio_limits_json(inputs, now=now),
            "accounts": [_near_json(listed[account_id]) for account_id in summary["near_ids"]],
        },
        "accounts": _accounts_json(summary),
        "largest_accounts": [_largest_json(listed[account_id]) for account_id in summary["largest_ids"]],
        "counters": _counter_drift(inputs, totals),
    }


def _marks(inputs: PortfolioInputs, *, now: datetime) -> dict:
    symbols = sorted({group.symbol for group in inputs.held} | set(inputs.symbol_counters))
    return market_prices_get(symbols, now=now)


def _portfolio_as_of_today(portfolio: Portfolio, *, now: datetime) -> Decimal:
    """The portfolio's start-of-day equity as of today (before the day's roll: its equity)."""
    return portfolio.day_start_equity if portfolio.day_start_date == now.date() else portfolio.equity


def _portfolio_json(inputs: PortfolioInputs, totals: MarketTotals, summary: dict, *, now: datetime) -> dict:
    portfolio = inputs.portfolio
    day_start = _portfolio_as_of_today(portfolio, now=now)
    daily_pnl = sub(portfolio.equity, day_start)
    high_water = summary["counted_high_water"] or ZERO
    return {
        "state": inputs.state,
        "equity": amount(portfolio.equity),
        "day_start_equity": amount(day_start),
        "daily_pnl": amount(daily_pnl),
        "daily_pnl_pct": amount(ratio(daily_pnl, day_start)),
        "peak_equity": amount(high_water),
        "drawdown": amount(drawdown(summary["counted_equity"] or ZERO, high_water)),
        "exposure": amount(portfolio.exposure),
        "market_exposure": amount(totals.market_exposure),
        "exposure_pct": amount(ratio(totals.market_exposure, portfolio.equity)),
        "unrealized_pnl": amount(totals.unrealized_pnl),
        "positions": {"total": totals.positions, **inputs.status_counts},
        "trades": trade_stats_json(inputs.trades),
    }


def _concentration_json(inputs: PortfolioInputs, totals: MarketTotals) -> dict:
    equity = inputs.portfolio.equity
    by_symbol = {figures.symbol: figures for figures in totals.by_symbol}
    symbols = [
        {
            "symbol": figures.symbol,
            "mark": amount(figures.mark),
            "exposure": amount(figures.booked),
            "market_exposure": amount(figures.market_exposure),
            "unrealized_pnl": amount(figures.unrealized_pnl),
            "pct": amount(ratio(figures.market_exposure, equity)),
            "positions": figures.positions,
        }
        for figures in totals.by_symbol
    ]
    groups = []
    for name, (_, limit_pct, members) in inputs.groups.items():
        held = [by_symbol[symbol] for symbol in members if symbol in by_symbol]
        market = sum((figures.market_exposure for figures in held), ZERO)
        groups.append(
            {
                "group": name,
                "symbols": list(members),
                "exposure": amount(sum((figures.booked for figures in held), ZERO)),
                "market_exposure": amount(market),
                "pct": amount(ratio(market, equity)),
                "limit_pct": amount(limit_pct),
            }
        )
    return {"by_symbol": symbols, "by_group": groups}


def _portfolio_limits_json(inputs: PortfolioInputs, *, now: datetime) -> list[dict]:
    portfolio = inputs.portfolio
    counters = PortfolioCounters(
        equity=portfolio.equity,
        day_start_equity=_portfolio_as_of_today(portfolio, now=now),
        exposure=portfolio.exposure,
        position_count=portfolio.position_count,
        symbol_exposure={symbol: exposure for symbol, (exposure, _) in inputs.symbol_counters.items() if exposure},
        group_exposure={name: (exposure, limit_pct) for name, (exposure, limit_pct, _) in inputs.groups.items()},
    )
    return [
        {
            "limit": usage.limit,
            "subject": usage.subject,
            "value": amount(usage.value),
            "limit_value": amount(usage.limit_value),
            "usage": amount(usage.usage),
            "status": usage.status.value,
        }
        for usage in portfolio_usage(counters, inputs.limits.engine, near=settings.MONITORING_NEAR_LIMIT)
    ]


def _accounts_json(summary: dict) -> dict:
    return {
        "total": summary["total"],
        "active": summary["active"],
        "stale": summary["stale"],
        "halted": summary["halted"],
        "reducing": summary["reducing"],
        "near_limit": summary["near_limit"],
        "past_limit": summary["past_limit"],
        "by_limit": {
            limit: {"near": summary[f"{limit}__near"], "breached": summary[f"{limit}__breached"]}
            for limit in ACCOUNT_LIMITS
        },
    }


def _counter_drift(inputs: PortfolioInputs, totals: MarketTotals) -> dict:
    """The check path's counters against the positions they count (read in the same snapshot): any difference."""
    portfolio = inputs.portfolio
    booked = {figures.symbol: (figures.booked, figures.positions) for figures in totals.by_symbol}
    drift = []
    if (portfolio.exposure, portfolio.position_count) != (totals.booked, totals.positions):
        drift.append(
            _drift("portfolio", (portfolio.exposure, portfolio.position_count), (totals.booked, totals.positions))
        )
    for symbol in sorted(set(booked) | set(inputs.symbol_counters)):
        counter, held = inputs.symbol_counters.get(symbol, (ZERO, 0)), booked.get(symbol, (ZERO, 0))
        if counter != held:
            drift.append(_drift(f"symbol:{symbol}", counter, held))
    for name, (exposure, _, members) in inputs.groups.items():
        held_exposure = sum((booked[symbol][0] for symbol in members if symbol in booked), ZERO)
        if exposure != held_exposure:
            drift.append(_drift(f"group:{name}", (exposure, None), (held_exposure, None)))
    return {"consistent": not drift, "drift": drift}


def _drift(counter: str, kept: tuple[Decimal, int | None], held: tuple[Decimal, int | None]) -> dict:
    return {
        "counter": counter,
        "exposure": amount(kept[0]),
        "positions_exposure": amount(held[0]),
        "count": kept[1],
        "positions_count": held[1],
    }
