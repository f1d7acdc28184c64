"""Builders of engine inputs for tests: a baseline that every rule admits, changed one field at a time.

Baseline: account equity 100,000 (no exposure, no positions, flat day, peak 100,000); portfolio equity 1,000,000
(flat day, nothing in the symbol, no correlation group); the user may trade anything up to 50,000 per position,
10,000 daily loss, 10 open positions; default limits. The default request (0.1 BTC-USD at 50,000) is n = 5,000.
"""

from dataclasses import replace
from decimal import Decimal
from typing import Any

from risk.engine import AccountState, CheckRequest, Limits, PortfolioState, Side, UserLimits

D = Decimal


def account(**changes: Any) -> AccountState:
    base = AccountState(
        account_id=42,
        equity=D("100000"),
        exposure=D("0"),
        position_count=0,
        peak_equity=D("100000"),
        day_start_equity=D("100000"),
    )
    return replace(base, **changes)


def portfolio(**changes: Any) -> PortfolioState:
    base = PortfolioState(
        equity=D("1000000"), exposure=D("0"), position_count=0, day_start_equity=D("1000000"), symbol_exposure=D("0")
    )
    return replace(base, **changes)


def user(**changes: Any) -> UserLimits:
    base = UserLimits(can_trade=True, max_position_size=D("50000"), max_daily_loss=D("10000"), max_open_positions=10)
    return replace(base, **changes)


def request(**changes: Any) -> CheckRequest:
    base = CheckRequest(symbol="BTC-USD", side=Side.LONG, quantity=D("0.1"), price=D("50000"))
    return replace(base, **changes)


def of_notional(n: str, **changes: Any) -> CheckRequest:
    """A request whose notional is exactly `n` (quantity 1 at price n)."""
    return request(quantity=D(1), price=D(n), **changes)


def limits(**changes: Any) -> Limits:
    return replace(Limits(), **changes)
