"""The pre-trade check: every rule of docs/design.md (Risk semantics) run over one request, every failing one reported.

`evaluate` is the whole decision. It never stops at the first failure: the bot and the operator see every
reason at once, in the order of the design's table. Within one rule the reasons come per scope, in the table's
words ("portfolio or account" halted; "account or portfolio" positions and daily loss), and within one scope
the limit reported is the effective one, the stricter of the user's absolute amount and the percentage of equity.

Boundaries, exactly as the design writes them: a ceiling rule (`X + n > limit`) admits a request that lands
exactly on the limit; a "has reached" rule (daily loss, drawdown) rejects at equality. Equity 0 makes every
percentage-of-equity ceiling 0, so any n > 0 fails them. A peak equity of 0 means no drawdown yet.

Reduce-only requests (a confirmation that a position may be reduced) skip every exposure, size, count,
permission, daily-loss and drawdown rule and reserve nothing: reducing risk is never blocked, except by a HALTED
state, and a quantity above the position's open quantity is not a reduction (`reduce_exceeds_position`).
Permission is not checked because reducing or closing is accepted from every bot in every state but HALTED.

Legacy requests (the earlier `{account_id, position_size}` body) check the given notional with the symbol rules
(allowed symbols, symbol concentration, correlated exposure) skipped: they name no symbol.
"""

from decimal import Decimal

from risk.engine.money import ZERO, add, mul, quantize_down, quantize_up, ratio_down, sub
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
    TradingMode,
    UserLimits,
)


def notional(quantity: Decimal, price: Decimal, mark: Decimal | None = None) -> Decimal:
    """n = quantity x max(price, mark), rounded up to 8 decimals; with no fresh mark (None), the price alone.

    The higher of the two prices, so a bot cannot reserve less than the market says its position is worth;
    rounded up, so the reservation never understates it.
    """
    if mark is not None and mark > price:
        price = mark
    return quantize_up(mul(quantity, price))


def evaluate(
    request: CheckRequest,
    account: AccountState,
    portfolio: PortfolioState,
    user_limits: UserLimits,
    limits: Limits,
) -> Decision:
    """Decide one check: rejected with every failing rule, else pending_approval at or above the threshold."""
    if request.reduce_only:
        return _evaluate_reduce_only(request, account, portfolio)
    legacy = request.legacy_notional is not None
    n = quantize_up(request.legacy_notional) if legacy else notional(request.quantity, request.price, request.mark)
    reasons: list[Reason] = []
    _check_trading_halted(reasons, portfolio.state, account.state, reduce_only=False)
    _check_permission(reasons, request.symbol, user_limits, check_symbol=not legacy)
    _check_position_size(reasons, n, account, user_limits, limits)
    _check_open_positions(reasons, account, portfolio, user_limits, limits)
    _check_account_exposure(reasons, n, account, limits)
    _check_portfolio_exposure(reasons, n, portfolio, limits)
    if not legacy:
        _check_symbol_concentration(reasons, n, request.symbol, portfolio, limits)
        _check_correlated_exposure(reasons, n, portfolio)
    _check_daily_loss(reasons, account, portfolio, user_limits, limits)
    _check_drawdown(reasons, account, limits)
    if reasons:
        return Decision(Outcome.REJECTED, n, tuple(reasons))
    if n >= limits.approval_threshold:
        return Decision(Outcome.PENDING_APPROVAL, n)
    return Decision(Outcome.APPROVED, n)


def _evaluate_reduce_only(request: CheckRequest, account: AccountState, portfolio: PortfolioState) -> Decision:
    """A reduction: approved in ACTIVE and REDUCING, rejected in HALTED or beyond the open quantity; reserves 0."""
    reasons: list[Reason] = []
    _check_trading_halted(reasons, portfolio.state, account.state, reduce_only=True)
    available = request.reduce_quantity_available
    quantity = request.quantity
    if available is None:
        reasons.append(Reason(RuleCode.REDUCE_EXCEEDS_POSITION, "there is no open position to reduce", ZERO, quantity))
    elif quantity > available:
        message = f"quantity {quantity:f} exceeds the position's open quantity {available:f}"
        reasons.append(Reason(RuleCode.REDUCE_EXCEEDS_POSITION, message, available, quantity))
    if reasons:
        return Decision(Outcome.REJECTED, ZERO, tuple(reasons))
    return Decision(Outcome.APPROVED, ZERO)


