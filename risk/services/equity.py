"""Equity reports (a bot's heartbeat) and the emergency thresholds they are measured against.

A report moves the account's equity, high-water mark and start-of-day equity (rolled at the first report of each
UTC day) and the portfolio's totals by the difference, then evaluates the emergency thresholds (portfolio daily
loss, account drawdown). A new breach switches its scope to HALTED inside the same transaction, raises one critical
risk event and latches; the latched breach raises nothing more until it clears. The HALT's reservation sweep runs
after commit, in short transactions of its own.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest

from accounts.models import TradingInstance
from risk import selectors
from risk.engine import PORTFOLIO_PREFIX, Breach, TradingMode, account_key_prefix, emergency_breaches, latch
from risk.engine.money import ratio
from risk.errors import AccountNotFound
from risk.models import BreachLatch, Portfolio, Severity
from risk.services.day import trading_day_roll
from risk.services.events import risk_event_raise
from risk.services.trading_state import reservations_cancel, trading_state_set
from trading.models import DailyStatistic


@dataclass(frozen=True)
class EquityOutcome:
    account: TradingInstance
    new_breaches: tuple[Breach, ...]
    cancelled_position_ids: tuple[int, ...] = ()


def equity_report(
    *, instance_id: int, equity: Decimal, cash_balance: Decimal | None, now: datetime, correlation_id: str = ""
) -> EquityOutcome:
    """Record a bot's equity report and trip any emergency threshold it reaches."""
    with transaction.atomic():
        selectors.set_lock_timeouts()
        try:
            scope = selectors.lock_scope(instance_id=instance_id, symbol=None)
        except TradingInstance.DoesNotExist as exc:
            raise AccountNotFound() from exc
        if not scope.account.is_active:
            raise AccountNotFound()
        trading_day_roll(scope=scope, today=now.date())
        account, portfolio = _apply_report(scope, equity=equity, cash_balance=cash_balance, now=now)
        new_breaches = _evaluate_emergencies(account=account, portfolio=portfolio, correlation_id=correlation_id)
    cancelled = _sweep_halted_scopes(new_breaches, now=now)
    return EquityOutcome(account=account, new_breaches=new_breaches, cancelled_position_ids=cancelled)


def _apply_report(
    scope: selectors.LockedScope, *, equity: Decimal, cash_balance: Decimal | None, now: datetime
) -> tuple[TradingInstance, Portfolio]:
    """Write the report to the account row and move the portfolio totals by the difference (in memory too)."""
    account, portfolio = scope.account, scope.portfolio
    today = now.date()
    # The day's first report sets the account's start of day (the day roll put its last equity there meanwhile).
    first_today = account.equity_reported_at is None or account.equity_reported_at.date() != today
    day_start = equity if first_today else account.day_start_equity
    equity_delta = equity - account.equity
    day_start_delta = day_start - account.day_start_equity
    Portfolio.objects.filter(pk=portfolio.pk).update(
        equity=F("equity") + equity_delta, day_start_equity=F("day_start_equity") + day_start_delta
    )
    portfolio.equity += equity_delta
    portfolio.day_start_equity += day_start_delta
    account.equity = equity
    account.cash_balance = cash_balance if cash_balance is not None else account.cash_balance
    account.peak_equity = max(account.peak_equity, equity)
    account.day_start_equity, account.day_start_date = day_start, today
    account.last_heartbeat = account.equity_reported_at = now
    account.save(
        update_fields=[
            "equity",
            "cash_balance",
            "peak_equity",
            "day_start_equity",
            "day_start_date",
            "last_heartbeat",
            "equity_reported_at",
            "updated_at",
        ]
    )
    _daily_statistic_report(account, today=today)
    return account, portfolio


def _daily_statistic_report(account: TradingInstance, *, today) -> None:
    """The day's row: start equity fixed at the first report, end equity the latest, max drawdown the deepest."""
    drawdown = ratio(account.peak_equity - account.equity, account.peak_equity) or Decimal(0)
    DailyStatistic.objects.get_or_create(
        instance_id=account.pk,
        date=today,
        defaults={"start_equity": account.day_start_equity, "end_equity": account.equity},
    )
    DailyStatistic.objects.filter(instance_id=account.pk, date=today).update(
        end_equity=account.equity, max_drawdown=Greatest(F("max_drawdown"), drawdown)
    )


def _evaluate_emergencies(*, account: TradingInstance, portfolio: Portfolio, correlation_id: str) -> tuple[Breach, ...]:
    """Latch and act on the breaches this report reveals; clear the ones in its scope that no longer hold."""
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
        _trip(breach, correlation_id=correlation_id)
    return new


def _trip(breach: Breach, *, correlation_id: str) -> None:
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


def _sweep_halted_scopes(breaches: tuple[Breach, ...], *, now: datetime) -> tuple[int, ...]:
    cancelled: list[int] = []
    for breach in breaches:
        cancelled.extend(reservations_cancel(instance_id=breach.account_id, now=now))
    return tuple(cancelled)
