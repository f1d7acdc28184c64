"""The pre-trade check: validate nothing (the API did), read, decide with the pure engine, record, reserve.

No number of concurrent checks can together pass a limit, and no Python runs while the rows are locked:

- A check first decides on an unlocked snapshot (one round trip, `risk_read_check_scope`). A dry run answers there
  and writes nothing; a refusal or a replay answers from it; a rejection is one INSERT (it reserves nothing).
- An approval is reserved by one statement (risk.services.exposure.position_reserve_verified) that locks the
  portfolio, symbol, correlation-group and account rows in the declared order, finds everything but the counters
  unchanged and the counters within the decision's bounds (risk.engine.bounds), inserts the position, moves the
  counters and commits, all on its one round trip.
- Otherwise (a snapshot that no longer holds, the day's first check, an approval request, an explicit time) the
  locked path decides: it locks the same rows first, then decides and records under them. The idempotency lookup
  runs under the locks there, so a retry racing its original always sees it.

Every check that is not a dry run is recorded as a `Position` with its decision and reasons (rejections hold no
exposure); dry runs and reduce-only confirmations write nothing.
"""

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.selectors import user_permission_get
from nija.metrics import RISK_CHECK_PATHS, RISK_LOCK_HELD
from risk import locks, selectors
from risk.engine import CheckRequest, Decision, Outcome, Reason, Side, UserLimits, evaluate, legacy_request
from risk.engine.bounds import counter_bounds
from risk.errors import AccountInactive, AccountNotFound, IdempotencyConflict, PositionNotFound, StaleState
from risk.models import Severity
from risk.services.day import as_of_day, day_roll_due, locked_now, trading_day_roll
from risk.services.events import position_published, risk_event_raise
from risk.services.exposure import Reservation, position_insert, position_reserve_verified, rejection_insert
from trading.fingerprints import check_fingerprint
from trading.market import market_price_get
from trading.models import Position, PositionStatus

logger = structlog.get_logger(__name__)

DECISION_STATUS = {
    Outcome.APPROVED: PositionStatus.APPROVED,
    Outcome.PENDING_APPROVAL: PositionStatus.PENDING_APPROVAL,
    Outcome.REJECTED: PositionStatus.REJECTED,
}


@dataclass(frozen=True)
class CheckInput:
    """A validated check request. `legacy_position_size` is set for the earlier `{account_id, position_size}` body."""

    account_id: int
    symbol: str = ""
    side: str = Side.LONG
    quantity: Decimal = Decimal(0)
    price: Decimal = Decimal(0)
    reduce_only: bool = False
    position_id: int | None = None
    dry_run: bool = False
    client_order_id: str | None = None
    legacy_position_size: Decimal | None = None

    @property
    def is_legacy(self) -> bool:
        return self.legacy_position_size is not None

    def fingerprint(self) -> str:
        """SHA-256 of the request's meaning (numbers normalized), to tell a retry from a different body."""
        return check_fingerprint(
            symbol=self.symbol,
            side=str(self.side),
            quantity=self.quantity,
            price=self.price,
            reduce_only=self.reduce_only,
            position_id=self.position_id,
        )


@dataclass(frozen=True)
class CheckOutcome:
    """What the bot is told: the decision, every failing rule, the position recording it and the figures after.

    `allowed` says whether the bot may place the order now: an approval just given, or for a replay, an approval
    the position still holds. `status` is the position's status now (None when nothing was recorded)."""

    decision: str
    notional: Decimal
    reasons: tuple[dict, ...]
    allowed: bool = False
    status: str | None = None
    position_id: int | None = None
    expires_at: datetime | None = None
    metrics: dict = field(default_factory=dict)
    replayed: bool = False


def reason_json(reason: Reason) -> dict:
    """A rule failure as stored and answered: numbers as strings, like every amount the API sends, and whose
    figures they are (`risk.reasons` renders them for each viewer)."""

    def as_json(value: object) -> object:
        return str(value) if isinstance(value, Decimal) else value

    return {
        "code": str(reason.code),
        "message": reason.message,
        "limit": as_json(reason.limit),
        "value": as_json(reason.value),
        "scope": str(reason.scope),
    }


