"""Property tests of the engine against an independent oracle written over exact fractions.

The oracle restates docs/design.md's rules table rule by rule with `fractions.Fraction` (no Decimal, no helper), so
agreement means the engine's Decimal arithmetic is exact and its reasons are exactly the failing rules, with the
reported limits and values. Strategies mix a coarse grid (round figures that land exactly on limits) with
arbitrary 8-decimal values.
"""

import math
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, localcontext
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk.engine import (
    AccountState,
    CheckRequest,
    Decision,
    Limits,
    Outcome,
    PortfolioState,
    RuleCode,
    Side,
    TradingMode,
    UserLimits,
    evaluate,
    notional,
)

D = Decimal
SCALE = 10**8
# Example counts keep the whole engine suite well under 20 s on a 2-vCPU machine; the boundary snapping below,
# not the count, is what finds an off-by-one (each `>` turned into `>=` in the rules fails these tests).
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = settings(SETTINGS, max_examples=120)

SIZE_RULES = {
    RuleCode.MAX_POSITION_SIZE,
    RuleCode.ACCOUNT_EXPOSURE,
    RuleCode.PORTFOLIO_EXPOSURE,
    RuleCode.SYMBOL_CONCENTRATION,
    RuleCode.CORRELATED_EXPOSURE,
}


# --- strategies -----------------------------------------------------------------------------------------------

COARSE_MONEY = [D(v) for v in ("0", "1", "100", "1000", "5000", "10000", "20000", "25000", "50000", "80000")] + [
    D(v) for v in ("90000", "95000", "100000", "200000", "800000", "950000", "1000000")
]
COARSE_PCT = [D(v) for v in ("0", "0.05", "0.1", "0.2", "0.25", "0.3", "0.5", "0.8", "0.9", "1")]


def money(max_value: int = 2_000_000) -> st.SearchStrategy[Decimal]:
    fine = st.decimals(min_value=0, max_value=max_value, places=8, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(COARSE_MONEY), st.sampled_from(COARSE_MONEY), fine)


def positive_money() -> st.SearchStrategy[Decimal]:
    return money().filter(lambda d: d > 0)


def pct() -> st.SearchStrategy[Decimal]:
    fine = st.decimals(min_value=0, max_value=1, places=8, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(COARSE_PCT), st.sampled_from(COARSE_PCT), fine)


def quantity() -> st.SearchStrategy[Decimal]:
    fine = st.decimals(min_value=D("0.00000001"), max_value=50, places=8, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from([D("0.1"), D("0.5"), D("1"), D("2")]), fine)


# Mostly ACTIVE and allowed to trade: a check rejected by its state alone would hide the approval threshold.
states = st.sampled_from([TradingMode.ACTIVE] * 4 + [TradingMode.REDUCING, TradingMode.HALTED])
symbols = st.sampled_from(["BTC-USD", "ETH-USD", "SOL-USD"])


@st.composite
def limits(draw) -> Limits:
    return Limits(
        max_portfolio_exposure_pct=draw(pct()),
        max_daily_loss_pct=draw(pct()),
        max_total_positions=draw(st.integers(0, 60)),
        max_account_exposure_pct=draw(pct()),
        max_position_pct=draw(pct()),
        max_symbol_exposure_pct=draw(pct()),
        max_drawdown_pct=draw(pct()),
        approval_threshold=draw(money()),
    )


@st.composite
def user_limits(draw) -> UserLimits:
    return UserLimits(
        can_trade=draw(st.sampled_from([True, True, True, False])),
        max_position_size=draw(money()),
        max_daily_loss=draw(money()),
        max_open_positions=draw(st.integers(0, 20)),
        allowed_symbols=draw(st.frozensets(symbols, max_size=2)),
    )


@st.composite
def account_states(draw) -> AccountState:
    return AccountState(
        account_id=draw(st.integers(1, 10**6)),
        equity=draw(money()),
        exposure=draw(money()),
        position_count=draw(st.integers(0, 20)),
        peak_equity=draw(money()),
        day_start_equity=draw(money()),
        state=draw(states),
    )


@st.composite
def portfolio_states(draw) -> PortfolioState:
    in_group = draw(st.booleans())
    return PortfolioState(
        equity=draw(money()),
        exposure=draw(money()),
        position_count=draw(st.integers(0, 60)),
        day_start_equity=draw(money()),
        state=draw(states),
        symbol_exposure=draw(money()),
        group_exposure=draw(money()) if in_group else None,
        group_limit_pct=draw(pct()) if in_group else None,
        group_name="majors" if in_group else None,
    )


