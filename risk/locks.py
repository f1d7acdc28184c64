"""Row locks of the risk services, in one declared order, so two transactions never wait on each other in a cycle.

`LOCK_ORDER` is that order: the portfolio row, the symbol's exposure row, the symbol's correlation group, the
account, one of its positions, then the account's user. A transaction locks any subset of these, never one before
another that precedes it. Everything that locks follows it: `lock_scope` (every exposure-moving service),
`lock_account_scope`, and the check's PostgreSQL functions (migration risk 0012): `risk_lock_check_rows` takes the
check's locks for both the locked check (`lock_check_scope`) and the reserving statement
(risk.services.exposure.position_reserve_verified); tests/risk/test_lock_order.py holds each of them to it.

Before the first lock, `set_lock_timeouts` bounds the waits: past RISK_LOCK_TIMEOUT_MS or
RISK_STATEMENT_TIMEOUT_MS PostgreSQL raises and the caller answers 503 (the gate fails closed). `lock_symbol`
creates the symbol's row on first use (the only write here: a row must exist to be locked).
"""

from django.conf import settings
from django.db import connection
from django.db.models import F

from accounts.models import TradingInstance, User
from risk.defaults import PORTFOLIO_ID
from risk.errors import AccountInactive, AccountNotFound
from risk.models import CorrelationGroup, Portfolio, SymbolExposure
from risk.selectors import CheckScope, LockedScope, check_scope_from_json
from trading.models import Position

LOCK_ORDER = (Portfolio, SymbolExposure, CorrelationGroup, TradingInstance, Position, User)
LOCK_ORDER_TABLES = tuple(model._meta.db_table for model in LOCK_ORDER)

_SET_TIMEOUTS_SQL = "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)"


def _timeouts() -> list[str]:
    return [f"{settings.RISK_LOCK_TIMEOUT_MS}ms", f"{settings.RISK_STATEMENT_TIMEOUT_MS}ms"]


def set_lock_timeouts() -> None:
    """Bound how long this transaction may wait for a row lock or run a statement (RISK_LOCK_TIMEOUT_MS,
    RISK_STATEMENT_TIMEOUT_MS; SET LOCAL: this transaction only). Past either, PostgreSQL raises and the caller
    answers 503: the gate fails closed instead of hanging."""
    with connection.cursor() as cursor:
        cursor.execute(_SET_TIMEOUTS_SQL, _timeouts())


# The outer SELECT reads the clock after the materialized CTE has been granted the lock (in a plain SELECT ... FOR
# UPDATE the target list is computed before the lock wait, so the clock would be the time the wait began).
_LOCK_PORTFOLIO_SQL = (
    "WITH locked AS MATERIALIZED (SELECT * FROM risk_portfolio WHERE id = %s FOR UPDATE) "
    "SELECT locked.*, clock_timestamp() AS locked_at FROM locked"
)


def lock_portfolio() -> Portfolio:
    """The portfolio row, locked, with `locked_at`: PostgreSQL's clock once the lock was granted."""
    return next(iter(Portfolio.objects.raw(_LOCK_PORTFOLIO_SQL, [PORTFOLIO_ID])))


def lock_symbol(symbol: str) -> SymbolExposure:
    """The symbol's exposure row, created on the first check of the symbol (ON CONFLICT DO NOTHING), locked."""
    row = SymbolExposure.objects.select_for_update().filter(pk=symbol).first()
    if row is None:
        SymbolExposure.objects.bulk_create([SymbolExposure(symbol=symbol)], ignore_conflicts=True)
        row = SymbolExposure.objects.select_for_update().get(pk=symbol)
    return row


def lock_group_of(symbol: str) -> CorrelationGroup | None:
    return CorrelationGroup.objects.select_for_update(of=("self",)).filter(members__symbol=symbol).first()


def lock_account(instance_id: int) -> TradingInstance:
    """The account row, locked (not its user's), with `user_active`: its user's is_active. FOR NO KEY UPDATE, as
    every locker of an account row takes it: they exclude each other, and an INSERT of a row that references the
    account (a check's rejection, an event) does not wait on it (migration risk 0013)."""
    accounts = TradingInstance.objects.select_for_update(of=("self",), no_key=True).annotate(
        user_active=F("user__is_active")
    )
    return accounts.get(pk=instance_id)


def lock_scope(*, instance_id: int, symbol: str | None) -> LockedScope:
    """Lock, in LOCK_ORDER, every row whose counters a change for this account and symbol moves."""
    portfolio = lock_portfolio()
    symbol_row = lock_symbol(symbol) if symbol else None
    group = lock_group_of(symbol) if symbol else None
    account = lock_account(instance_id)
    return LockedScope(
        portfolio=portfolio,
        symbol_row=symbol_row,
        group=group,
        account=account,
        clock=portfolio.locked_at,
        user_active=account.user_active,
    )


def lock_account_scope(*, instance_id: int, active_only: bool) -> LockedScope:
    """The portfolio and the account, locked (with the lock timeouts set). `active_only`: a deactivated account or
    user is refused (403), as for everything its bot sends but fills and closes."""
    set_lock_timeouts()
    try:
        scope = lock_scope(instance_id=instance_id, symbol=None)
    except TradingInstance.DoesNotExist as exc:
        raise AccountNotFound() from exc
    if active_only and not scope.account_active:
        raise AccountInactive()
    return scope


def lock_check_scope(*, instance_id: int, symbol: str, client_order_id: str | None) -> CheckScope | None:
    """Set the transaction's lock and statement timeouts, then lock portfolio -> symbol -> group -> account (the
    first four of LOCK_ORDER) and read limits, states and any earlier position with this client_order_id: one round
    trip (the `risk_lock_check_scope` function, migration risk 0012). None when the account does not exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"{_SET_TIMEOUTS_SQL}; SELECT risk_lock_check_scope(%s, %s, %s, %s)",
            [*_timeouts(), PORTFOLIO_ID, instance_id, symbol, client_order_id],
        )
        (text,) = cursor.fetchone()
    if text is None:
        return None
    return check_scope_from_json(text)