def position_check(
    *, request: CheckInput, user_id: int, now: datetime | None = None, correlation_id: str = ""
) -> CheckOutcome:
    """Decide a bot's request and, unless it is a dry run or a reduce-only confirmation, record and reserve it.
    `now` None: the clock PostgreSQL reads (once the rows are locked, for a reservation); an explicit `now` (a task,
    a test) takes the locked path, which acts at that time."""
    if request.reduce_only:
        return _reduce_only_confirmation(request=request)
    inputs = _CheckInputs(
        request=request,
        engine_request=_engine_request(request),
        permission=selectors.user_limits(user_permission_get(user_id=user_id)),
        now=now,
        fingerprint=request.fingerprint(),  # before any lock: nothing below waits on it
        correlation_id=correlation_id,
    )
    path = "locked"
    try:
        if request.dry_run or now is None:
            path = "snapshot"
            outcome = _check_on_snapshot(inputs)
            if outcome is not None:
                return outcome
            path = "fallback"
        return _check_under_locks(inputs)
    finally:  # every check, refusals and errors included, counted by the path that answered it
        RISK_CHECK_PATHS.labels(path).inc()


def _check_on_snapshot(inputs: "_CheckInputs") -> CheckOutcome | None:
    """Decide on an unlocked snapshot (one round trip) and record the decision in one more statement, which for an
    approval re-verifies the snapshot under the locks (risk.services.exposure.position_reserve_verified). None when
    the locked path must decide instead: the first check of a UTC day (it rolls the day), an approval request (its
    event commits with it), or a reservation whose snapshot no longer holds. A dry run always answers here.

    A rejection or a refusal (unknown, inactive, stale account) is the answer at the snapshot's moment; it reserves
    nothing, so no lock is needed to record it. A replay reads the earlier position as committed then."""
    request, engine_request, permission = inputs.request, inputs.engine_request, inputs.permission
    now, fingerprint, correlation_id = inputs.now, inputs.fingerprint, inputs.correlation_id
    snapshot = selectors.read_check_scope(
        instance_id=request.account_id,
        symbol=None if request.is_legacy else request.symbol,
        client_order_id=None if request.dry_run else request.client_order_id,
    )
    now, replay = _refused_or_replayed(snapshot, request, now=now, fingerprint=fingerprint)
    if replay is not None:
        return replay
    scope, limits = snapshot.locked, snapshot.limits
    if request.dry_run:
        as_of_day(scope, today=now.date())  # in memory only: a dry run writes nothing
    elif day_roll_due(scope, today=now.date()):
        return None
    account = selectors.account_state(scope.account, snapshot.account_mode)
    portfolio = selectors.portfolio_state(scope, snapshot.portfolio_mode)
    decision = evaluate(engine_request, account, portfolio, permission, limits.engine)
    if request.dry_run:
        return _outcome(decision, scope=scope, position=None)
    if decision.decision == Outcome.PENDING_APPROVAL:
        return None
    position = _new_position(request=request, decision=decision, limits=limits, now=now, fingerprint=fingerprint)
    account_exposure = scope.account.exposure
    try:
        if decision.decision == Outcome.REJECTED:
            with _own_statement():
                position.pk = rejection_insert(position=position)
        else:
            reservation = _reserve(snapshot, engine_request, decision, permission=permission, position=position)
            if reservation.position_id is None:
                return None
            position.pk = reservation.position_id
            account_exposure = reservation.account_exposure - decision.notional
    except IntegrityError:
        # The unique (instance, client_order_id) constraint: a retry recorded between the snapshot and this write
        # (a rejection takes no lock); the stored answer is the right one.
        if request.client_order_id is None:
            raise
        return _replay_unlocked(request, now=now)
    _announce(position=position, decision=decision, correlation_id=correlation_id)
    return _outcome(decision, scope=scope, position=position, account_exposure=account_exposure)


def _reserve(
    snapshot: selectors.CheckScope,
    engine_request: CheckRequest,
    decision: Decision,
    *,
    permission: UserLimits,
    position: Position,
) -> Reservation:
    """Reserve an approval made on `snapshot` in one statement that re-verifies it under the locks; the position
    takes the statement's times. No position id: the snapshot no longer held (nothing written)."""
    scope, limits = snapshot.locked, snapshot.limits
    bounds = counter_bounds(
        engine_request,
        selectors.account_state(scope.account, snapshot.account_mode),
        selectors.portfolio_state(scope, snapshot.portfolio_mode),
        permission,
        limits.engine,
        notional=decision.notional,
    )
    with _own_statement():
        reservation = position_reserve_verified(
            snapshot=snapshot,
            bounds=bounds,
            position=position,
            fresh_until=scope.account.equity_reported_at + limits.equity_max_age,
            ttl=limits.reservation_ttl,
        )
    RISK_LOCK_HELD.observe(reservation.held_seconds)
    if reservation.clock is not None:
        position.created_at = position.updated_at = position.decided_at = position.approved_at = reservation.clock
        position.reservation_expires_at = reservation.clock + limits.reservation_ttl
    return reservation


