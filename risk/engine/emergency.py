"""Emergency thresholds and their latch: which breaches trip an automatic HALT, and which are new.

Two thresholds (docs/design.md, Risk semantics), on reported equity as it is: the portfolio's daily loss reaching
emergency_daily_loss_pct of its day-start equity, and an account's drawdown reaching emergency_drawdown_pct of
its peak. "Reaching" includes equality. With no baseline (day-start equity or peak of 0) nothing is breached:
an empty portfolio must not halt itself.

Every breach has a stable `key` ("portfolio:daily_loss", "account:42:drawdown"). The service stores the keys of
the breaches it has raised and calls `latch` on each evaluation: only a breach whose key is not stored raises an
event (and the halt), and a stored key whose breach is gone is cleared, so the same breach raises one event until
it clears instead of one per equity report (the earlier engine's bug).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from risk.engine.money import ZERO, mul, ratio_down, sub
from risk.engine.values import AccountState, Limits, PortfolioState

PORTFOLIO_PREFIX = "portfolio:"


class BreachKind(StrEnum):
    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "drawdown"


@dataclass(frozen=True, slots=True)
class Breach:
    """One emergency threshold reached. `value` and `limit` are fractions (of day-start equity, of peak)."""

    key: str
    kind: BreachKind
    account_id: int | None
    limit: Decimal
    value: Decimal
    message: str


def account_key_prefix(account_id: int) -> str:
    """The prefix of every breach key of one account, for `latch(scope_prefixes=...)`."""
    return f"account:{account_id}:"


def emergency_breaches(
    portfolio: PortfolioState,
    accounts: Iterable[AccountState],
    limits: Limits,
    account_limits: Mapping[int, Limits] | None = None,
) -> tuple[Breach, ...]:
    """Every emergency threshold reached: the portfolio's daily loss first, then each account's drawdown in order.

    `limits` are the portfolio defaults; `account_limits` holds the accounts' overrides by account id.
    """
    breaches: list[Breach] = []
    portfolio_breach = _portfolio_daily_loss(portfolio, limits)
    if portfolio_breach is not None:
        breaches.append(portfolio_breach)
    overrides = account_limits or {}
    for account in accounts:
        breach = _account_drawdown(account, overrides.get(account.account_id, limits))
        if breach is not None:
            breaches.append(breach)
    return tuple(breaches)


def latch(
    previous_keys: frozenset[str], breaches: Iterable[Breach], *, scope_prefixes: tuple[str, ...] = ("",)
) -> tuple[tuple[Breach, ...], frozenset[str]]:
    """(the breaches not latched yet, the latched keys that cleared).

    `scope_prefixes` says which keys this evaluation covered: a stored key outside them is neither re-raised nor
    cleared (an equity report of account 42 evaluates `(PORTFOLIO_PREFIX, account_key_prefix(42))` only).
    The keys to store afterwards are `previous_keys - cleared | {b.key for b in breaches}`.
    """
    breaches = tuple(breaches)
    current = {breach.key for breach in breaches}
    new = tuple(breach for breach in breaches if breach.key not in previous_keys)
    cleared = frozenset(key for key in previous_keys if key.startswith(scope_prefixes) and key not in current)
    return new, cleared


def _portfolio_daily_loss(portfolio: PortfolioState, limits: Limits) -> Breach | None:
    """The portfolio's daily loss, if it has reached emergency_daily_loss_pct of a positive day-start equity."""
    day_start = portfolio.day_start_equity
    if day_start <= ZERO:
        return None
    loss = sub(day_start, portfolio.equity)
    if loss < mul(limits.emergency_daily_loss_pct, day_start):
        return None
    value = ratio_down(loss, day_start)
    message = (
        f"portfolio daily loss {loss:f} ({value:f} of day start equity {day_start:f})"
        f" has reached the emergency limit {limits.emergency_daily_loss_pct:f}"
    )
    return Breach(
        PORTFOLIO_PREFIX + BreachKind.DAILY_LOSS,
        BreachKind.DAILY_LOSS,
        None,
        limits.emergency_daily_loss_pct,
        value,
        message,
    )


def _account_drawdown(account: AccountState, limits: Limits) -> Breach | None:
    """The account's drawdown, if it has reached emergency_drawdown_pct of a positive peak equity."""
    peak = account.peak_equity
    if peak <= ZERO:
        return None
    fall = sub(peak, account.equity)
    if fall < mul(limits.emergency_drawdown_pct, peak):
        return None
    value = ratio_down(fall, peak)
    message = (
        f"account {account.account_id} drawdown {value:f} (peak equity {peak:f}, equity {account.equity:f})"
        f" has reached the emergency limit {limits.emergency_drawdown_pct:f}"
    )
    key = account_key_prefix(account.account_id) + BreachKind.DRAWDOWN
    return Breach(key, BreachKind.DRAWDOWN, account.account_id, limits.emergency_drawdown_pct, value, message)