@st.composite
def opening_requests(draw) -> CheckRequest:
    legacy = draw(st.integers(0, 9)) == 0
    return CheckRequest(
        symbol=draw(symbols),
        side=draw(st.sampled_from(list(Side))),
        quantity=draw(quantity()),
        price=draw(positive_money()),
        mark=draw(st.one_of(st.none(), positive_money())),
        legacy_notional=draw(positive_money()) if legacy else None,
    )


@st.composite
def reduce_requests(draw) -> CheckRequest:
    return CheckRequest(
        symbol=draw(symbols),
        side=draw(st.sampled_from(list(Side))),
        quantity=draw(quantity()),
        price=draw(positive_money()),
        mark=draw(st.one_of(st.none(), positive_money())),
        reduce_only=True,
        reduce_quantity_available=draw(st.one_of(st.none(), quantity())),
    )


ONE_UNIT = D("0.00000001")
TARGETS = (
    "none",
    "position_user",
    "position_pct",
    "account_exposure",
    "portfolio_exposure",
    "symbol_concentration",
    "correlated_exposure",
    "account_count",
    "portfolio_count",
    "daily_account",
    "daily_portfolio",
    "drawdown",
    "threshold",
)


def on_grid(value: Decimal) -> bool:
    return value >= 0 and value == value.quantize(ONE_UNIT, context=Context(prec=60))


def down8(value: Decimal) -> Decimal:
    return value.quantize(ONE_UNIT, rounding=ROUND_FLOOR, context=Context(prec=60))


def up8(value: Decimal) -> Decimal:
    return value.quantize(ONE_UNIT, rounding=ROUND_CEILING, context=Context(prec=60))


CEILINGS = {  # target: (which state holds the amount, its field, the limit pct)
    "account_exposure": ("account", "exposure", lambda lim, port: lim.max_account_exposure_pct),
    "portfolio_exposure": ("portfolio", "exposure", lambda lim, port: lim.max_portfolio_exposure_pct),
    "symbol_concentration": ("portfolio", "symbol_exposure", lambda lim, port: lim.max_symbol_exposure_pct),
    "correlated_exposure": ("portfolio", "group_exposure", lambda lim, port: port.group_limit_pct),
}


def snap_ceiling(state, field: str, pct: Decimal, n: Decimal, delta: Decimal):
    """`state` with `field` set so that field + n lands on floor8(pct x equity) + delta.

    When n alone is past the cap, the equity is raised first so that the cap is n + delta.
    """
    equity = state.equity
    held = down8(pct * equity) - n + delta
    if held < 0 and pct > 0:
        equity = up8((n + delta) / pct)
        held = down8(pct * equity) - n + delta
    return replace(state, equity=equity, **{field: held}) if held >= 0 else state


def permissive(n: Decimal, acc: AccountState, port: PortfolioState, user: UserLimits):
    """Inputs every rule admits for a notional n (equity 10 n, nothing held, flat day): only the threshold decides."""
    big = up8(n * 10) + 1
    flat = {"equity": big, "day_start_equity": big, "exposure": D(0), "position_count": 0, "state": TradingMode.ACTIVE}
    acc = replace(acc, peak_equity=big, **flat)
    port = replace(port, symbol_exposure=D(0), group_exposure=None, group_limit_pct=None, **flat)
    user = replace(
        user,
        can_trade=True,
        max_position_size=big,
        max_daily_loss=big,
        max_open_positions=1,
        allowed_symbols=frozenset(),
    )
    return acc, port, user


