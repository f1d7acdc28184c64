"""Equity reports (a bot's heartbeat), held increases and their confirmation, operator-recorded transfers, and the
emergency thresholds reports are measured against.

Equity is self-reported, so one bot must not move anyone else's limits. A report is measured against the
account's last accepted figure (before any, its starting balance) and, within a UTC day, also against the day's
start (or a figure an operator confirmed today), so reports each within the bound cannot compound past it
(`increase_reference`): up to max_equity_increase_pct above it, or any decrease, it applies at once; beyond it, it
is held (`EquityHold`, one open hold per account with the latest figure, one warning event per hold) until an
operator confirms it. Held or not, a report is a heartbeat: it keeps
the account fresh and counts it in the portfolio's totals (risk.services.portfolio_equity).

An applied report moves the account's equity, high-water mark and start-of-day equity (set by the first report of
each UTC day) and the portfolio's totals by the difference, then evaluates the emergency thresholds (portfolio
daily loss, account drawdown). A new breach switches its scope to HALTED inside the same transaction, raises one
critical risk event and latches; the latched breach raises nothing more until it clears. The HALT's reservation
sweep runs after commit, in short transactions of its own.

Deposits and withdrawals are not P&L: an operator records them (`equity_transfer_record`), moving equity, peak and
start-of-day equity together, never held. Confirmations and transfers are audited.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from accounts.models import TradingInstance, User
from accounts.services import audit_entry_create
from risk import selectors
from risk.engine import Breach
from risk.engine.money import ratio
from risk.errors import (
    EquityHoldChanged,
    IdempotencyConflict,
    NoEquityHold,
    TransferExceedsEquity,
)
from risk.locks import lock_account_scope
from risk.models import EquityHold, EquityHoldStatus, EquityTransfer, Severity
from risk.services.day import locked_now, trading_day_roll
from risk.services.emergency import breached_scopes_sweep, emergencies_evaluate
from risk.services.events import risk_event_raise
from risk.services.portfolio_equity import ACCOUNT_EQUITY_FIELDS, account_equity_set
from trading.models import DailyStatistic

ZERO = Decimal(0)


@dataclass(frozen=True)
class EquityOutcome:
    account: TradingInstance
    new_breaches: tuple[Breach, ...]
    cancelled_position_ids: tuple[int, ...] = ()
    hold: EquityHold | None = None  # set when the report was held instead of applied


def equity_report(
    *,
    instance_id: int,
    equity: Decimal,
    cash_balance: Decimal | None,
    now: datetime | None = None,
    correlation_id: str = "",
) -> EquityOutcome:
    """Record a bot's equity report: apply it, or hold an increase beyond the bound; trip any emergency threshold
    it reaches. `now` None: the clock read under the portfolio lock (an explicit time is clamped the same way)."""
    with transaction.atomic():
        scope = lock_account_scope(instance_id=instance_id, active_only=True)
        now = locked_now(scope=scope, requested=now, since=scope.account.equity_reported_at)
        trading_day_roll(scope=scope, today=now.date())
        limits = selectors.limits_in_force(instance_id=instance_id)
        bound = 1 + limits.max_equity_increase_pct
        reference = increase_reference(scope.account, equity=equity, bound=bound, today=now.date())
        hold = None
        if equity > reference * bound:
            hold = _hold(scope, equity=equity, cash_balance=cash_balance, accepted=reference, now=now)
            if hold.pk is None:
                _hold_open(hold, bound_pct=limits.max_equity_increase_pct, correlation_id=correlation_id)
            _heartbeat(scope, now=now)
        else:
            _holds_supersede(scope.account, now=now)
            _apply_report(scope, equity=equity, cash_balance=cash_balance, now=now)
        new_breaches = emergencies_evaluate(scope, correlation_id=correlation_id)
    cancelled = breached_scopes_sweep(new_breaches, now=now)
    return EquityOutcome(account=scope.account, new_breaches=new_breaches, cancelled_position_ids=cancelled, hold=hold)


def accepted_equity(account: TradingInstance) -> Decimal:
    """What a report's increase is measured against: the last accepted equity; before any figure was accepted,
    the starting balance plus the transfers recorded so far (an account's equity starts at 0 and only transfers
    move it until then)."""
    if account.equity_accepted_at is not None:
        return account.equity
    return account.starting_balance + account.equity


def increase_reference(account: TradingInstance, *, equity: Decimal, bound: Decimal, today: date) -> Decimal:
    """What a report of `equity` is measured against (held beyond `bound` times it): the last accepted figure
    (`accepted_equity`) and, once a figure was accepted, also the account's start of the UTC day, or the latest
    figure an operator confirmed today if higher. Each report within the bound of the last one could otherwise
    compound past it: +50 % eight times a second takes 100,000 to 2.56 million. The day's start (the last
    accepted figure until the day's first report) is already rolled; the confirmations are read only when the
    report rises beyond the bound of the day's start."""
    reference = accepted_equity(account)
    if account.equity_accepted_at is None or equity <= account.day_start_equity * bound:
        return reference
    confirmed_today = (
        EquityHold.objects.filter(
            instance_id=account.pk,
            status=EquityHoldStatus.CONFIRMED,
            resolved_at__gte=datetime.combine(today, time.min, tzinfo=UTC),
        )
        .order_by("-resolved_at")
        .values_list("equity", flat=True)
        .first()
    )
    return min(reference, max(account.day_start_equity, confirmed_today or ZERO))