def _refused_or_replayed(
    check: selectors.CheckScope | None, request: CheckInput, *, now: datetime | None, fingerprint: str
) -> tuple[datetime, "CheckOutcome | None"]:
    """What both paths answer before deciding, from the rows they read: an unknown or inactive account (raised),
    the replay of an earlier position with the client_order_id, a stale equity report (raised). Else the time the
    check acts at (`locked_now`) and no answer yet."""
    if check is None:
        raise AccountNotFound()
    if not check.locked.account_active:
        raise AccountInactive()
    now = locked_now(scope=check.locked, requested=now)
    if check.existing is not None:
        return now, _replay(check.existing, request, now=now, fingerprint=fingerprint)
    if selectors.equity_is_stale(check.locked.account, now=now, max_age=check.limits.equity_max_age):
        raise StaleState()
    return now, None


@contextmanager
def _own_statement() -> Iterator[None]:
    """Outside a transaction, nothing: the statement is its own transaction and its COMMIT rides on its round trip.
    Inside one (a caller's, a test's), a savepoint, so that a failed statement leaves that transaction usable."""
    if connection.in_atomic_block:
        with transaction.atomic():
            yield
    else:
        yield


def _check_under_locks(inputs: "_CheckInputs") -> CheckOutcome:
    """The locked check: lock the rows (one round trip), decide and record under the locks, COMMIT."""
    request, now = inputs.request, inputs.now
    lock_clock = LockClock()
    try:
        with transaction.atomic():
            result = _check_locked(inputs, lock_clock=lock_clock)
        if isinstance(result, CheckOutcome):
            return result
    except IntegrityError:
        # The unique (instance, client_order_id) constraint: only reachable if a row appeared outside the
        # portfolio lock; the stored answer is still the right one.
        if request.client_order_id is None or request.dry_run:
            raise
        return _replay_unlocked(request, now=now or timezone.now())
    # Committed: the row is free. What only reports the decision is built now, outside the lock.
    if result.position.status != PositionStatus.PENDING_APPROVAL:
        _announce(position=result.position, decision=result.decision, correlation_id=inputs.correlation_id)
    return _outcome(result.decision, scope=result.scope, position=result.position)


@dataclass(frozen=True)
class _CheckInputs:
    """One check's inputs, prepared once before any statement and handed to the path that answers it: the
    request, the engine's view of it (with the fresh mark), the owner's limits, the explicit time if any, the
    fingerprint of its body and the correlation id of its logs and events."""

    request: CheckInput
    engine_request: CheckRequest
    permission: UserLimits
    now: datetime | None
    fingerprint: str
    correlation_id: str


@dataclass(frozen=True)
class _Recorded:
    """A decision recorded under the lock, reported after COMMIT."""

    decision: Decision
    scope: selectors.LockedScope
    position: Position


class LockClock:
    """How long a reserving check on the locked path held the portfolio row (lock statement answered -> COMMIT
    returned), counted in `nija_risk_portfolio_lock_held_seconds` (the snapshot path counts PostgreSQL's own figure,
    to which its COMMIT's WAL flush adds: `make bench` measures that flush and adds it for the row's busy share)."""

    __slots__ = ("_locked_at",)

    def __init__(self) -> None:
        self._locked_at: float | None = None

    def locked(self) -> None:
        """The lock statement answered: start, and stop when COMMIT returns (the first on_commit callback)."""
        self._locked_at = time.perf_counter()
        transaction.on_commit(self._committed)

    def _committed(self) -> None:
        RISK_LOCK_HELD.observe(time.perf_counter() - self._locked_at)


def _engine_request(request: CheckInput) -> CheckRequest:
    if request.is_legacy:
        return legacy_request(request.legacy_position_size)
    return CheckRequest(
        symbol=request.symbol,
        side=Side(request.side),
        quantity=request.quantity,
        price=request.price,
        mark=_fresh_mark(request.symbol),
    )


def _fresh_mark(symbol: str) -> Decimal | None:
    """The fresh mark's price, or None when there is none. Read strictly: if Redis does not answer, the check
    fails closed (503) rather than pricing at the bot's own, possibly lower, price when a mark exists."""
    mark = market_price_get(symbol, strict=True)
    return mark.price if mark is not None else None


