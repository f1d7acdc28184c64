"""Counter bounds: how far the counters a reservation moves may move before a decision would change.

`evaluate` reads two kinds of input. The counters are what reservations, fills, closes and releases move: the
account's and the portfolio's exposure and position counts, the symbol's and the correlation group's exposure.
Everything else (equities, day starts, peak, trading modes, limits, permission, the request) is the rest. Every
rule reads a counter only against a ceiling (`X + n > cap` rejects) or a count limit (`count >= limit` rejects),
and the split between approved and pending approval reads n alone. So, the rest unchanged, a decision that is not
a rejection stays the same decision for any counters within `counter_bounds`, and becomes a rejection for any
counters outside them.

The check service relies on it: it decides on an unlocked snapshot, then one SQL statement locks the rows, finds
the rest unchanged and the counters `within` these bounds, and reserves (risk.services.check).
tests/risk/engine/test_bounds.py holds `evaluate` to this statement.
"""

from dataclasses import dataclass
from decimal import Decimal

from risk.engine.money import add
from risk.engine.rules import account_exposure_cap, group_exposure_cap, portfolio_exposure_cap, symbol_exposure_cap
from risk.engine.values import AccountState, CheckRequest, Limits, PortfolioState, UserLimits


@dataclass(frozen=True, slots=True)
class CounterBounds:
    """The ceilings the counters plus `notional` must stay at or under, and the counts they must stay below.

    `symbol_exposure_cap` is None for a legacy request (no symbol rules), `group_exposure_cap` also when the
    symbol is in no correlation group."""

    notional: Decimal
    account_exposure_cap: Decimal
    portfolio_exposure_cap: Decimal
    symbol_exposure_cap: Decimal | None
    group_exposure_cap: Decimal | None
    account_positions_limit: int
    portfolio_positions_limit: int


@dataclass(frozen=True, slots=True)
class Counters:
    """The counters as some moment holds them (`group_exposure` None: the symbol is in no group)."""

    account_exposure: Decimal
    account_positions: int
    portfolio_exposure: Decimal
    portfolio_positions: int
    symbol_exposure: Decimal
    group_exposure: Decimal | None


def counter_bounds(
    request: CheckRequest,
    account: AccountState,
    portfolio: PortfolioState,
    user: UserLimits,
    limits: Limits,
    *,
    notional: Decimal,
) -> CounterBounds:
    """The bounds of a decision on `notional` (the decision's own n), taken from the same ceilings as the rules."""
    legacy = request.legacy_notional is not None
    return CounterBounds(
        notional=notional,
        account_exposure_cap=account_exposure_cap(account, limits),
        portfolio_exposure_cap=portfolio_exposure_cap(portfolio, limits),
        symbol_exposure_cap=None if legacy else symbol_exposure_cap(portfolio, limits),
        group_exposure_cap=None if legacy else group_exposure_cap(portfolio),
        account_positions_limit=user.max_open_positions,
        portfolio_positions_limit=limits.max_total_positions,
    )


def within(bounds: CounterBounds, counters: Counters) -> bool:
    """Whether every ceiling admits the counters plus n and every count is below its limit (what the SQL statement
    re-verifies under the locks, written here once in Python for the engine's tests)."""
    n = bounds.notional
    ceilings = [
        (counters.account_exposure, bounds.account_exposure_cap),
        (counters.portfolio_exposure, bounds.portfolio_exposure_cap),
        (counters.symbol_exposure, bounds.symbol_exposure_cap),
        (counters.group_exposure, bounds.group_exposure_cap),
    ]
    return (
        all(cap is None or add(value, n) <= cap for value, cap in ceilings)
        and counters.account_positions < bounds.account_positions_limit
        and counters.portfolio_positions < bounds.portfolio_positions_limit
    )