def day_start_after(account: TradingInstance, figure: Decimal, *, today: date) -> Decimal:
    """The account's start of day once `figure` is accepted: the day's first accepted figure starts it (the day
    roll put the last accepted equity there meanwhile); later ones leave it."""
    first_today = account.equity_accepted_at is None or account.equity_accepted_at.date() != today
    return figure if first_today else account.day_start_equity


def _apply_report(
    scope: selectors.LockedScope, *, equity: Decimal, cash_balance: Decimal | None, now: datetime
) -> None:
    """Write the report to the account row (counted in the portfolio's totals, which move by the difference)."""
    account = scope.account
    today = now.date()
    day_start = day_start_after(account, equity, today=today)
    account_equity_set(portfolio=scope.portfolio, account=account, equity=equity, day_start=day_start, counted=True)
    account.cash_balance = cash_balance if cash_balance is not None else account.cash_balance
    account.peak_equity = max(account.peak_equity, equity)
    account.day_start_date = today
    account.last_heartbeat = account.equity_reported_at = account.equity_accepted_at = now
    account.save(
        update_fields=[
            *ACCOUNT_EQUITY_FIELDS,
            "cash_balance",
            "peak_equity",
            "day_start_date",
            "last_heartbeat",
            "equity_reported_at",
            "equity_accepted_at",
            "updated_at",
        ]
    )
    _daily_statistic_report(account, today=today)


def _heartbeat(scope: selectors.LockedScope, *, now: datetime) -> None:
    """A held report: the account is fresh (and counted again, its figures as they were), its equity unchanged."""
    account = scope.account
    account_equity_set(
        portfolio=scope.portfolio,
        account=account,
        equity=account.equity,
        day_start=account.day_start_equity,
        counted=True,
    )
    account.last_heartbeat = account.equity_reported_at = now
    account.save(update_fields=[*ACCOUNT_EQUITY_FIELDS, "last_heartbeat", "equity_reported_at", "updated_at"])


def _hold(
    scope: selectors.LockedScope, *, equity: Decimal, cash_balance: Decimal | None, accepted: Decimal, now: datetime
) -> EquityHold:
    """The account's open hold, now holding this figure; a new one (unsaved: `_hold_open`) if there is none."""
    hold = EquityHold.objects.filter(instance_id=scope.account.pk, status=EquityHoldStatus.OPEN).first()
    if hold is None:
        return EquityHold(
            instance_id=scope.account.pk,
            equity=equity,
            cash_balance=cash_balance,
            accepted_equity=accepted,
            first_reported_at=now,
            reported_at=now,
        )
    hold.equity, hold.cash_balance, hold.accepted_equity, hold.reported_at = equity, cash_balance, accepted, now
    hold.reports += 1
    hold.save(update_fields=["equity", "cash_balance", "accepted_equity", "reported_at", "reports"])
    return hold


