"""The kill switch: halt (or reduce-only) and resume trading for the portfolio or one account.

A state change takes the portfolio lock first, so every check either committed before it (and its reservation is
then cancelled by the sweep below) or reads the new state. A HALT then cancels every unfilled reservation in its
scope, one short transaction per position. Every change is audited, raises a risk event and is published.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from django.db import DatabaseError, transaction

from accounts.models import TradingInstance, User
from accounts.services import audit_entry_create
from nija.events import publish_on_commit
from risk import locks, selectors
from risk.engine import TradingMode, account_key_prefix
from risk.engine.emergency import PORTFOLIO_PREFIX
from risk.errors import AccountNotFound
from risk.models import BreachLatch, Severity, TradingState
from risk.outputs import trading_state_json
from risk.services.events import position_published, risk_event_raise
from risk.services.lifecycle import lock_position, reservation_release
from trading.models import PositionStatus

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class StateChange:
    state: TradingState
    previous: str
    cancelled_position_ids: tuple[int, ...] = ()


def trading_halt(
    *, instance_id: int | None, mode: str, reason: str, actor: User | None, now: datetime, correlation_id: str = ""
) -> StateChange:
    """Set HALTED or REDUCING for the portfolio (instance_id None) or one account; a HALT cancels the scope's
    unfilled reservations. `actor` None is the system (an emergency threshold)."""
    mode = TradingMode(mode)
    state, previous = trading_state_set(instance_id=instance_id, mode=mode, reason=reason, actor=actor)
    cancelled: tuple[int, ...] = ()
    if mode == TradingMode.HALTED:
        cancelled = reservations_cancel(instance_id=instance_id, now=now)
    return StateChange(state=state, previous=previous, cancelled_position_ids=cancelled)


def trading_resume(*, instance_id: int | None, reason: str, actor: User, now: datetime) -> StateChange:
    """Back to ACTIVE. Resuming re-arms the emergency thresholds of the scope: a breach that still holds trips
    again on the next evaluation, so an operator raises the limit rather than resuming into the same breach."""
    state, previous = trading_state_set(instance_id=instance_id, mode=TradingMode.ACTIVE, reason=reason, actor=actor)
    prefix = PORTFOLIO_PREFIX if instance_id is None else account_key_prefix(instance_id)
    BreachLatch.objects.filter(key__startswith=prefix).delete()
    return StateChange(state=state, previous=previous)


def trading_state_set(
    *, instance_id: int | None, mode: TradingMode, reason: str, actor: User | None, raise_event: bool = True
) -> tuple[TradingState, str]:
    """Set the scope's state (audited and published). `raise_event` False: the caller raises the one risk event
    that explains the change itself (an emergency halt), so one incident never pages twice."""
    with transaction.atomic():
        locks.set_lock_timeouts()
        locks.lock_portfolio()
        if instance_id is not None and not TradingInstance.objects.filter(pk=instance_id).exists():
            raise AccountNotFound()
        state = _state_row(instance_id)
        previous = state.state
        state.state, state.reason, state.changed_by = mode, reason, actor
        state.save()
        _record_change(state, previous=previous, actor=actor, reason=reason, raise_event=raise_event)
    return state, previous


def _state_row(instance_id: int | None) -> TradingState:
    """The scope's state row, locked (created ACTIVE on first use; the unique constraints decide races)."""
    rows = TradingState.objects.select_for_update()
    row = (
        rows.filter(instance__isnull=True).first()
        if instance_id is None
        else rows.filter(instance_id=instance_id).first()
    )
    if row is None:
        TradingState.objects.bulk_create([TradingState(instance_id=instance_id)], ignore_conflicts=True)
        return _state_row(instance_id)
    return row


