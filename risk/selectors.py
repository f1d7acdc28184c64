"""Reads of the risk app: the limits and states in force, the engine's inputs, the unlocked scope of a dry run,
and the queries behind the read endpoints. Nothing here locks or writes: the row locks (and the one declared
order they follow) are risk.locks, the writes risk/services/.

`LockedScope` and `CheckScope` are the values a check decides on, whether read under the locks (risk.locks) or
without them (`read_check_scope`: the snapshot a check first decides on, and all a dry run reads).
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q, QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import TradingInstance
from accounts.selectors import UserPermissionData
from nija.api.parsers import loads_decimal
from risk.defaults import PORTFOLIO_ID
from risk.engine import AccountState, Limits, PortfolioState, TradingMode, UserLimits
from risk.models import (
    CorrelationGroup,
    Portfolio,
    RiskEvent,
    RiskLimits,
    Severity,
    SymbolExposure,
    TradingState,
    TradingStateValue,
)
from trading.models import Position, PositionStatus

# Limits the services apply (lifetimes, the bound on a reported equity increase); the engine decides with the rest.
SERVICE_LIMIT_FIELDS = frozenset(
    {
        "reservation_ttl_seconds",
        "approval_ttl_seconds",
        "equity_max_age_seconds",
        "max_equity_increase_pct",
        "heartbeat_timeout_seconds",
    }
)
ENGINE_LIMIT_FIELDS = tuple(name for name in RiskLimits.LIMIT_FIELDS if name not in SERVICE_LIMIT_FIELDS)


@dataclass(frozen=True)
class LimitsInForce:
    """The engine's `Limits` plus what the services apply, for one account (override, else default)."""

    engine: Limits
    reservation_ttl: timedelta
    approval_ttl: timedelta
    equity_max_age: timedelta
    max_equity_increase_pct: Decimal
    heartbeat_timeout: timedelta


@dataclass(frozen=True)
class LockedScope:
    """The rows a transaction holds locked, in lock order. `symbol_row` and `group` are None for a check that
    names no symbol (the legacy body), `group` also when the symbol is in no correlation group.

    `clock` is PostgreSQL's clock read once the portfolio lock was granted (one clock for every web host, in the
    order transactions hold the lock; risk.services.day.locked_now clamps it). `user_active` is the account's
    user's flag, read with the account row."""

    portfolio: Portfolio
    symbol_row: SymbolExposure | None
    group: CorrelationGroup | None
    account: TradingInstance
    clock: datetime
    user_active: bool

    @property
    def account_active(self) -> bool:
        """The account may trade: it and its user are active (deactivating either refuses its checks)."""
        return self.account.is_active and self.user_active


def limits_in_force(*, instance_id: int | None) -> LimitsInForce:
    """The portfolio default limits with the account's non-null overrides on top (one query)."""
    rows = RiskLimits.objects.filter(Q(instance__isnull=True) | Q(instance_id=instance_id)).values()
    return limits_from_rows(list(rows))


# Limits the engine also applies to the whole portfolio (its exposure, position count, symbol concentration and
# daily loss): an account's override may tighten them for that account's checks, never loosen them for everyone.
PORTFOLIO_SCOPED_LIMITS = frozenset(
    {"max_portfolio_exposure_pct", "max_total_positions", "max_symbol_exposure_pct", "max_daily_loss_pct"}
)


def limits_from_rows(rows: list[Mapping[str, Any]]) -> LimitsInForce:
    """Resolve the default row (instance_id null) and the optional override row, field by field (an override of a
    portfolio-scoped limit counts only where it is stricter)."""
    default = next(row for row in rows if row["instance_id"] is None)
    override = next((row for row in rows if row["instance_id"] is not None), {})

    def value(name: str) -> Any:
        own = override.get(name)
        if own is None:
            return default[name]
        return min(own, default[name]) if name in PORTFOLIO_SCOPED_LIMITS else own

    return LimitsInForce(
        engine=Limits(**{name: value(name) for name in ENGINE_LIMIT_FIELDS}),
        reservation_ttl=timedelta(seconds=value("reservation_ttl_seconds")),
        approval_ttl=timedelta(seconds=value("approval_ttl_seconds")),
        equity_max_age=timedelta(seconds=value("equity_max_age_seconds")),
        max_equity_increase_pct=value("max_equity_increase_pct"),
        heartbeat_timeout=timedelta(seconds=value("heartbeat_timeout_seconds")),
    )


