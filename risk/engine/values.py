"""The engine's vocabulary: the inputs of a check (limits, states, request) and the decision it returns.

Every value is a frozen dataclass over Decimal (money, quantities, percentages as fractions: 0.20 is 20 %) or int
(counts), so a decision can be reproduced from its inputs and no float ever enters a money path. The services
(`risk.services.check` and its siblings) build these from locked rows, after input validation has rejected NaN,
Infinity, zero, negative and absurd values: the engine trusts its inputs and does not validate them again (it is
timed in microseconds). `slots=True` keeps attribute reads on the hot path cheap.

The string enums carry the same values as the models' TextChoices (`trading.models.Side`, `PositionStatus`), so a
value passes between the layers unchanged.
"""

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from risk.defaults import DEFAULT_LIMITS
from risk.engine.money import ZERO


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class TradingMode(StrEnum):
    """The kill switch of the portfolio or of one account (the `TradingState` row holds one of these)."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class Outcome(StrEnum):
    """What a check decides; the same strings as the position statuses it leads to."""

    APPROVED = "approved"
    PENDING_APPROVAL = "pending_approval"
    REJECTED = "rejected"


class RuleCode(StrEnum):
    """The code of a failing rule, as the API reports it, in the order of the rules table in docs/design.md."""

    TRADING_HALTED = "trading_halted"
    PERMISSION_DENIED = "permission_denied"
    MAX_POSITION_SIZE = "max_position_size"
    MAX_OPEN_POSITIONS = "max_open_positions"
    ACCOUNT_EXPOSURE = "account_exposure"
    PORTFOLIO_EXPOSURE = "portfolio_exposure"
    SYMBOL_CONCENTRATION = "symbol_concentration"
    CORRELATED_EXPOSURE = "correlated_exposure"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    DRAWDOWN_LIMIT = "drawdown_limit"
    # Reduce-only checks only: the quantity is larger than the position's open quantity (or there is none).
    REDUCE_EXCEEDS_POSITION = "reduce_exceeds_position"


@dataclass(frozen=True, slots=True)
class Limits:
    """The `RiskLimits` in force for one check: the account's override, else the portfolio default.

    Percentages are fractions of equity. The service resolves the override before calling the engine. The
    defaults are the portfolio's (risk.defaults).
    """

    max_portfolio_exposure_pct: Decimal = DEFAULT_LIMITS["max_portfolio_exposure_pct"]
    max_daily_loss_pct: Decimal = DEFAULT_LIMITS["max_daily_loss_pct"]
    max_total_positions: int = DEFAULT_LIMITS["max_total_positions"]
    max_account_exposure_pct: Decimal = DEFAULT_LIMITS["max_account_exposure_pct"]
    max_position_pct: Decimal = DEFAULT_LIMITS["max_position_pct"]
    max_symbol_exposure_pct: Decimal = DEFAULT_LIMITS["max_symbol_exposure_pct"]
    max_drawdown_pct: Decimal = DEFAULT_LIMITS["max_drawdown_pct"]
    emergency_daily_loss_pct: Decimal = DEFAULT_LIMITS["emergency_daily_loss_pct"]
    emergency_drawdown_pct: Decimal = DEFAULT_LIMITS["emergency_drawdown_pct"]
    approval_threshold: Decimal = DEFAULT_LIMITS["approval_threshold"]


@dataclass(frozen=True, slots=True)
class UserLimits:
    """The bot owner's `UserPermission`: absolute amounts, per account. Empty `allowed_symbols` allows every symbol."""

    can_trade: bool
    max_position_size: Decimal
    max_daily_loss: Decimal
    max_open_positions: int
    allowed_symbols: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AccountState:
    """One risk account (a `TradingInstance`) as its locked row holds it.

    `exposure` (X_a) and `position_count` are the counters over its pending, approved and open positions;
    `equity` (E_a) is the last reported total value; `account_id` names its emergency breaches.
    """

    account_id: int
    equity: Decimal
    exposure: Decimal
    position_count: int
    peak_equity: Decimal
    day_start_equity: Decimal
    state: TradingMode = TradingMode.ACTIVE


@dataclass(frozen=True, slots=True)
class PortfolioState:
    """The portfolio row and, for the requested symbol, its symbol and correlation-group rows.

    `symbol_exposure` is the portfolio's exposure in the requested symbol. `group_exposure`, `group_limit_pct`
    and `group_name` are None when the symbol belongs to no correlation group (the rule then does not apply).
    """

    equity: Decimal
    exposure: Decimal
    position_count: int
    day_start_equity: Decimal
    state: TradingMode = TradingMode.ACTIVE
    symbol_exposure: Decimal = ZERO
    group_exposure: Decimal | None = None
    group_limit_pct: Decimal | None = None
    group_name: str | None = None


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """What the bot asks for.

    `mark` is a fresh market price or None (the service passes None when the cached mark is stale or missing).
    `reduce_only` checks carry `reduce_quantity_available`, the open quantity of the position being reduced
    (None: there is no such open position). `legacy_notional` is set for the earlier API's
    `{account_id, position_size}` body: it is n itself, and the symbol rules are skipped (see `legacy_request`).
    """

    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    mark: Decimal | None = None
    reduce_only: bool = False
    reduce_quantity_available: Decimal | None = None
    legacy_notional: Decimal | None = None


def legacy_request(position_size: Decimal) -> CheckRequest:
    """The request of the earlier API's `{account_id, position_size}` body: a check of that notional, no symbol."""
    return CheckRequest(symbol="", side=Side.LONG, quantity=ZERO, price=ZERO, legacy_notional=position_size)


class ReasonScope(StrEnum):
    """Whose figures a failing rule quotes: the account's own, or the whole portfolio's (other users' money)."""

    ACCOUNT = "account"
    PORTFOLIO = "portfolio"


@dataclass(frozen=True, slots=True)
class Reason:
    """One failing rule: its code, a message with the numbers, the limit it broke and the value that broke it.

    `limit` and `value` are what the rule compared, on the 8-decimal grid (a ceiling rounded down, a floor rounded
    up: the same decision as the exact comparison). They are None where the rule has no number (a state, a flag);
    `value` is a string where the rule is about one (the state, the symbol). `scope` says whose figures they are:
    a portfolio rule's are never shown to a bot.
    """

    code: RuleCode
    message: str
    limit: Decimal | int | None
    value: Decimal | int | str | None
    scope: ReasonScope = ReasonScope.ACCOUNT


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a check.

    `notional` is the n the rules checked, which is what an approved or pending position reserves (a rejected one
    reserves nothing; a reduce-only check always carries 0). `reasons` lists every failing rule in the order of
    the rules table of docs/design.md, Risk semantics; it is empty unless the outcome is rejected.
    """

    decision: Outcome
    notional: Decimal
    reasons: tuple[Reason, ...] = ()

    @property
    def allowed(self) -> bool:
        """True when the bot may act now (approved); a pending approval is not yet allowed."""
        return self.decision == Outcome.APPROVED

    @property
    def reason(self) -> str | None:
        """The first failing rule's message (the earlier API's `reason`), or None."""
        return self.reasons[0].message if self.reasons else None
