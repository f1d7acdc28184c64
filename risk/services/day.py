"""Time under the portfolio lock: the clock a locked transaction acts at, and the UTC trading day (daily P&L =
equity - day_start_equity, rolled at 00:00 UTC).

Time-ordered state (the UTC day, equity report times, "the first report of the day") must follow the order in
which transactions hold the portfolio lock, never the order in which requests arrived: a request stamped 23:59:59
that waits for the lock while another rolls the day at 00:00 must not roll it back. So the clock is read once the
lock is granted (PostgreSQL's, the same for every web host) and clamped so it never goes back past what was
already written.
"""

from datetime import UTC, date, datetime, time

from django.db.models import F

from accounts.models import TradingInstance
from risk import selectors
from risk.models import Portfolio


def locked_now(*, scope: selectors.LockedScope, requested: datetime | None, since: datetime | None = None) -> datetime:
    """The time a locked transaction acts at: `requested` (an explicit time from a task or a test) or the clock
    read when the portfolio lock was granted, never before the start of the portfolio's UTC day nor before
    `since` (the time-ordered state the caller moves on from, such as the account's last report)."""
    moment = requested or scope.clock
    day = scope.portfolio.day_start_date
    if day is not None:
        moment = max(moment, datetime.combine(day, time.min, tzinfo=UTC))
    return max(moment, since) if since is not None else moment


def trading_day_roll(*, scope: selectors.LockedScope, today: date) -> bool:
    """Start a new UTC trading day for every account and the portfolio at once: each start-of-day equity becomes
    the last accepted equity, until that account's first report of the day replaces it (risk.services.equity).
    Done by the first check, approval or equity report of the day, under the portfolio lock its caller holds;
    rolling account by account at each one's first report would leave the portfolio's day start mixing yesterday's
    and today's, so a loss today could hide behind another account's gain yesterday. Accounts outside the
    portfolio's totals roll too, so one that returns later today comes back with today's start. Also applied to
    the locked rows in memory. False when `today` is not after the day already rolled (the day never goes back)."""
    portfolio, account = scope.portfolio, scope.account
    if not day_roll_due(scope, today=today):
        return False
    TradingInstance.objects.update(day_start_equity=F("equity"), day_start_date=today)
    Portfolio.objects.filter(pk=portfolio.pk).update(day_start_equity=F("equity"), day_start_date=today)
    portfolio.day_start_equity, portfolio.day_start_date = portfolio.equity, today
    account.day_start_equity, account.day_start_date = account.equity, today
    return True


def day_roll_due(scope: selectors.LockedScope, *, today: date) -> bool:
    """Whether `today` is after the UTC day the portfolio last rolled (or it never rolled): `trading_day_roll` due."""
    return scope.portfolio.day_start_date is None or today > scope.portfolio.day_start_date


def as_of_day(scope: selectors.LockedScope, *, today: date) -> None:
    """The locked rows as a new UTC day would see them (start-of-day equity = equity), in memory only: what a dry
    run evaluates when the day has not been rolled yet (see `trading_day_roll`)."""
    if day_roll_due(scope, today=today):
        scope.portfolio.day_start_equity = scope.portfolio.equity
        scope.account.day_start_equity = scope.account.equity