def _check_locked(inputs: "_CheckInputs", *, lock_clock: LockClock) -> "CheckOutcome | _Recorded":
    request, engine_request, permission = inputs.request, inputs.engine_request, inputs.permission
    now, fingerprint, correlation_id = inputs.now, inputs.fingerprint, inputs.correlation_id
    check = locks.lock_check_scope(
        instance_id=request.account_id, symbol=request.symbol, client_order_id=request.client_order_id
    )
    lock_clock.locked()
    now, replay = _refused_or_replayed(check, request, now=now, fingerprint=fingerprint)
    if replay is not None:
        return replay
    scope, limits = check.locked, check.limits
    trading_day_roll(scope=scope, today=now.date())
    decision = evaluate(
        engine_request,
        selectors.account_state(scope.account, check.account_mode),
        selectors.portfolio_state(scope, check.portfolio_mode),
        permission,
        limits.engine,
    )
    position = _record(request=request, decision=decision, scope=scope, limits=limits, now=now, fingerprint=fingerprint)
    if position.status == PositionStatus.PENDING_APPROVAL:
        # Its approval_requested event is written with the position (same transaction), and announced after it.
        _announce(position=position, decision=decision, correlation_id=correlation_id)
    return _Recorded(decision=decision, scope=scope, position=position)


def _record(
    *, request: CheckInput, decision: Decision, scope: selectors.LockedScope, limits, now: datetime, fingerprint: str
) -> Position:
    """Write the position with its decision; approved and pending ones reserve their notional on every counter
    (one statement: `position_insert`). Returns the position as written (not re-read)."""
    position = _new_position(request=request, decision=decision, limits=limits, now=now, fingerprint=fingerprint)
    position.pk = position_insert(scope=scope, position=position, reserve=position.status != PositionStatus.REJECTED)
    return position


def _new_position(
    *, request: CheckInput, decision: Decision, limits: selectors.LimitsInForce, now: datetime, fingerprint: str
) -> Position:
    """The position recording a decision, unsaved."""
    status = DECISION_STATUS[decision.decision]
    ttl = limits.approval_ttl if status == PositionStatus.PENDING_APPROVAL else limits.reservation_ttl
    return Position(
        instance_id=request.account_id,
        symbol=request.symbol,
        side=str(request.side),
        quantity=request.quantity,
        requested_price=request.price,
        notional=decision.notional,
        checked_notional=decision.notional,
        check_decision=str(decision.decision),
        status=status,
        reasons=[reason_json(reason) for reason in decision.reasons],
        client_order_id=request.client_order_id,
        request_fingerprint=fingerprint,
        reservation_expires_at=None if status == PositionStatus.REJECTED else now + ttl,
        approved_at=now if status == PositionStatus.APPROVED else None,
        decided_at=now,
        created_at=now,
        updated_at=now,
    )


def _announce(*, position: Position, decision: Decision, correlation_id: str) -> None:
    """The decision in the logs (operators query them by correlation id), on the live stream after commit, and a
    warning event when an operator must decide."""
    entry = {
        "position_id": position.pk,
        "account_id": position.instance_id,
        "symbol": position.symbol,
        "decision": position.check_decision,
        "notional": str(position.notional),
        "reasons": [str(reason.code) for reason in decision.reasons],
    }
    transaction.on_commit(lambda: _log_decision(entry))  # formatted outside the row locks
    position_published(position)
    if position.status == PositionStatus.PENDING_APPROVAL:
        risk_event_raise(
            event_type="approval_requested",
            severity=Severity.WARNING,
            instance_id=position.instance_id,
            message=f"Position #{position.pk} ({position.symbol}, notional {position.notional}) awaits approval.",
            details={"position_id": position.pk, "notional": str(position.notional)},
            correlation_id=correlation_id,
        )


def _log_decision(entry: dict) -> None:
    """Within a request, the decision rides on the request's one log line (`request_finished`, which carries the
    request id operators query by); anywhere else it is a `position_checked` line of its own."""
    if structlog.contextvars.get_contextvars().get("request_id"):
        structlog.contextvars.bind_contextvars(**entry)
    else:
        logger.info("position_checked", **entry)


