"""The emergency thresholds evaluated for the whole desk at once, without any equity report (the monitoring
aggregation calls this on every run).

The evaluation of one scope (`emergencies_evaluate`, `breach_trip`, `breached_scopes_sweep`) lives here too: an
equity report runs it for its own account and the portfolio (risk.services.equity); this pass catches what no
report triggers: a threshold an operator tightened, a day that rolled, a latch an operator's resume re-armed while
the breach still holds. It is the same evaluation with the same latch, in two steps so the usual run takes no lock:

1. Unlocked reads: the portfolio totals (as of today: a day not yet rolled has no loss yet), the active accounts
   whose drawdown reaches their emergency limit (a SQL filter with the same exact comparison as the engine), the
   latched keys. The engine's `emergency_breaches` and `latch` say which breaches are new and which latched ones
   cleared. Usually neither: nothing is locked or written.
2. For each account with something to do, the equity report's own step under its locks (portfolio, then the
   account), at the clock read under the lock: the day roll, then the evaluation and latch of that account and
   the portfolio, which trips a new breach (HALT, one critical event, the latch) or clears a stale latch. A
   portfolio-only change is confirmed under the portfolio lock alone. A breach that vanished between the two
   steps is simply not tripped.

The HALT's reservation sweep runs after commit, as for an equity report.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q, Value
from django.db.models.expressions import F
from django.db.models.functions import Coalesce

from accounts.models import TradingInstance
from risk import locks, selectors
from risk.engine import (
    PORTFOLIO_PREFIX,
    Breach,
    Limits,
    TradingMode,
    account_key_prefix,
    emergency_breaches,
    latch,
)
from risk.errors import AccountNotFound
from risk.locks import lock_account_scope
from risk.models import BreachLatch, Portfolio, RiskLimits, Severity
from risk.services.day import locked_now, trading_day_roll
from risk.services.events import risk_event_raise
from risk.services.trading_state import reservations_cancel, trading_state_set

ACCOUNT_PREFIX = "account:"


@dataclass(frozen=True)
class EmergencySweep:
    """What one desk-wide evaluation did: breaches tripped, latched keys cleared, reservations cancelled."""

    tripped: tuple[Breach, ...] = ()
    cleared: frozenset[str] = frozenset()
    cancelled_position_ids: tuple[int, ...] = ()


def emergencies_evaluate_all(*, now: datetime, correlation_id: str = "") -> EmergencySweep:
    """Evaluate every emergency threshold of the portfolio and each active account; trip what is new."""
    limits = _limits_by_account()
    default = limits[None]
    portfolio = _portfolio_as_of(Portfolio.objects.get(pk=Portfolio.SINGLETON_ID), now=now)
    accounts = _accounts_in_breach(default)
    breaches = emergency_breaches(
        selectors.states_portfolio_totals(portfolio, TradingMode.ACTIVE),
        [selectors.account_state(account, TradingMode.ACTIVE) for account in accounts],
        default,
        {account.pk: limits.get(account.pk, default) for account in accounts},
    )
    previous = frozenset(BreachLatch.objects.values_list("key", flat=True))
    new, cleared = latch(previous, breaches)
    if not new and not cleared:
        return EmergencySweep()
    return _confirm_under_locks(new, cleared, now=now, correlation_id=correlation_id)


def _limits_by_account() -> dict[int | None, Limits]:
    """The engine's limits: the portfolio default (key None) and each overriding account's (one query)."""
    rows = list(RiskLimits.objects.values())
    default = next(row for row in rows if row["instance_id"] is None)
    limits: dict[int | None, Limits] = {None: selectors.limits_from_rows([default]).engine}
    for row in rows:
        if row["instance_id"] is not None:
            limits[row["instance_id"]] = selectors.limits_from_rows([default, row]).engine
    return limits


def _portfolio_as_of(portfolio: Portfolio, *, now: datetime) -> Portfolio:
    """The portfolio as today sees it (in memory): before the day's roll, today's loss is nothing yet."""
    if portfolio.day_start_date != now.date():
        portfolio.day_start_equity = portfolio.equity
    return portfolio


def _accounts_in_breach(default: Limits) -> list[TradingInstance]:
    """Active accounts (of active users) whose drawdown has reached their emergency limit: peak - equity >=
    pct x peak, exact (NUMERIC), the override's pct else the default's, as the engine compares."""
    pct = Coalesce(F("risk_limits__emergency_drawdown_pct"), Value(default.emergency_drawdown_pct))
    return list(
        TradingInstance.objects.filter(is_active=True, user__is_active=True, peak_equity__gt=0)
        .alias(fall=F("peak_equity") - F("equity"), floor=pct * F("peak_equity"))
        .filter(fall__gte=F("floor"))
        .only("id", "equity", "exposure", "position_count", "peak_equity", "day_start_equity")
        .order_by("pk")
    )


def _confirm_under_locks(
    new: tuple[Breach, ...], cleared: frozenset[str], *, now: datetime, correlation_id: str
) -> EmergencySweep:
    """Re-evaluate, under the locks an equity report takes, each scope with a new breach or a cleared latch."""
    account_ids = sorted(
        {breach.account_id for breach in new if breach.account_id is not None}
        | {int(key.split(":")[1]) for key in cleared if key.startswith(ACCOUNT_PREFIX)}
    )
    tripped: list[Breach] = []
    for account_id in account_ids:
        tripped.extend(_confirm_account(account_id, correlation_id=correlation_id))
    portfolio_pending = any(breach.account_id is None for breach in new) or any(
        key.startswith(PORTFOLIO_PREFIX) for key in cleared
    )
    if portfolio_pending and not account_ids:
        tripped.extend(_confirm_portfolio(now=now, correlation_id=correlation_id))
    still_latched = frozenset(BreachLatch.objects.filter(key__in=cleared).values_list("key", flat=True))
    return EmergencySweep(
        tripped=tuple(tripped),
        cleared=cleared - still_latched,
        cancelled_position_ids=breached_scopes_sweep(tuple(tripped), now=now),
    )


def _confirm_account(account_id: int, *, correlation_id: str) -> tuple[Breach, ...]:
    """An equity report's evaluation for one account and the portfolio, without the report, at the clock read
    under the lock. A deactivated account's latches are dropped instead (nothing of it is evaluated; reactivating
    it re-arms its thresholds), and so are those of an account that no longer exists."""
    with transaction.atomic():
        try:
            scope = lock_account_scope(instance_id=account_id, active_only=False)
        except AccountNotFound:
            scope = None
        if scope is None or not scope.account_active:
            BreachLatch.objects.filter(key__startswith=account_key_prefix(account_id)).delete()
            return ()
        trading_day_roll(scope=scope, today=locked_now(scope=scope, requested=None).date())
        return emergencies_evaluate(scope, correlation_id=correlation_id)


def _confirm_portfolio(*, now: datetime, correlation_id: str) -> tuple[Breach, ...]:
    """The portfolio's daily-loss threshold under the portfolio lock: trip it if new, clear its latch if gone."""
    with transaction.atomic():
        locks.set_lock_timeouts()
        locked = locks.lock_portfolio()
        portfolio = _portfolio_as_of(locked, now=max(now, locked.locked_at))
        breaches = emergency_breaches(
            selectors.states_portfolio_totals(portfolio, TradingMode.ACTIVE),
            (),
            selectors.limits_in_force(instance_id=None).engine,
        )
        previous = frozenset(BreachLatch.objects.filter(key__startswith=PORTFOLIO_PREFIX).values_list("key", flat=True))
        new, cleared = latch(previous, breaches, scope_prefixes=(PORTFOLIO_PREFIX,))
        BreachLatch.objects.filter(key__in=cleared).delete()
        for breach in new:
            breach_trip(breach, correlation_id=correlation_id)
        return new