def _hold_open(hold: EquityHold, *, bound_pct: Decimal, correlation_id: str) -> None:
    """A new hold: its one warning event, then the row (which points at the event)."""
    bound = format(bound_pct.normalize(), "f")
    hold.event = risk_event_raise(
        event_type="equity_increase_held",
        severity=Severity.WARNING,
        instance_id=hold.instance_id,
        message=(
            f"Account #{hold.instance_id} reported equity {hold.equity}, more than {bound} x its accepted "
            f"{hold.accepted_equity} above it (max_equity_increase_pct): held until an operator confirms it, or "
            "records the deposit as a transfer."
        ),
        details={"equity": str(hold.equity), "accepted_equity": str(hold.accepted_equity), "bound_pct": str(bound_pct)},
        correlation_id=correlation_id,
    )
    hold.save()


def _holds_supersede(account: TradingInstance, *, now: datetime) -> None:
    """A report within bounds is the latest figure: an open hold no longer holds it."""
    EquityHold.objects.filter(instance_id=account.pk, status=EquityHoldStatus.OPEN).update(
        status=EquityHoldStatus.SUPERSEDED, resolved_at=now, resolution_reason="a later report within bounds"
    )


def _daily_statistic_report(account: TradingInstance, *, today: date) -> None:
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


# ---------------------------------------------------------------------------------------------- operators
def equity_hold_confirm(
    *,
    instance_id: int,
    actor: User,
    reason: str,
    expected_equity: Decimal,
    now: datetime | None = None,
) -> EquityHold:
    """Apply the account's held figure as accepted now, audited. `expected_equity`: the figure the operator was
    shown; a bot can replace its held figure at any moment, so if a later report replaced it, nothing is applied
    (409): an operator never applies a figure they did not see. As for a report, the day's first accepted figure
    starts the account's day; a later one leaves the start (the gain is P&L)."""
    with transaction.atomic():
        scope = lock_account_scope(instance_id=instance_id, active_only=False)
        now = locked_now(scope=scope, requested=now)
        trading_day_roll(scope=scope, today=now.date())
        hold = EquityHold.objects.filter(instance_id=instance_id, status=EquityHoldStatus.OPEN).first()
        if hold is None:
            raise NoEquityHold()
        if expected_equity != hold.equity:
            raise EquityHoldChanged(f"The held figure is {hold.equity} now, not {expected_equity}; nothing applied.")
        account = scope.account
        before = _equity_audit_values(account)
        if hold.cash_balance is not None:
            account.cash_balance = hold.cash_balance
        day_start = day_start_after(account, hold.equity, today=now.date())
        account.equity_accepted_at = now
        _account_equity_write(
            scope, equity=hold.equity, day_start=day_start, peak=max(account.peak_equity, hold.equity)
        )
        _daily_statistic_report(account, today=now.date())
        hold.status, hold.resolved_at, hold.resolved_by, hold.resolution_reason = (
            EquityHoldStatus.CONFIRMED,
            now,
            actor,
            reason,
        )
        hold.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_reason"])
        after = _equity_audit_values(account)
        audit_entry_create(
            actor=actor, action="equity_hold.confirm", target=hold, before=before, after=after, reason=reason
        )
        risk_event_raise(
            event_type="equity_increase_confirmed",
            severity=Severity.INFO,
            instance_id=instance_id,
            message=f"{actor.get_username()} confirmed account #{instance_id}'s equity {hold.equity}: {reason}",
            details={"hold_id": hold.pk, "equity": str(hold.equity), "previous_equity": str(before["equity"])},
        )
    return hold


@dataclass(frozen=True)
class TransferOutcome:
    transfer: EquityTransfer
    account: TradingInstance
    created: bool  # False: the same reference and amount were recorded before (nothing changed)