def trading_modes(*, instance_id: int | None) -> tuple[TradingMode, TradingMode]:
    """(portfolio mode, account mode); an account with no state row is ACTIVE (one query)."""
    portfolio_mode = account_mode = TradingMode.ACTIVE
    for row in TradingState.objects.filter(Q(instance__isnull=True) | Q(instance_id=instance_id)):
        if row.instance_id is None:
            portfolio_mode = TradingMode(row.state)
        else:
            account_mode = TradingMode(row.state)
    return portfolio_mode, account_mode


# A reduce-only check reads only the trading states and the position: the engine skips every rule that would
# read limits or exposure, so these neutral values are never compared.
REDUCE_ONLY_USER_LIMITS = UserLimits(
    can_trade=True, max_position_size=Decimal(0), max_daily_loss=Decimal(0), max_open_positions=0
)


def states_only_portfolio(mode: TradingMode) -> PortfolioState:
    zero = Decimal(0)
    return PortfolioState(equity=zero, exposure=zero, position_count=0, day_start_equity=zero, state=mode)


def states_portfolio_totals(portfolio: Portfolio, mode: TradingMode) -> PortfolioState:
    """The portfolio's totals with no symbol: what the emergency thresholds read."""
    return PortfolioState(
        equity=portfolio.equity,
        exposure=portfolio.exposure,
        position_count=portfolio.position_count,
        day_start_equity=portfolio.day_start_equity,
        state=mode,
    )


def account_state(account: TradingInstance, mode: TradingMode) -> AccountState:
    return AccountState(
        account_id=account.pk,
        equity=account.equity,
        exposure=account.exposure,
        position_count=account.position_count,
        peak_equity=account.peak_equity,
        day_start_equity=account.day_start_equity,
        state=mode,
    )


def portfolio_state(scope: LockedScope, mode: TradingMode) -> PortfolioState:
    group = scope.group
    return PortfolioState(
        equity=scope.portfolio.equity,
        exposure=scope.portfolio.exposure,
        position_count=scope.portfolio.position_count,
        day_start_equity=scope.portfolio.day_start_equity,
        state=mode,
        symbol_exposure=scope.symbol_row.exposure if scope.symbol_row is not None else Decimal(0),
        group_exposure=group.exposure if group is not None else None,
        group_limit_pct=group.limit_pct if group is not None else None,
        group_name=group.name if group is not None else None,
    )


def user_limits(permission: UserPermissionData) -> UserLimits:
    return UserLimits(
        can_trade=permission.can_trade,
        max_position_size=permission.max_position_size,
        max_daily_loss=permission.max_daily_loss,
        max_open_positions=permission.max_open_positions,
        allowed_symbols=frozenset(permission.allowed_symbols),
    )


def equity_is_stale(account: TradingInstance, *, now: datetime, max_age: timedelta) -> bool:
    """No equity report yet, or the last one is older than equity_max_age: the engine cannot know E_a, and the
    account's equity leaves the portfolio's totals (risk.services.portfolio_equity)."""
    return account.equity_reported_at is None or now - account.equity_reported_at > max_age


def _holds_unfilled_reservation() -> Q:
    """Pending or approved, or open with an unfilled rest not yet released."""
    return Q(status__in=[PositionStatus.PENDING_APPROVAL, PositionStatus.APPROVED]) | Q(
        status=PositionStatus.OPEN, unfilled_released_at__isnull=True, filled_quantity__lt=F("quantity")
    )


def expired_reservation_ids(*, now: datetime, limit: int) -> list[int]:
    """Positions whose reservation deadline passed while something is still reserved and unfilled, oldest first."""
    candidates = Position.objects.filter(_holds_unfilled_reservation(), reservation_expires_at__lt=now)
    return list(candidates.order_by("reservation_expires_at").values_list("pk", flat=True)[:limit])


