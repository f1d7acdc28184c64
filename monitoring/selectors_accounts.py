"""Reads behind `/api/accounts` and `/api/accounts/{id}`: the accounts' figures (monitoring.account_figures)
filtered, sorted and paginated in SQL, then, for the accounts shown, their positions at the cached marks and their
closed-trade statistics, their open equity holds and their bots' last requests (accounts.liveness): three queries,
one MGET and one ZMSCORE whatever the page size.

Live reads (not the snapshot): a page of accounts costs what one page costs, whatever the number of accounts.
Sorting by exposure sorts by the booked exposure the limits count; the market value is shown beside it.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from accounts.liveness import last_seen_or_empty
from accounts.models import TradingInstance
from monitoring.account_figures import account_figures
from monitoring.desk import held_group, held_sums, trade_sums
from monitoring.figures import MarketTotals, market_totals
from risk import selectors as risk_selectors
from risk.engine.money import ZERO
from risk.models import EquityHold, EquityHoldStatus
from trading.market import market_prices_get
from trading.models import EXPOSURE_STATUSES, Position, Trade

# The `sort` values /api/accounts accepts (a leading "-" sorts descending), by the annotation they sort on.
SORTS = {"exposure": "exposure", "drawdown": "drawdown", "daily_pnl": "daily_pnl", "equity": "equity", "id": "pk"}


def account_list(
    *,
    now: datetime,
    sort: str = "-exposure",
    state: str | None = None,
    stale: bool | None = None,
    active: bool | None = None,
    held: bool | None = None,
    instance_id: int | None = None,
) -> QuerySet[TradingInstance]:
    """Accounts with their figures, filtered (trading state, stale, active, holding an equity increase for an
    operator to confirm, one account) and sorted (ties by id)."""
    limits = risk_selectors.limits_in_force(instance_id=None)
    accounts = account_figures(
        now=now, limits=limits.engine, equity_max_age_seconds=int(limits.equity_max_age.total_seconds())
    ).select_related("user")
    if instance_id is not None:
        accounts = accounts.filter(pk=instance_id)
    if state is not None:
        accounts = accounts.filter(state=state)
    if stale is not None:
        accounts = accounts.filter(stale=stale)
    if active is not None:
        accounts = accounts.filter(is_active=active)
    if held is not None:
        open_hold = Exists(EquityHold.objects.filter(instance=OuterRef("pk"), status=EquityHoldStatus.OPEN))
        accounts = accounts.filter(open_hold if held else ~open_hold)
    descending, name = sort.startswith("-"), sort.lstrip("-")
    field = SORTS[name]
    return accounts.order_by(f"-{field}" if descending else field, "pk")


@dataclass(frozen=True)
class HeldFigures:
    """One account's positions holding exposure at the cached marks, its closed-trade sums, its open equity
    hold (a reported increase waiting for an operator), if any, and its bot's last request Redis recorded."""

    market: MarketTotals
    trades: dict[str, Any]
    equity_hold: EquityHold | None
    last_seen: datetime | None = None


def held_figures(account_ids: list[int], *, now: datetime) -> dict[int, HeldFigures]:
    """The market value of each account's positions, its trade sums, its open hold and its bot's last request
    (three queries, one MGET, one ZMSCORE)."""
    rows = list(
        Position.objects.filter(instance_id__in=account_ids, status__in=EXPOSURE_STATUSES)
        .values("instance_id", "symbol", "side")
        .annotate(**held_sums())
        .order_by()
    )
    trades = {
        row["instance_id"]: row
        for row in Trade.objects.filter(instance_id__in=account_ids)
        .values("instance_id")
        .annotate(**trade_sums())
        .order_by()
    }
    holds = {
        hold.instance_id: hold
        for hold in EquityHold.objects.filter(instance_id__in=account_ids, status=EquityHoldStatus.OPEN)
    }
    symbols = sorted({row["symbol"] for row in rows})
    marks = {symbol: mark.price if mark else None for symbol, mark in market_prices_get(symbols, now=now).items()}
    seen = last_seen_or_empty(account_ids)
    no_trades = {"closed": 0, "wins": 0, "gross_profit": ZERO, "gross_loss": ZERO}
    return {
        account_id: HeldFigures(
            market=market_totals([held_group(row) for row in rows if row["instance_id"] == account_id], marks),
            trades=trades.get(account_id, no_trades),
            equity_hold=holds.get(account_id),
            last_seen=seen.get(account_id),
        )
        for account_id in account_ids
    }
