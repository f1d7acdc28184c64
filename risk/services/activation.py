"""Deactivating and reactivating a trading instance, with the portfolio totals it counts in.

Portfolio equity E (and its start-of-day total) is the sum over ACTIVE instances, kept as a counter that equity
reports move by difference. An instance leaving or re-entering the active set therefore moves the counters too,
under the same lock order as every check (portfolio, then account); the accounts app's own update service does the
rest of the change (audited). The admin's instance page routes activation changes here (risk/admin.py).
"""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import TradingInstance, User
from accounts.services import trading_instance_update
from risk import selectors
from risk.errors import AccountNotFound
from risk.models import Portfolio


def trading_instance_activation_set(
    *, instance_id: int, active: bool, actor: User | None, reason: str
) -> TradingInstance:
    """Set `is_active`; the portfolio's equity totals lose (or regain) the instance's equity. A reactivated
    instance starts its day at its current equity."""
    with transaction.atomic():
        selectors.set_lock_timeouts()
        try:
            account = selectors.lock_scope(instance_id=instance_id, symbol=None).account
        except TradingInstance.DoesNotExist as exc:
            raise AccountNotFound() from exc
        if account.is_active == active:
            return account
        if active:
            TradingInstance.objects.filter(pk=account.pk).update(
                day_start_equity=F("equity"), day_start_date=timezone.now().date()
            )
            account.day_start_equity = account.equity
        sign = 1 if active else -1
        Portfolio.objects.filter(pk=Portfolio.SINGLETON_ID).update(
            equity=F("equity") + sign * account.equity,
            day_start_equity=F("day_start_equity") + sign * account.day_start_equity,
        )
        return trading_instance_update(instance=account, actor=actor, reason=reason, is_active=active)
