"""Demo data for the risk layer (`python manage.py seed_demo`): trading's demo accounts and history
(trading/management/seed.py), then the risk rows consistent with them, and demo limits that admit most checks.

After the accounts and positions are written, every risk counter is set from the positions with SQL aggregates,
under the portfolio lock (taken last, so concurrent checks wait only for the rebuild, not for the whole seed):
the portfolio's exposure and position count (pending, approved and open positions), each account's
`equity_counted` flag (active account and user, equity report within its equity_max_age) and the portfolio's
equity and day-start equity (sums over the counted accounts), one `SymbolExposure` row per symbol, and the demo
correlation groups with their exposure. Everything is one transaction: a failure leaves nothing behind.
"""

import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import TradingInstance
from accounts.services import audit_entry_create
from risk import locks
from risk.models import CorrelationGroup, CorrelationGroupMember, Portfolio, RiskLimits, SymbolExposure
from risk.services.groups import correlation_group_recount
from risk.services.portfolio_equity import equity_counted_rebuild
from trading.management.seed import SeedResult
from trading.management.seed import seed_demo as trading_seed_demo
from trading.models import EXPOSURE_STATUSES, Position

ZERO = Decimal(0)

# Demo correlation groups: name -> (limit as a fraction of portfolio equity, symbols). A symbol already in
# another group (an operator's choice) stays where it is.
DEMO_GROUPS = {
    "majors": (Decimal("0.50"), ("BTC-USD", "ETH-USD")),
    "alts": (Decimal("0.30"), ("SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD", "AVAX-USD", "LINK-USD")),
}

# The portfolio default limits the demo runs with. The percent limits keep the defaults of docs/design.md (a
# typical small check passes them: seeded accounts hold at most 30% of their balance). What changes:
# - max_total_positions: the default 50 would reject every check once the demo portfolio holds ~44,000 positions;
# - equity_max_age_seconds: seeded bots never send heartbeats, so their seeded equity report must stay fresh
#   for a day of demo and benchmark runs instead of 15 minutes;
# - heartbeat_timeout_seconds: for the same reason, and for as long: past 120 s the heartbeat watchdog would find
#   every seeded bot silent, mark it stale and cancel its reservations (the demo desk's approvals and reserved
#   orders gone two minutes after seeding).
DEMO_LIMITS = {"max_total_positions": 1_000_000, "equity_max_age_seconds": 86_400, "heartbeat_timeout_seconds": 86_400}


@dataclass(frozen=True)
class RiskSeedResult:
    trading: SeedResult
    portfolio: Portfolio
    symbols: list[SymbolExposure]
    groups: list[CorrelationGroup]
    limits_changed: dict[str, tuple[object, object]]
    seconds: float  # everything, the risk rebuild and the commit included


def seed_demo(*, accounts: int, positions: int, tokens_out: Path, seed: int | None = None) -> RiskSeedResult:
    """Trading's demo data, then the risk rows rebuilt from it, in one transaction."""
    started = time.monotonic()
    with transaction.atomic():
        trading = trading_seed_demo(accounts=accounts, positions=positions, tokens_out=tokens_out, seed=seed)
        locks.lock_portfolio()  # lock order: portfolio, symbols, groups
        limits_changed = demo_limits_set()  # first: the equity max age decides which accounts count
        portfolio = portfolio_counters_rebuild()
        symbols = symbol_exposure_rebuild()
        groups = demo_groups_ensure()
    return RiskSeedResult(
        trading=trading,
        portfolio=portfolio,
        symbols=symbols,
        groups=groups,
        limits_changed=limits_changed,
        seconds=time.monotonic() - started,
    )


def portfolio_counters_rebuild() -> Portfolio:
    """The portfolio row from the positions and the counted instances (the caller holds the portfolio lock)."""
    held = Position.objects.filter(status__in=EXPOSURE_STATUSES).aggregate(exposure=Sum("notional"), count=Count("id"))
    equity_counted_rebuild()
    equity = TradingInstance.objects.filter(equity_counted=True).aggregate(
        equity=Sum("equity"), day_start=Sum("day_start_equity")
    )
    Portfolio.objects.filter(pk=Portfolio.SINGLETON_ID).update(
        exposure=held["exposure"] or ZERO,
        position_count=held["count"],
        equity=equity["equity"] or ZERO,
        day_start_equity=equity["day_start"] or ZERO,
        counters_verified_at=timezone.now(),
    )
    return Portfolio.objects.get(pk=Portfolio.SINGLETON_ID)


def symbol_exposure_rebuild() -> list[SymbolExposure]:
    """One row per symbol that was ever checked, set to the sum and count of its held positions (upsert)."""
    held = {
        row["symbol"]: row
        for row in Position.objects.filter(status__in=EXPOSURE_STATUSES)
        .values("symbol")
        .annotate(exposure=Sum("notional"), count=Count("id"))
    }
    symbols = set(held) | set(SymbolExposure.objects.values_list("symbol", flat=True))
    rows = [
        SymbolExposure(
            symbol=symbol,
            exposure=held[symbol]["exposure"] if symbol in held else ZERO,
            position_count=held[symbol]["count"] if symbol in held else 0,
        )
        for symbol in sorted(symbols)
    ]
    SymbolExposure.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["symbol"],
        update_fields=["exposure", "position_count", "updated_at"],
    )
    return rows


def demo_groups_ensure() -> list[CorrelationGroup]:
    """The demo groups (created if missing, with the members no other group holds), every group then recounted."""
    for name, (limit_pct, symbols) in DEMO_GROUPS.items():
        group, _ = CorrelationGroup.objects.get_or_create(
            name=name, defaults={"limit_pct": limit_pct, "description": "demo correlation group (seed_demo)"}
        )
        taken = set(CorrelationGroupMember.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))
        CorrelationGroupMember.objects.bulk_create(
            [CorrelationGroupMember(group=group, symbol=symbol) for symbol in symbols if symbol not in taken],
            ignore_conflicts=True,
        )
    return [correlation_group_recount(group=group) for group in CorrelationGroup.objects.order_by("pk")]


def demo_limits_set() -> dict[str, tuple[object, object]]:
    """DEMO_LIMITS on the portfolio default row, audited; returns {field: (before, after)} of what changed."""
    limits = RiskLimits.objects.select_for_update().get(instance__isnull=True)
    changed = {
        name: (getattr(limits, name), value) for name, value in DEMO_LIMITS.items() if getattr(limits, name) != value
    }
    if not changed:
        return changed
    for name, (_, value) in changed.items():
        setattr(limits, name, value)
    limits.save(update_fields=[*changed, "updated_at"])
    audit_entry_create(
        actor=None,
        action="risk_limits.change",
        target=limits,
        before={name: before for name, (before, _) in changed.items()},
        after={name: after for name, (_, after) in changed.items()},
        reason="seed_demo: demo limits",
    )
    return changed