# ---------------------------------------------------------------------------------------------- one scope
def emergencies_evaluate(scope: selectors.LockedScope, *, correlation_id: str) -> tuple[Breach, ...]:
    """Under the scope's locks: latch and act on the breaches its account and the portfolio show now (each new one
    trips: `breach_trip`); clear the latches in its scope that no longer hold. An equity report calls it after
    applying the report, the desk-wide pass for each account it confirms. Returns the new breaches."""
    account, portfolio = scope.account, scope.portfolio
    limits = selectors.limits_in_force(instance_id=None).engine
    account_limits = {account.pk: selectors.limits_in_force(instance_id=account.pk).engine}
    portfolio_mode, account_mode = selectors.trading_modes(instance_id=account.pk)
    breaches = emergency_breaches(
        selectors.states_portfolio_totals(portfolio, portfolio_mode),
        [selectors.account_state(account, account_mode)],
        limits,
        account_limits,
    )
    prefixes = (PORTFOLIO_PREFIX, account_key_prefix(account.pk))
    in_scope = Q(key__startswith=PORTFOLIO_PREFIX) | Q(key__startswith=account_key_prefix(account.pk))
    previous = frozenset(BreachLatch.objects.filter(in_scope).values_list("key", flat=True))
    new, cleared = latch(previous, breaches, scope_prefixes=prefixes)
    BreachLatch.objects.filter(key__in=cleared).delete()
    for breach in new:
        breach_trip(breach, correlation_id=correlation_id)
    return new


def breach_trip(breach: Breach, *, correlation_id: str) -> None:
    """The HALT of the breach's scope (audited), one critical event saying why, and the latch."""
    _, previous = trading_state_set(
        instance_id=breach.account_id, mode=TradingMode.HALTED, reason=breach.message, actor=None, raise_event=False
    )
    event = risk_event_raise(
        event_type=f"emergency_{breach.kind}",
        severity=Severity.CRITICAL,
        instance_id=breach.account_id,
        message=f"Emergency halt: {breach.message}",
        details={
            "key": breach.key,
            "limit": str(breach.limit),
            "value": str(breach.value),
            "previous_state": previous,
            "state": TradingMode.HALTED.value,
        },
        correlation_id=correlation_id,
    )
    BreachLatch.objects.create(key=breach.key, event=event)


def breached_scopes_sweep(breaches: tuple[Breach, ...], *, now: datetime) -> tuple[int, ...]:
    """After commit: cancel the unfilled reservations of each scope the breaches halted (short transactions)."""
    cancelled: list[int] = []
    for breach in breaches:
        cancelled.extend(reservations_cancel(instance_id=breach.account_id, now=now))
    return tuple(cancelled)