def unfilled_reservation_ids(*, instance_id: int | None) -> list[int]:
    """Positions holding an unfilled reservation, in one account or (None) the whole portfolio: what a HALT cancels."""
    positions = Position.objects.filter(_holds_unfilled_reservation())
    if instance_id is not None:
        positions = positions.filter(instance_id=instance_id)
    return list(positions.order_by("pk").values_list("pk", flat=True))


def unfilled_reservation_ids_of_inactive_accounts() -> list[int]:
    """Positions holding an unfilled reservation in a deactivated account or an account of a deactivated user."""
    inactive = Q(instance__is_active=False) | Q(instance__user__is_active=False)
    positions = Position.objects.filter(_holds_unfilled_reservation(), inactive)
    return list(positions.order_by("pk").values_list("pk", flat=True))


def unfilled_reservation_ids_of_silent_accounts(*, limit: int) -> list[int]:
    """Positions holding an unfilled reservation in an account the heartbeat watchdog marked silent, oldest first."""
    positions = Position.objects.filter(_holds_unfilled_reservation(), instance__heartbeat_lost_at__isnull=False)
    return list(positions.order_by("pk").values_list("pk", flat=True)[:limit])


def states_without(
    account: AccountState, portfolio: PortfolioState, *, notional: Decimal
) -> tuple[AccountState, PortfolioState]:
    """The states with one active position's own reservation taken out (an approval re-runs the rules as if that
    position were not yet counted, so it is not measured against itself)."""
    account = replace(account, exposure=account.exposure - notional, position_count=account.position_count - 1)
    portfolio = replace(
        portfolio,
        exposure=portfolio.exposure - notional,
        position_count=portfolio.position_count - 1,
        symbol_exposure=portfolio.symbol_exposure - notional,
        group_exposure=None if portfolio.group_exposure is None else portfolio.group_exposure - notional,
    )
    return account, portfolio


# ---------------------------------------------------------------------------------------------- API reads (E4)
# The read endpoints of risk/api_reads.py: plain filtered querysets and the status summary, no locks.
STATUS_EVENTS_WINDOW = timedelta(hours=24)
STATUS_EVENTS_MAX = 100


def position_list(*, instance_id: int | None = None, statuses: tuple[str, ...] = ()) -> QuerySet[Position]:
    """Positions newest first, optionally one account's and/or in the given statuses (index: instance, status)."""
    positions = Position.objects.all()
    if instance_id is not None:
        positions = positions.filter(instance_id=instance_id)
    if statuses:
        positions = positions.filter(status__in=statuses)
    return positions.order_by("-id")


def position_get(*, position_id: int, instance_id: int | None = None) -> Position | None:
    """One position, or None when it does not exist or (instance_id given) belongs to another account."""
    positions = Position.objects.filter(pk=position_id)
    if instance_id is not None:
        positions = positions.filter(instance_id=instance_id)
    return positions.first()