def equity_transfer_record(
    *,
    instance_id: int,
    amount: Decimal,
    reference: str,
    reason: str,
    actor: User | None,
    now: datetime | None = None,
) -> TransferOutcome:
    """Record a deposit (amount > 0) or withdrawal (< 0): equity, peak and start-of-day equity move by it together
    (so neither the loss limits nor the equity-increase bound see it), the portfolio's totals too when the account
    counts in them, and the day's statistics row (so no daily P&L or return sees it either); audited. The start of
    day never goes below 0 (a withdrawal larger than it leaves it at 0). Idempotent by (account, reference); the
    same reference with another amount is a 409."""
    with transaction.atomic():
        scope = lock_account_scope(instance_id=instance_id, active_only=False)
        account = scope.account
        existing = EquityTransfer.objects.filter(instance_id=instance_id, reference=reference).first()
        if existing is not None:
            if existing.amount != amount:
                raise IdempotencyConflict("This transfer reference was already recorded with another amount.")
            return TransferOutcome(transfer=existing, account=account, created=False)
        if account.equity + amount < 0:
            raise TransferExceedsEquity(f"A withdrawal of {-amount} exceeds the account's equity {account.equity}.")
        now = locked_now(scope=scope, requested=now)
        trading_day_roll(scope=scope, today=now.date())
        before = _equity_audit_values(account)
        _account_equity_write(
            scope,
            equity=account.equity + amount,
            day_start=max(account.day_start_equity + amount, ZERO),
            peak=max(account.peak_equity + amount, account.equity + amount),
        )
        # The day's statistics start and end where the account's day now does: the transfer is no day's P&L.
        DailyStatistic.objects.filter(instance_id=instance_id, date=now.date()).update(
            start_equity=account.day_start_equity, end_equity=account.equity
        )
        transfer = EquityTransfer.objects.create(
            instance_id=instance_id,
            amount=amount,
            reference=reference,
            reason=reason,
            equity_before=before["equity"],
            equity_after=account.equity,
            recorded_by=actor,
            recorded_at=now,
        )
        _transfer_audit(transfer, actor=actor, before=before, after=_equity_audit_values(account))
    return TransferOutcome(transfer=transfer, account=account, created=True)


def _account_equity_write(scope: selectors.LockedScope, *, equity: Decimal, day_start: Decimal, peak: Decimal) -> None:
    """An operator's change of the locked account's figures, cash balance and acceptance time as set on it (the
    portfolio's totals follow if the account counts in them)."""
    account = scope.account
    account_equity_set(
        portfolio=scope.portfolio, account=account, equity=equity, day_start=day_start, counted=account.equity_counted
    )
    account.peak_equity = peak
    account.save(
        update_fields=[*ACCOUNT_EQUITY_FIELDS, "peak_equity", "cash_balance", "equity_accepted_at", "updated_at"]
    )


def _equity_audit_values(account: TradingInstance) -> dict:
    return {
        "equity": account.equity,
        "peak_equity": account.peak_equity,
        "day_start_equity": account.day_start_equity,
    }


def _transfer_audit(transfer: EquityTransfer, *, actor: User | None, before: dict, after: dict) -> None:
    kind = "deposit" if transfer.amount > 0 else "withdrawal"
    audit_entry_create(
        actor=actor,
        action="equity_transfer.record",
        target=transfer,
        before=before,
        after=after | {"amount": transfer.amount, "reference": transfer.reference},
        reason=transfer.reason,
    )
    who = actor.get_username() if actor is not None else "the system"
    risk_event_raise(
        event_type="equity_transfer",
        severity=Severity.INFO,
        instance_id=transfer.instance_id,
        message=f"{who} recorded a {kind} of {abs(transfer.amount)} for account #{transfer.instance_id}: "
        f"{transfer.reason}",
        details={"transfer_id": transfer.pk, "amount": str(transfer.amount), "reference": transfer.reference},
    )
