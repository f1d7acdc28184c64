"""The portfolio's equity totals: which accounts count in them, and the one place that moves them.

Portfolio equity E and its start-of-day total are counters on the `Portfolio` row (never a SUM per check) equal to
the sums over the accounts whose `equity_counted` flag is set: active accounts of active users whose last equity
report is within their own equity_max_age. A bot that went silent must not keep every portfolio, symbol and group
cap as wide as its last figure, so:
- an equity report (held or not: both are heartbeats) counts its account in, with its own day start unchanged;
- `stale_equity_sweep` (a periodic task) takes out the accounts whose report went stale, or whose account or user
  was deactivated by a path that did not already take them out;
- deactivating an account or its user takes it out at once; reactivating puts it back only if its report is fresh.
Every change happens under the portfolio lock.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog
from django.db import connection, transaction
from django.db.models import F

from accounts.models import TradingInstance
from risk import locks, selectors
from risk.models import Portfolio

logger = structlog.get_logger(__name__)

ZERO = Decimal(0)


def account_equity_set(
    *, portfolio: Portfolio, account: TradingInstance, equity: Decimal, day_start: Decimal, counted: bool
) -> None:
    """Give the locked account its new equity, start-of-day equity and counted flag; the portfolio's totals move by
    the change of what the account contributes to them (one UPDATE, none when nothing changes). Both rows change in
    memory too; the caller saves the account (`ACCOUNT_EQUITY_FIELDS`)."""
    equity_before, day_start_before = _contribution(account)
    account.equity, account.day_start_equity, account.equity_counted = equity, day_start, counted
    equity_after, day_start_after = _contribution(account)
    equity_delta, day_start_delta = equity_after - equity_before, day_start_after - day_start_before
    if not equity_delta and not day_start_delta:
        return
    Portfolio.objects.filter(pk=portfolio.pk).update(
        equity=F("equity") + equity_delta, day_start_equity=F("day_start_equity") + day_start_delta
    )
    portfolio.equity += equity_delta
    portfolio.day_start_equity += day_start_delta


ACCOUNT_EQUITY_FIELDS = ("equity", "day_start_equity", "equity_counted")


def _contribution(account: TradingInstance) -> tuple[Decimal, Decimal]:
    return (account.equity, account.day_start_equity) if account.equity_counted else (ZERO, ZERO)


def account_counts(account: TradingInstance, *, user_active: bool, now: datetime, max_age) -> bool:
    """Whether the account belongs in the portfolio's totals at `now`."""
    return account.is_active and user_active and not selectors.equity_is_stale(account, now=now, max_age=max_age)


# Which accounts belong in the totals, as of `now` (NULL: the database's clock): active accounts of active users
# whose report is within their own equity_max_age (the account's override, else the portfolio default).
_ACCOUNTS = """
FROM accounts_tradinginstance a
JOIN accounts_user u ON u.id = a.user_id
CROSS JOIN risk_risklimits d
LEFT JOIN risk_risklimits o ON o.instance_id = a.id
WHERE d.instance_id IS NULL
"""
_BELONGS = """(
    a.is_active AND u.is_active AND a.equity_reported_at IS NOT NULL
    AND a.equity_reported_at >= COALESCE(%(now)s::timestamptz, clock_timestamp())
        - make_interval(secs => COALESCE(o.equity_max_age_seconds, d.equity_max_age_seconds))
)"""
_LEAVING_SQL = f"SELECT a.id {_ACCOUNTS} AND a.equity_counted AND NOT {_BELONGS}"
_TAKE_OUT_SQL = f"""
UPDATE accounts_tradinginstance SET equity_counted = false
WHERE id IN ({_LEAVING_SQL})
RETURNING id, equity, day_start_equity
"""  # noqa: S608 - constant SQL, values are parameters
_REBUILD_SQL = f"UPDATE accounts_tradinginstance SET equity_counted = id IN (SELECT a.id {_ACCOUNTS} AND {_BELONGS})"  # noqa: S608


def equity_counted_rebuild(*, now: datetime | None = None) -> None:
    """Set every account's flag from scratch (the caller holds the portfolio lock and then sets the portfolio's
    totals from the flags: seed_demo's counter rebuild)."""
    with connection.cursor() as cursor:
        cursor.execute(_REBUILD_SQL, {"now": now})


@dataclass(frozen=True)
class SweepResult:
    account_ids: tuple[int, ...]
    equity: Decimal
    day_start_equity: Decimal


def stale_equity_sweep(*, now: datetime | None = None) -> SweepResult:
    """Take every counted account that must leave out of the portfolio's totals (equity and start-of-day equity),
    as of `now` (default: PostgreSQL's clock once the portfolio lock is granted). A read without locks first, so a
    sweep with nothing to do never waits for, nor holds, the portfolio lock. Idempotent: an account taken out is
    not counted any more, and only its next report puts it back."""
    if not _leaving(now=now):
        return SweepResult(account_ids=(), equity=ZERO, day_start_equity=ZERO)
    with transaction.atomic():
        locks.set_lock_timeouts()
        portfolio = locks.lock_portfolio()
        with connection.cursor() as cursor:
            cursor.execute(_TAKE_OUT_SQL, {"now": now or portfolio.locked_at})
            rows = cursor.fetchall()
        equity = sum((row[1] for row in rows), ZERO)
        day_start = sum((row[2] for row in rows), ZERO)
        if rows:
            Portfolio.objects.filter(pk=portfolio.pk).update(
                equity=F("equity") - equity, day_start_equity=F("day_start_equity") - day_start
            )
    result = SweepResult(account_ids=tuple(sorted(row[0] for row in rows)), equity=equity, day_start_equity=day_start)
    if rows:
        logger.info("equity_uncounted", accounts=len(rows), equity=str(equity), day_start_equity=str(day_start))
    return result


def _leaving(*, now: datetime | None) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS ({_LEAVING_SQL})", {"now": now})
        return cursor.fetchone()[0]
