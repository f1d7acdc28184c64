"""Celery tasks of the risk app: each takes no arguments or ids, calls one service, is idempotent and time-limited.

The periodic schedule that runs them is declared by `RiskConfig.periodic_tasks` (risk/apps.py) and written to
django-celery-beat's tables by `python manage.py sync_schedule`.
"""

from celery import shared_task
from django.utils import timezone

from risk.services.lifecycle import reservations_expire
from risk.services.portfolio_equity import stale_equity_sweep
from risk.services.trading_state import halted_scopes_sweep, inactive_accounts_sweep

EXPIRE_RESERVATIONS = "risk.expire_reservations"
SWEEP_ACCOUNTS = "risk.sweep_accounts"


@shared_task(name=EXPIRE_RESERVATIONS, soft_time_limit=30, time_limit=45, ignore_result=True)
def expire_reservations() -> int:
    """Expire every reservation past its deadline as of now, and release anything still reserved in a HALTED
    scope (a halt's own sweep may have been cut short); returns how many were released.

    Idempotent, so a redelivered or overlapping run is harmless: a released reservation is not selected again,
    and each position's deadline is re-checked under its row lock (a fill may have won the race). Each expiry
    commits on its own, so a run stopped by its time limit keeps what it did and the next run goes on. No retry:
    the next beat tick is the retry.
    """
    now = timezone.now()
    return reservations_expire(now=now) + len(halted_scopes_sweep(now=now))


@shared_task(name=SWEEP_ACCOUNTS, soft_time_limit=30, time_limit=45, ignore_result=True)
def sweep_accounts() -> int:
    """Take out of the portfolio's equity totals every account whose equity report passed its own
    equity_max_age, or that (or whose user) was deactivated, and release what deactivated accounts still reserve;
    returns how many accounts left the totals plus how many reservations were released.

    Idempotent: an account taken out stays out until its next report, a released reservation is not selected
    again. No retry: the next beat tick is the retry.
    """
    swept = stale_equity_sweep()
    return len(swept.account_ids) + len(inactive_accounts_sweep(now=timezone.now()))