def _record_change(state: TradingState, *, previous: str, actor: User | None, reason: str, raise_event: bool) -> None:
    scope = f"account {state.instance_id}" if state.instance_id else "portfolio"
    severity = {TradingMode.HALTED: Severity.CRITICAL, TradingMode.REDUCING: Severity.WARNING}.get(
        TradingMode(state.state), Severity.INFO
    )
    who = actor.get_username() if actor is not None else "the system"
    if raise_event:
        risk_event_raise(
            event_type=f"trading_{state.state.lower()}",
            severity=severity,
            instance_id=state.instance_id,
            message=f"Trading for the {scope} set to {state.state} by {who} (was {previous}): {reason}",
            details={"previous": previous, "state": state.state, "reason": reason, "actor": who},
        )
    audit_entry_create(
        actor=actor,
        action="trading_state.change",
        target=state,
        before={"state": previous},
        after={"state": state.state},
        reason=reason,
    )
    publish_on_commit(event_type="state", data=trading_state_json(state), account_id=state.instance_id)


def reservations_cancel(*, instance_id: int | None, now: datetime) -> tuple[int, ...]:
    """Cancel every unfilled reservation in the scope (pending and approved positions are cancelled, the unfilled
    rest of open ones released), one short transaction each so a large halt never holds the portfolio lock long.
    A position that cannot be released now (a lock or statement timeout) is logged and left to the periodic sweeps
    (`halted_scopes_sweep` in the expiry task, `inactive_accounts_sweep` in the account sweep): the halt or the
    deactivation itself has already committed."""
    return _release_each(selectors.unfilled_reservation_ids(instance_id=instance_id), now=now)


def _release_each(
    position_ids: list[int], *, now: datetime, still_applies: Callable[[selectors.LockedScope], bool] | None = None
) -> tuple[int, ...]:
    """Cancel each position's unfilled reservation, one short transaction each, in the lock order (portfolio,
    symbol, group, account, position). `still_applies`, given the locked scope, says whether the reason for the
    release still holds (read under the account's lock); a position whose scope says no is left as it is."""
    cancelled = []
    for position_id in position_ids:
        try:
            with transaction.atomic():
                locked = lock_position(position_id=position_id, instance_id=None)
                if still_applies is not None and not still_applies(locked.scope):
                    continue
                if reservation_release(locked, now=now, final_status=PositionStatus.CANCELLED):
                    position = locked.position
                    position_published(position)
                    cancelled.append(position_id)
        except DatabaseError:
            logger.warning("halt_release_deferred", position_id=position_id, exc_info=True)
    return tuple(cancelled)


def halted_scopes_sweep(*, now: datetime) -> tuple[int, ...]:
    """Release what is still reserved in every HALTED scope (a halt whose own sweep could not finish, or a
    reservation that slipped in): the portfolio's if it is halted, else each halted account's."""
    halted = TradingState.objects.filter(state=TradingMode.HALTED)
    if halted.filter(instance__isnull=True).exists():
        return reservations_cancel(instance_id=None, now=now)
    cancelled: list[int] = []
    for instance_id in halted.filter(instance__isnull=False).values_list("instance_id", flat=True):
        cancelled.extend(reservations_cancel(instance_id=instance_id, now=now))
    return tuple(cancelled)


def inactive_accounts_sweep(*, now: datetime) -> tuple[int, ...]:
    """Release what deactivated accounts (or the accounts of deactivated users) still reserve: a deactivation whose
    own release could not finish, or an account deactivated by a path that does not release (a shell, a script)."""
    return _release_each(selectors.unfilled_reservation_ids_of_inactive_accounts(), now=now)


def silent_accounts_release(*, now: datetime, limit: int) -> tuple[int, ...]:
    """Cancel-on-disconnect: release what accounts the heartbeat watchdog marked silent still reserve (pending and
    approved positions are cancelled, the unfilled rest of open ones released), at most `limit` positions a call,
    oldest first, each through the release every other path uses. Each release re-reads the mark under the
    account's lock: an account whose bot came back in the meantime keeps its reservations."""
    return _release_each(
        selectors.unfilled_reservation_ids_of_silent_accounts(limit=limit),
        now=now,
        still_applies=lambda scope: scope.account.heartbeat_lost_at is not None,
    )