def _outcome(
    decision: Decision,
    *,
    scope: selectors.LockedScope,
    position: Position | None,
    account_exposure: Decimal | None = None,
) -> CheckOutcome:
    """The answer. `account_exposure`: the account's exposure the decision was recorded on, when it is not the
    scope's (a reservation by the one statement, which found the counters moved since the snapshot)."""
    exposure = scope.account.exposure if account_exposure is None else account_exposure
    return CheckOutcome(
        decision=str(decision.decision),
        notional=decision.notional,
        reasons=tuple(reason_json(reason) for reason in decision.reasons),
        allowed=decision.allowed,
        status=position.status if position is not None else None,
        position_id=position.pk if position is not None else None,
        expires_at=position.reservation_expires_at if position is not None else None,
        metrics=_metrics_after(decision, equity=scope.account.equity, exposure=exposure),
    )


def _metrics_after(decision: Decision, *, equity: Decimal, exposure: Decimal) -> dict:
    """The bot's own account as it stands after this decision (a reservation included). Portfolio-wide figures are
    left out: a bot only ever sees its own account, and with few accounts the portfolio's equity and exposure
    would tell it another account's."""
    reserved = decision.notional if decision.decision != Outcome.REJECTED else Decimal(0)
    account_exposure = exposure + reserved
    return {
        "account_equity": equity,
        "account_exposure": account_exposure,
        "account_exposure_pct": _pct(account_exposure, equity),
    }


def _pct(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return (numerator / denominator).quantize(Decimal("0.00000001")) if denominator else None


def _replay(
    existing: Mapping[str, Any], request: CheckInput, *, now: datetime, fingerprint: str | None = None
) -> CheckOutcome:
    """The answer to a retry with the same client_order_id (409 if the body differs): the decision as originally
    given, the position's status now, and `allowed` only if the position holds an approval now (one since
    cancelled, expired or swept does not; a pending one approved since does). `existing` holds the position's
    column values (JSON from the lock function, or Python values)."""
    if existing["request_fingerprint"] != (fingerprint or request.fingerprint()):
        raise IdempotencyConflict()
    expires_at = _as_datetime(existing["reservation_expires_at"])
    return CheckOutcome(
        decision=existing["check_decision"],
        notional=Decimal(existing["checked_notional"]),
        reasons=tuple(existing["reasons"]),
        allowed=_holds_approval(existing, expires_at=expires_at, now=now),
        status=existing["status"],
        position_id=existing["id"],
        expires_at=expires_at,
        replayed=True,
    )


def _holds_approval(position: Mapping[str, Any], *, expires_at: datetime | None, now: datetime) -> bool:
    """Approved and unfilled, or open with an unfilled rest still reserved, within its reservation deadline."""
    status, unfilled = position["status"], Decimal(position["quantity"]) - Decimal(position["filled_quantity"])
    rest_reserved = unfilled > 0 and position["unfilled_released_at"] is None
    holds = status == PositionStatus.APPROVED or (status == PositionStatus.OPEN and rest_reserved)
    return holds and (expires_at is None or expires_at > now)


def _as_datetime(value: datetime | str | None) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else value


def _replay_unlocked(request: CheckInput, *, now: datetime) -> CheckOutcome:
    existing = Position.objects.filter(instance_id=request.account_id, client_order_id=request.client_order_id)
    row = existing.values().first()
    if row is None:  # pragma: no cover - the constraint fired, so the row exists
        raise IdempotencyConflict()
    return _replay(row, request, now=now)


def _reduce_only_confirmation(*, request: CheckInput) -> CheckOutcome:
    """A reduce-only check: approved in ACTIVE and REDUCING, rejected in HALTED; reserves and writes nothing."""
    position = (
        Position.objects.filter(pk=request.position_id, instance_id=request.account_id)
        .select_related("instance__user")
        .first()
    )
    if position is None:
        raise PositionNotFound()
    if not (position.instance.is_active and position.instance.user.is_active):
        raise AccountInactive()
    available = position.filled_quantity - position.closed_quantity if position.status == PositionStatus.OPEN else None
    portfolio_mode, account_mode = selectors.trading_modes(instance_id=request.account_id)
    engine_request = CheckRequest(
        symbol=position.symbol,
        side=Side(position.side),
        quantity=request.quantity,
        price=request.price,
        reduce_only=True,
        reduce_quantity_available=available,
    )
    account = position.instance
    decision = evaluate(
        engine_request,
        selectors.account_state(account, account_mode),
        selectors.states_only_portfolio(portfolio_mode),
        selectors.REDUCE_ONLY_USER_LIMITS,
        selectors.limits_in_force(instance_id=account.pk).engine,
    )
    return CheckOutcome(
        decision=str(decision.decision),
        notional=decision.notional,
        reasons=tuple(reason_json(reason) for reason in decision.reasons),
        allowed=decision.allowed,
        status=position.status,
        position_id=position.pk,
    )