def _check_trading_halted(
    reasons: list[Reason], portfolio_state: TradingMode, account_state: TradingMode, *, reduce_only: bool
) -> None:
    """trading_halted: a HALTED portfolio or account, or a REDUCING one unless the request is reduce-only."""
    for scope, state in ((ReasonScope.PORTFOLIO, portfolio_state), (ReasonScope.ACCOUNT, account_state)):
        if state == TradingMode.HALTED:
            reasons.append(Reason(RuleCode.TRADING_HALTED, f"{scope} trading is halted", None, str(state), scope))
        elif state == TradingMode.REDUCING and not reduce_only:
            message = f"{scope} is reducing: only reduce-only requests are accepted"
            reasons.append(Reason(RuleCode.TRADING_HALTED, message, None, str(state), scope))


def _check_permission(reasons: list[Reason], symbol: str, user: UserLimits, *, check_symbol: bool) -> None:
    """permission_denied: the user may not trade, or the symbol is not among the allowed ones (empty = all)."""
    if not user.can_trade:
        reasons.append(Reason(RuleCode.PERMISSION_DENIED, "the user may not trade", None, None))
    if check_symbol and user.allowed_symbols and symbol not in user.allowed_symbols:
        message = f"symbol {symbol} is not among the user's allowed symbols"
        reasons.append(Reason(RuleCode.PERMISSION_DENIED, message, None, symbol))


def _check_position_size(
    reasons: list[Reason], n: Decimal, account: AccountState, user: UserLimits, limits: Limits
) -> None:
    """max_position_size: n > the user's max position size, or n > max_position_pct x E_a."""
    pct_cap = mul(limits.max_position_pct, account.equity)
    if n > user.max_position_size or n > pct_cap:
        pct_limit = quantize_down(pct_cap)
        if user.max_position_size <= pct_limit:
            limit, why = user.max_position_size, ""
        else:
            limit, why = pct_limit, f" ({limits.max_position_pct:f} of account equity {account.equity:f})"
        message = f"notional {n:f} exceeds max position size {limit:f}{why}"
        reasons.append(Reason(RuleCode.MAX_POSITION_SIZE, message, limit, n))


def _check_open_positions(
    reasons: list[Reason], account: AccountState, portfolio: PortfolioState, user: UserLimits, limits: Limits
) -> None:
    """max_open_positions: the account's count >= the user's max_open_positions, or the portfolio's >= its max."""
    for scope, count, limit in (
        (ReasonScope.ACCOUNT, account.position_count, user.max_open_positions),
        (ReasonScope.PORTFOLIO, portfolio.position_count, limits.max_total_positions),
    ):
        if count >= limit:
            message = f"{scope} holds {count} pending, approved or open positions, its limit is {limit}"
            reasons.append(Reason(RuleCode.MAX_OPEN_POSITIONS, message, limit, count, scope))


def account_exposure_cap(account: AccountState, limits: Limits) -> Decimal:
    """The account's exposure ceiling: max_account_exposure_pct x E_a."""
    return mul(limits.max_account_exposure_pct, account.equity)


def portfolio_exposure_cap(portfolio: PortfolioState, limits: Limits) -> Decimal:
    """The portfolio's exposure ceiling: max_portfolio_exposure_pct x E."""
    return mul(limits.max_portfolio_exposure_pct, portfolio.equity)


def symbol_exposure_cap(portfolio: PortfolioState, limits: Limits) -> Decimal:
    """The ceiling on the portfolio's exposure in one symbol: max_symbol_exposure_pct x E."""
    return mul(limits.max_symbol_exposure_pct, portfolio.equity)


def group_exposure_cap(portfolio: PortfolioState) -> Decimal | None:
    """The ceiling on the symbol's correlation group: its limit x E (None: the symbol is in no group)."""
    if portfolio.group_exposure is None or portfolio.group_limit_pct is None:
        return None
    return mul(portfolio.group_limit_pct, portfolio.equity)


def _check_account_exposure(reasons: list[Reason], n: Decimal, account: AccountState, limits: Limits) -> None:
    """account_exposure: X_a + n > max_account_exposure_pct x E_a."""
    after = add(account.exposure, n)
    cap = account_exposure_cap(account, limits)
    if after > cap:
        limit = quantize_down(cap)
        message = (
            f"account exposure {after:f} would exceed {limit:f}"
            f" ({limits.max_account_exposure_pct:f} of account equity {account.equity:f})"
        )
        reasons.append(Reason(RuleCode.ACCOUNT_EXPOSURE, message, limit, after))