def snap(target: str, delta: Decimal, req, acc, port, user, lim) -> tuple:
    """Move one input so that `target`'s rule sits exactly on its boundary, plus delta."""
    n = notional(req.quantity, req.price, req.mark) if req.legacy_notional is None else req.legacy_notional
    if target in CEILINGS:
        owner, field, pct_of = CEILINGS[target]
        if target == "correlated_exposure" and port.group_limit_pct is None:
            port = replace(port, group_exposure=D(0), group_limit_pct=D("0.25"), group_name="majors")
        if owner == "account":
            acc = snap_ceiling(acc, field, pct_of(lim, port), n, delta)
        else:
            port = snap_ceiling(port, field, pct_of(lim, port), n, delta)
    elif target == "position_user" and on_grid(n + delta):
        user = replace(user, max_position_size=n + delta)
    elif target == "position_pct" and lim.max_position_pct:
        acc = replace(acc, equity=up8((n + delta) / lim.max_position_pct))
    elif target == "account_count":
        acc = replace(acc, position_count=user.max_open_positions + int(delta * SCALE))
    elif target == "portfolio_count":
        port = replace(port, position_count=lim.max_total_positions + int(delta * SCALE))
    elif target == "daily_account":
        limit = min(user.max_daily_loss, up8(lim.max_daily_loss_pct * acc.day_start_equity))
        if on_grid(acc.day_start_equity - limit + delta):
            acc = replace(acc, equity=acc.day_start_equity - limit + delta)
    elif target == "daily_portfolio":
        limit = up8(lim.max_daily_loss_pct * port.day_start_equity)
        if on_grid(port.day_start_equity - limit + delta):
            port = replace(port, equity=port.day_start_equity - limit + delta)
    elif target == "drawdown":
        if on_grid(acc.peak_equity - up8(lim.max_drawdown_pct * acc.peak_equity) + delta):
            acc = replace(acc, equity=acc.peak_equity - up8(lim.max_drawdown_pct * acc.peak_equity) + delta)
    elif target == "threshold" and on_grid(n + delta):
        acc, port, user = permissive(n, acc, port, user)
        lim = Limits(approval_threshold=n + delta)
    return req, acc, port, user, lim


@st.composite
def check_inputs(draw) -> tuple:
    """Random inputs, then one amount or limit snapped onto a rule's boundary (or one unit either side).

    Without the snap, random values almost never land exactly on a limit and a `>` written as `>=` goes unseen.
    A limit off the 8-decimal grid is snapped to its grid neighbour (a ceiling down, a floor up), which is also
    where the engine's reported limit says the boundary is.
    """
    inputs = (draw(opening_requests()), draw(account_states()), draw(portfolio_states()))
    inputs += (draw(user_limits()), draw(limits()))
    target = draw(st.sampled_from(TARGETS))
    delta = draw(st.sampled_from([-ONE_UNIT, D(0), D(0), ONE_UNIT]))
    with localcontext(Context(prec=60)):
        return snap(target, delta, *inputs)


# --- the oracle -----------------------------------------------------------------------------------------------


def q(value: Decimal) -> Fraction:
    return Fraction(value)


def floor8(x: Fraction) -> Fraction:
    return Fraction(math.floor(x * SCALE), SCALE)


def ceil8(x: Fraction) -> Fraction:
    return Fraction(math.ceil(x * SCALE), SCALE)


def oracle_notional(req: CheckRequest) -> Fraction:
    if req.legacy_notional is not None:
        return ceil8(q(req.legacy_notional))
    price = q(req.price) if req.mark is None else max(q(req.price), q(req.mark))
    return ceil8(q(req.quantity) * price)


def oracle_reasons(req, acc, port, user, lim) -> list[tuple]:
    """docs/design.md's rules table, rule by rule, over fractions: (code, limit, value) of every failing check."""
    n = oracle_notional(req)
    symbol_rules = req.legacy_notional is None
    out: list[tuple] = []
    for state in (port.state, acc.state):
        if state in ("halted", "reducing"):
            out.append(("trading_halted", None, str(state)))
    if not user.can_trade:
        out.append(("permission_denied", None, None))
    if symbol_rules and user.allowed_symbols and req.symbol not in user.allowed_symbols:
        out.append(("permission_denied", None, req.symbol))
    ea, e = q(acc.equity), q(port.equity)
    if n > q(user.max_position_size) or n > q(lim.max_position_pct) * ea:
        out.append(("max_position_size", min(q(user.max_position_size), floor8(q(lim.max_position_pct) * ea)), n))
    if acc.position_count >= user.max_open_positions:
        out.append(("max_open_positions", user.max_open_positions, acc.position_count))
    if port.position_count >= lim.max_total_positions:
        out.append(("max_open_positions", lim.max_total_positions, port.position_count))
    ceilings = [("account_exposure", q(acc.exposure), q(lim.max_account_exposure_pct) * ea)]
    ceilings.append(("portfolio_exposure", q(port.exposure), q(lim.max_portfolio_exposure_pct) * e))
    if symbol_rules:
        ceilings.append(("symbol_concentration", q(port.symbol_exposure), q(lim.max_symbol_exposure_pct) * e))
        if port.group_exposure is not None:
            ceilings.append(("correlated_exposure", q(port.group_exposure), q(port.group_limit_pct) * e))
    out += [(code, floor8(cap), held + n) for code, held, cap in ceilings if held + n > cap]
    loss, cap = q(acc.day_start_equity) - ea, q(lim.max_daily_loss_pct) * q(acc.day_start_equity)
    if loss >= min(q(user.max_daily_loss), cap):
        out.append(("daily_loss_limit", min(q(user.max_daily_loss), ceil8(cap)), loss))
    loss, cap = q(port.day_start_equity) - e, q(lim.max_daily_loss_pct) * q(port.day_start_equity)
    if loss >= cap:
        out.append(("daily_loss_limit", ceil8(cap), loss))
    peak = q(acc.peak_equity)
    if peak > 0 and (peak - ea) / peak >= q(lim.max_drawdown_pct):
        out.append(("drawdown_limit", q(lim.max_drawdown_pct), floor8((peak - ea) / peak)))
    return out


