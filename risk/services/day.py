"""The UTC trading day: when the start-of-day equities roll (DESIGN section 5: daily P&L = equity -
day_start_equity, rolled at 00:00 UTC)."""

from datetime import date

from django.db.models import F

from accounts.models import TradingInstance
from risk import selectors
from risk.models import Portfolio


def trading_day_roll(*, scope: selectors.LockedScope, today: date) -> bool:
    """Start a new UTC trading day for every active account and the portfolio at once (DESIGN: day_start_equity
    rolls at 00:00 UTC): each start-of-day equity becomes the last reported equity, until that account's first
    report of the day replaces it (risk.services.equity). Done by the first check,
    approval or equity report of the day, under the portfolio lock its caller holds; rolling account by account at
    each one's first report would leave the portfolio's day start mixing yesterday's and today's, so a loss today
    could hide behind another account's gain yesterday. Also applied to the locked rows in memory. False when the
    day had already been rolled."""
    portfolio, account = scope.portfolio, scope.account
    if portfolio.day_start_date == today:
        return False
    TradingInstance.objects.filter(is_active=True).update(day_start_equity=F("equity"), day_start_date=today)
    Portfolio.objects.filter(pk=portfolio.pk).update(day_start_equity=F("equity"), day_start_date=today)
    portfolio.day_start_equity, portfolio.day_start_date = portfolio.equity, today
    if account.is_active:
        account.day_start_equity, account.day_start_date = account.equity, today
    return True
