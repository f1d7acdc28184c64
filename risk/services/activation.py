"""Deactivating and reactivating a trading instance or a user, with what the risk gate does about it.

A deactivated account (or every account of a deactivated user) leaves the portfolio's equity totals at once, has
its unfilled reservations cancelled (after commit, one short transaction each, like a HALT; what cannot be
released now is left to the periodic account sweep), and is refused new checks, equity reports and approvals
(403 `account_inactive`); its bot can still report fills and closes of what it holds. Reactivating puts the
account back in the totals only if its equity report is still fresh, with its own start of day unchanged (a bot
that went quiet must not shed its daily loss); otherwise its next report does.

This module is the one writer of `is_active` for users and trading instances: the accounts services refuse the
field (they cannot move equity), and every door calls these two functions: the admin's change forms and its
deactivate action (risk/admin.py), the management and test code. Each change is audited as the accounts app
audits its own edits (`trading_instance.update` / `user.update`, before/after) and re-caches the user's tokens
after commit, so a deactivated user's or bot's token is refused at once in every process.

The change takes the portfolio lock first (every check then either committed before it, and its reservation is
cancelled below, or sees the account inactive), then the accounts, then the user.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from accounts.models import TradingInstance, User
from accounts.services import audit_entry_create, instance_tokens_recache, user_tokens_recache
from risk import locks, selectors
from risk.locks import lock_account_scope
from risk.models import Portfolio
from risk.services.day import locked_now
from risk.services.portfolio_equity import account_counts, account_equity_set
from risk.services.trading_state import reservations_cancel


@dataclass(frozen=True)
class ActivationOutcome:
    cancelled_position_ids: tuple[int, ...] = ()


def trading_instance_activation_set(
    *, instance_id: int, active: bool, actor: User | None, reason: str, now: datetime | None = None
) -> ActivationOutcome:
    """Set the instance's `is_active` (audited) and what follows from it for the risk gate (see the module)."""
    with transaction.atomic():
        scope = lock_account_scope(instance_id=instance_id, active_only=False)
        account = scope.account
        if account.is_active == active:
            return ActivationOutcome()
        now = locked_now(scope=scope, requested=now)
        account.is_active = active
        _recount(scope.portfolio, account, user_active=scope.user_active, now=now)
        account.save(update_fields=["is_active", "updated_at"])
        instance_tokens_recache(account)
        _audit(account, "trading_instance.update", active=active, actor=actor, reason=reason)
    return ActivationOutcome(
        cancelled_position_ids=() if active else reservations_cancel(instance_id=instance_id, now=now)
    )


def user_activation_set(
    *, user_id: int, active: bool, actor: User | None, reason: str, now: datetime | None = None
) -> ActivationOutcome:
    """Set the user's `is_active` (audited; its cached tokens are rewritten after commit) and what follows from it
    for each of its accounts (see the module)."""
    with transaction.atomic():
        locks.set_lock_timeouts()
        portfolio = locks.lock_portfolio()
        accounts = list(TradingInstance.objects.select_for_update(no_key=True).filter(user_id=user_id).order_by("pk"))
        user = User.objects.select_for_update().get(pk=user_id)
        if user.is_active == active:
            return ActivationOutcome()
        now = now or portfolio.locked_at
        for account in accounts:
            _recount(portfolio, account, user_active=active, now=now)
        user.is_active = active
        user.save(update_fields=["is_active", "updated_at"])
        user_tokens_recache(user)
        _audit(user, "user.update", active=active, actor=actor, reason=reason)
    if active:
        return ActivationOutcome()
    cancelled = [pk for account in accounts for pk in reservations_cancel(instance_id=account.pk, now=now)]
    return ActivationOutcome(cancelled_position_ids=tuple(cancelled))


def _audit(target: TradingInstance | User, action: str, *, active: bool, actor: User | None, reason: str) -> None:
    audit_entry_create(
        actor=actor,
        action=action,
        target=target,
        before={"is_active": not active},
        after={"is_active": active},
        reason=reason,
    )


def _recount(portfolio: Portfolio, account: TradingInstance, *, user_active: bool, now: datetime) -> None:
    """Count the locked account in the portfolio's totals, or not, as its activity and freshness now say."""
    max_age = selectors.limits_in_force(instance_id=account.pk).equity_max_age
    counted = account_counts(account, user_active=user_active, now=now, max_age=max_age)
    if counted == account.equity_counted:
        return
    account_equity_set(
        portfolio=portfolio,
        account=account,
        equity=account.equity,
        day_start=account.day_start_equity,
        counted=counted,
    )
    TradingInstance.objects.filter(pk=account.pk).update(equity_counted=counted)