def reported(decision: Decision) -> list[tuple]:
    """The engine's reasons with Decimals as fractions, comparable to the oracle's."""

    def exact(v):
        return q(v) if isinstance(v, Decimal) else v

    return [(str(r.code), exact(r.limit), exact(r.value)) for r in decision.reasons]


def assert_decimal_only(decision: Decision) -> None:
    assert type(decision.notional) is Decimal
    for reason in decision.reasons:
        assert type(reason.limit) in (Decimal, int, type(None)), reason
        assert type(reason.value) in (Decimal, int, str, type(None)), reason
        assert isinstance(reason.message, str)
        assert "E-" not in reason.message, reason.message
        assert "E+" not in reason.message, reason.message


# --- properties -----------------------------------------------------------------------------------------------


@SETTINGS
@given(check_inputs())
def test_reasons_are_exactly_the_failing_rules(inputs):
    req, acc, port, user, lim = inputs
    decision = evaluate(req, acc, port, user, lim)
    expected = oracle_reasons(req, acc, port, user, lim)
    n = oracle_notional(req)
    assert reported(decision) == expected
    assert q(decision.notional) == n
    if expected:
        assert decision.decision == Outcome.REJECTED
    elif n >= q(lim.approval_threshold):
        assert decision.decision == Outcome.PENDING_APPROVAL
    else:
        assert decision.decision == Outcome.APPROVED
    assert_decimal_only(decision)


@SMALL
@given(reduce_requests(), account_states(), portfolio_states(), user_limits(), limits())
def test_reduce_only_never_raises_exposure(req, acc, port, user, lim):
    decision = evaluate(req, acc, port, user, lim)
    halted = [s for s in (port.state, acc.state) if s == TradingMode.HALTED]
    fits = req.reduce_quantity_available is not None and req.quantity <= req.reduce_quantity_available
    assert decision.notional == 0
    assert {r.code for r in decision.reasons} <= {RuleCode.TRADING_HALTED, RuleCode.REDUCE_EXCEEDS_POSITION}
    assert len([r for r in decision.reasons if r.code == RuleCode.TRADING_HALTED]) == len(halted)
    assert decision.decision == (Outcome.APPROVED if not halted and fits else Outcome.REJECTED)
    assert_decimal_only(decision)


@settings(SETTINGS, max_examples=200)
@given(check_inputs(), st.sampled_from([ONE_UNIT, D("0.5"), D("3")]))
def test_a_size_rule_that_rejects_n_rejects_every_larger_n(inputs, extra):
    req, acc, port, user, lim = inputs
    smaller = replace(req, legacy_notional=None)
    larger = replace(smaller, quantity=smaller.quantity + extra)
    small, large = (evaluate(r, acc, port, user, lim) for r in (smaller, larger))
    small_codes = {r.code for r in small.reasons}
    large_codes = {r.code for r in large.reasons}
    assert small_codes & SIZE_RULES <= large_codes & SIZE_RULES
    assert small_codes - SIZE_RULES == large_codes - SIZE_RULES  # the other rules do not depend on n
    assert large.notional >= small.notional


@SMALL
@given(opening_requests(), account_states(), portfolio_states(), user_limits(), limits())
def test_the_callers_decimal_context_cannot_change_a_decision(req, acc, port, user, lim):
    expected = evaluate(req, acc, port, user, lim)
    with localcontext(Context(prec=3, rounding=ROUND_FLOOR)):
        assert evaluate(req, acc, port, user, lim) == expected