def _check_portfolio_exposure(reasons: list[Reason], n: Decimal, portfolio: PortfolioState, limits: Limits) -> None:
    """portfolio_exposure: X + n > max_portfolio_exposure_pct x E."""
    after = add(portfolio.exposure, n)
    cap = portfolio_exposure_cap(portfolio, limits)
    if after > cap:
        limit = quantize_down(cap)
        message = (
            f"portfolio exposure {after:f} would exceed {limit:f}"
            f" ({limits.max_portfolio_exposure_pct:f} of portfolio equity {portfolio.equity:f})"
        )
        reasons.append(Reason(RuleCode.PORTFOLIO_EXPOSURE, message, limit, after, ReasonScope.PORTFOLIO))


def _check_symbol_concentration(
    reasons: list[Reason], n: Decimal, symbol: str, portfolio: PortfolioState, limits: Limits
) -> None:
    """symbol_concentration: the portfolio's exposure in the symbol + n > max_symbol_exposure_pct x E."""
    after = add(portfolio.symbol_exposure, n)
    cap = symbol_exposure_cap(portfolio, limits)
    if after > cap:
        limit = quantize_down(cap)
        message = (
            f"portfolio exposure in {symbol} {after:f} would exceed {limit:f}"
            f" ({limits.max_symbol_exposure_pct:f} of portfolio equity {portfolio.equity:f})"
        )
        reasons.append(Reason(RuleCode.SYMBOL_CONCENTRATION, message, limit, after, ReasonScope.PORTFOLIO))


def _check_correlated_exposure(reasons: list[Reason], n: Decimal, portfolio: PortfolioState) -> None:
    """correlated_exposure: the symbol's group exposure + n > the group's limit x E (no group: no rule)."""
    cap = group_exposure_cap(portfolio)
    if cap is None:
        return
    after = add(portfolio.group_exposure, n)
    if after > cap:
        limit = quantize_down(cap)
        message = (
            f"exposure of correlation group {portfolio.group_name} {after:f} would exceed {limit:f}"
            f" ({portfolio.group_limit_pct:f} of portfolio equity {portfolio.equity:f})"
        )
        reasons.append(Reason(RuleCode.CORRELATED_EXPOSURE, message, limit, after, ReasonScope.PORTFOLIO))


def _check_daily_loss(
    reasons: list[Reason], account: AccountState, portfolio: PortfolioState, user: UserLimits, limits: Limits
) -> None:
    """daily_loss_limit: the account's loss since the day start has reached min(user max, pct x day start),
    or the portfolio's has reached max_daily_loss_pct x its day start."""
    loss = sub(account.day_start_equity, account.equity)
    pct_floor = mul(limits.max_daily_loss_pct, account.day_start_equity)
    if loss >= user.max_daily_loss or loss >= pct_floor:
        limit = min(user.max_daily_loss, quantize_up(pct_floor))
        message = f"account daily loss {loss:f} has reached its limit {limit:f}"
        reasons.append(Reason(RuleCode.DAILY_LOSS_LIMIT, message, limit, loss))
    loss = sub(portfolio.day_start_equity, portfolio.equity)
    pct_floor = mul(limits.max_daily_loss_pct, portfolio.day_start_equity)
    if loss >= pct_floor:
        limit = quantize_up(pct_floor)
        message = (
            f"portfolio daily loss {loss:f} has reached its limit {limit:f}"
            f" ({limits.max_daily_loss_pct:f} of day start equity {portfolio.day_start_equity:f})"
        )
        reasons.append(Reason(RuleCode.DAILY_LOSS_LIMIT, message, limit, loss, ReasonScope.PORTFOLIO))


def _check_drawdown(reasons: list[Reason], account: AccountState, limits: Limits) -> None:
    """drawdown_limit: (peak - E_a) / peak has reached max_drawdown_pct; compared as peak - E_a >= pct x peak."""
    peak = account.peak_equity
    if peak <= ZERO:
        return
    fall = sub(peak, account.equity)
    if fall >= mul(limits.max_drawdown_pct, peak):
        drawdown = ratio_down(fall, peak)
        message = (
            f"account drawdown {drawdown:f} has reached the limit {limits.max_drawdown_pct:f}"
            f" (peak equity {peak:f}, equity {account.equity:f})"
        )
        reasons.append(Reason(RuleCode.DRAWDOWN_LIMIT, message, limits.max_drawdown_pct, drawdown))
