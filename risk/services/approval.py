"""The approval workflow: an operator approves or rejects a position that waits for approval.

Approval re-runs every rule at approval time, with the position's own reservation left out of the counts, and
can still reject. Both actions are audited (who, before, after, why) and published after commit.
"""

from datetime import datetime

from django.db import transaction

from accounts.models import User
from accounts.selectors import user_permission_get
from accounts.services import audit_entry_create
from risk import selectors
from risk.engine import CheckRequest, Decision, Outcome, Side, evaluate
from risk.errors import AccountInactive, IllegalTransition, StaleState
from risk.services.check import reason_json
from risk.services.day import locked_now, trading_day_roll
from risk.services.events import position_published
from risk.services.exposure import position_rehold
from risk.services.lifecycle import LockedPosition, lock_position
from trading.market import market_price_get
from trading.models import Position, PositionStatus


def _audit_values(position: Position) -> dict:
    return {"status": position.status, "notional": str(position.notional), "reasons": position.reasons}


def position_approve(*, position_id: int, actor: User, reason: str, now: datetime | None = None) -> Position:
    """Approve a pending position if every rule still passes now; otherwise it is rejected with the reasons. A
    deactivated account's (or user's) positions are never approved (403). `now` None: the clock read under the
    portfolio lock."""
    with transaction.atomic():
        locked = lock_position(position_id=position_id, instance_id=None)
        position = locked.position
        if not locked.scope.account_active:
            raise AccountInactive()
        now = locked_now(scope=locked.scope, requested=now)
        _ensure_pending(position, action="approved")
        _ensure_within_approval_window(position, now=now)
        before = _audit_values(position)
        decision = _recheck(locked, now=now)
        if decision.decision == Outcome.REJECTED:
            position.reasons = [reason_json(r) for r in decision.reasons]  # saved and published with the decision
            _decide(locked, status=PositionStatus.REJECTED, actor=actor, reason=reason, now=now)
        else:
            position.checked_notional = decision.notional
            position.approved_at = now
            position.reservation_expires_at = (
                now + selectors.limits_in_force(instance_id=position.instance_id).reservation_ttl
            )
            _decide(locked, status=PositionStatus.APPROVED, actor=actor, reason=reason, now=now)
        audit_entry_create(
            actor=actor,
            action="position.approve",
            target=position,
            before=before,
            after=_audit_values(position),
            reason=reason,
        )
    return position


def position_reject(*, position_id: int, actor: User, reason: str, now: datetime | None = None) -> Position:
    """Reject a pending position and release its reservation."""
    with transaction.atomic():
        locked = lock_position(position_id=position_id, instance_id=None)
        now = locked_now(scope=locked.scope, requested=now)
        _ensure_pending(locked.position, action="rejected")
        before = _audit_values(locked.position)
        _decide(locked, status=PositionStatus.REJECTED, actor=actor, reason=reason, now=now)
        audit_entry_create(
            actor=actor,
            action="position.reject",
            target=locked.position,
            before=before,
            after=_audit_values(locked.position),
            reason=reason,
        )
    return locked.position


def _ensure_pending(position: Position, *, action: str) -> None:
    if position.status != PositionStatus.PENDING_APPROVAL:
        raise IllegalTransition(f"Only a position pending approval can be {action}; this one is {position.status}.")


def _ensure_within_approval_window(position: Position, *, now: datetime) -> None:
    """A pending position holds its reservation for approval_ttl only: past it (the expiry sweep may not have run
    yet) the bot has stopped waiting, so it can no longer be approved; the sweep expires it."""
    deadline = position.reservation_expires_at
    if deadline is not None and deadline <= now:
        raise IllegalTransition(f"The approval window of this position closed at {deadline.isoformat()}.")


def _recheck(locked: LockedPosition, *, now: datetime) -> Decision:
    """Every rule, now, as if the position's own reservation were not counted yet."""
    position, scope = locked.position, locked.scope
    trading_day_roll(scope=scope, today=now.date())
    limits = selectors.limits_in_force(instance_id=position.instance_id)
    if selectors.equity_is_stale(scope.account, now=now, max_age=limits.equity_max_age):
        raise StaleState()
    portfolio_mode, account_mode = selectors.trading_modes(instance_id=position.instance_id)
    account, portfolio = selectors.states_without(
        selectors.account_state(scope.account, account_mode),
        selectors.portfolio_state(scope, portfolio_mode),
        notional=position.notional,
    )
    mark = market_price_get(position.symbol, strict=True)  # Redis down: 503, never the bot's own lower price
    request = CheckRequest(
        symbol=position.symbol,
        side=Side(position.side),
        quantity=position.quantity,
        price=position.requested_price,
        mark=mark.price if mark is not None else None,
    )
    permission = selectors.user_limits(user_permission_get(user_id=scope.account.user_id))
    return evaluate(request, account, portfolio, permission, limits.engine)


def _decide(locked: LockedPosition, *, status: str, actor: User, reason: str, now: datetime) -> None:
    position = locked.position
    position.status = status
    position.decided_by = actor
    position.decided_at = now
    position.decision_reason = reason
    position_rehold(scope=locked.scope, position=position, was_active=True)
    position.save(
        update_fields=[
            "status",
            "decided_by",
            "decided_at",
            "decision_reason",
            "checked_notional",
            "approved_at",
            "reservation_expires_at",
            "notional",
            "reasons",
            "updated_at",
        ]
    )
    position_published(position)
