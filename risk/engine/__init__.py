"""The pure risk engine: frozen dataclasses and functions over Decimal, no Django, no I/O, no clock.

It decides; the risk services (`risk.services.check` and the others in risk/services/) load and lock the rows,
build these inputs, call it and store the outcome.
- `values`: the inputs (`Limits`, `UserLimits`, `AccountState`, `PortfolioState`, `CheckRequest`) and the
  `Decision` with its `Reason`s.
- `rules`: `notional` and `evaluate`, every pre-trade rule of docs/design.md, Risk semantics.
- `metrics`: account and portfolio figures for reports.
- `emergency`: the thresholds that trip an automatic HALT, and the latch that raises each breach once.
- `money`: the exact and the reporting Decimal contexts.
"""

from risk.engine.emergency import (
    PORTFOLIO_PREFIX,
    Breach,
    BreachKind,
    account_key_prefix,
    emergency_breaches,
    latch,
)
from risk.engine.metrics import (
    Metrics,
    PositionView,
    TradeStats,
    account_metrics,
    portfolio_metrics,
    position_market_value,
)
from risk.engine.rules import evaluate, notional
from risk.engine.values import (
    AccountState,
    CheckRequest,
    Decision,
    Limits,
    Outcome,
    PortfolioState,
    Reason,
    ReasonScope,
    RuleCode,
    Side,
    TradingMode,
    UserLimits,
    legacy_request,
)

__all__ = [
    "PORTFOLIO_PREFIX",
    "AccountState",
    "Breach",
    "BreachKind",
    "CheckRequest",
    "Decision",
    "Limits",
    "Metrics",
    "Outcome",
    "PortfolioState",
    "PositionView",
    "Reason",
    "ReasonScope",
    "RuleCode",
    "Side",
    "TradeStats",
    "TradingMode",
    "UserLimits",
    "account_key_prefix",
    "account_metrics",
    "emergency_breaches",
    "evaluate",
    "latch",
    "legacy_request",
    "notional",
    "portfolio_metrics",
    "position_market_value",
]