def risk_event_list(
    *,
    severity: str | None = None,
    event_type: str | None = None,
    instance_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[RiskEvent]:
    """Risk events newest first: since inclusive, until exclusive, at most `limit`."""
    events = RiskEvent.objects.all()
    if severity:
        events = events.filter(severity=severity)
    if event_type:
        events = events.filter(type=event_type)
    if instance_id is not None:
        events = events.filter(instance_id=instance_id)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return list(events.order_by("-created_at", "-id")[:limit])


@dataclass(frozen=True)
class RiskStatus:
    """What GET /api/risk/status shows: limits, states, accounts, portfolio counters, recent critical events."""

    default_limits: RiskLimits
    overrides: list[RiskLimits]
    portfolio_state: TradingState | None
    account_states: list[TradingState]
    account_count: int
    active_account_count: int
    portfolio: Portfolio
    critical_events: list[RiskEvent]


def risk_status(*, now: datetime) -> RiskStatus:
    """The risk desk's summary (a fixed number of queries whatever the number of accounts)."""
    limits = list(RiskLimits.objects.order_by("instance_id"))
    states = list(
        TradingState.objects.filter(Q(instance__isnull=True) | ~Q(state=TradingStateValue.ACTIVE))
        .select_related("changed_by")
        .order_by("instance_id")
    )
    counts = TradingInstance.objects.aggregate(total=Count("id"), active=Count("id", filter=Q(is_active=True)))
    events = RiskEvent.objects.filter(severity=Severity.CRITICAL, created_at__gte=now - STATUS_EVENTS_WINDOW)
    return RiskStatus(
        default_limits=next(row for row in limits if row.instance_id is None),
        overrides=[row for row in limits if row.instance_id is not None],
        portfolio_state=next((row for row in states if row.instance_id is None), None),
        account_states=[row for row in states if row.instance_id is not None],
        account_count=counts["total"],
        active_account_count=counts["active"],
        portfolio=Portfolio.objects.get(pk=Portfolio.SINGLETON_ID),
        critical_events=list(events.order_by("-created_at", "-id")[:STATUS_EVENTS_MAX]),
    )


@dataclass(frozen=True)
class CheckScope:
    """Everything a check decides on, read in one round trip: under its locks (risk.locks.lock_check_scope) or
    without them (`read_check_scope`). `inputs_digest` (an unlocked read's only) digests everything in it but the
    counters: a reservation made on this snapshot hands it back, and the reserving statement compares it with the
    digest of the rows it locks."""

    locked: LockedScope
    limits: LimitsInForce
    portfolio_mode: TradingMode
    account_mode: TradingMode
    existing: Mapping[str, Any] | None  # the earlier position with the same client_order_id, as column values
    inputs_digest: str = ""


_READ_CHECK_SCOPE_SQL = "SELECT risk_read_check_scope(%s, %s, %s, %s)"


def read_check_scope(*, instance_id: int, symbol: str | None, client_order_id: str | None) -> CheckScope | None:
    """The same values as risk.locks.lock_check_scope in one round trip, without locks and without creating the
    symbol's row (the `risk_read_check_scope` function, migration risk 0012): the snapshot a check decides on first,
    and all a dry run reads. The clock is PostgreSQL's, read after the rows. None when the account does not exist."""
    with connection.cursor() as cursor:
        cursor.execute(_READ_CHECK_SCOPE_SQL, [PORTFOLIO_ID, instance_id, symbol, client_order_id])
        (text,) = cursor.fetchone()
    return None if text is None else check_scope_from_json(text)


def check_scope_from_json(text: str) -> CheckScope:
    """A `CheckScope` from the check functions' JSON: unsaved model instances carrying the rows' values (the
    services read fields and primary keys only). A symbol with no row yet reads as one with nothing held."""
    data = loads_decimal(text)
    portfolio, symbol, group, account = data["portfolio"], data["symbol"], data["group"], data["account"]
    locked = LockedScope(
        portfolio=Portfolio(
            id=portfolio["id"],
            exposure=portfolio["exposure"],
            position_count=portfolio["position_count"],
            equity=portfolio["equity"],
            day_start_equity=portfolio["day_start_equity"],
            day_start_date=_date(portfolio["day_start_date"]),
        ),
        symbol_row=None
        if symbol is None
        else SymbolExposure(**_fields(symbol, "symbol", "exposure", "position_count")),
        group=None if group is None else CorrelationGroup(**_fields(group, "id", "name", "limit_pct", "exposure")),
        account=TradingInstance(
            **_fields(
                account,
                "id",
                "user_id",
                "is_active",
                "equity",
                "exposure",
                "position_count",
                "peak_equity",
                "day_start_equity",
            ),
            equity_reported_at=parse_datetime(account["equity_reported_at"]) if account["equity_reported_at"] else None,
            day_start_date=_date(account["day_start_date"]),
        ),
        clock=parse_datetime(data["clock"]),
        user_active=account["user_is_active"],
    )
    states = {row["instance_id"]: TradingMode(row["state"]) for row in data["states"] or []}
    return CheckScope(
        locked=locked,
        limits=limits_from_rows(data["limits"]),
        portfolio_mode=states.get(None, TradingMode.ACTIVE),
        account_mode=states.get(account["id"], TradingMode.ACTIVE),
        existing=data["existing"],
        inputs_digest=data.get("inputs_digest", ""),
    )


def _date(text: str | None) -> date | None:
    return parse_date(text) if text else None


def _fields(row: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: row[name] for name in names}
