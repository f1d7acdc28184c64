"""Every pre-trade rule at its boundary, with exact limits, values and messages (docs/design.md, Risk semantics)."""

from decimal import Decimal

import pytest

from risk.engine import (
    CheckRequest,
    Decision,
    Outcome,
    RuleCode,
    TradingMode,
    evaluate,
    legacy_request,
    notional,
)
from tests.risk.engine import factories as f

D = Decimal
ONE_UNIT = D("0.00000001")


def check(req: CheckRequest | None = None, **inputs) -> Decision:
    """evaluate() with the baseline inputs, any of them replaced by keyword (account=, portfolio=, user=, limits=)."""
    return evaluate(
        req or f.request(),
        inputs.get("account", f.account()),
        inputs.get("portfolio", f.portfolio()),
        inputs.get("user", f.user()),
        inputs.get("limits", f.limits()),
    )


def triples(decision: Decision) -> list[tuple]:
    return [(r.code, r.limit, r.value) for r in decision.reasons]


# --- notional -------------------------------------------------------------------------------------------------


def test_notional_is_quantity_times_price_rounded_up_to_8_decimals():
    assert notional(D("0.33333333"), D("0.33333333")) == D("0.11111111")  # 0.1111111088888889 rounds up
    assert notional(D("0.00000001"), D("0.5")) == D("0.00000001")
    assert notional(D("2"), D("100")) == D("200.00000000")
    assert notional(D("2"), D("100")).as_tuple().exponent == -8


def test_notional_uses_the_higher_of_price_and_fresh_mark():
    assert notional(D("2"), D("100"), D("101.5")) == D("203")
    assert notional(D("2"), D("100"), D("99")) == D("200")
    assert notional(D("2"), D("100"), None) == D("200")


def test_the_check_reserves_the_notional_at_the_higher_mark():
    decision = check(f.request(quantity=D("0.1"), price=D("50000"), mark=D("50000.5")))
    assert decision.decision == Outcome.APPROVED
    assert decision.notional == D("5000.05")


# --- baseline and approval threshold --------------------------------------------------------------------------


def test_baseline_is_approved_with_no_reasons():
    decision = check()
    assert decision == Decision(Outcome.APPROVED, D("5000.00000000"), ())
    assert decision.allowed is True
    assert decision.reason is None


def test_at_the_approval_threshold_the_decision_is_pending_approval():
    rich = f.account(equity=D("200000"), peak_equity=D("200000"), day_start_equity=D("200000"))
    pending = check(f.of_notional("25000"), account=rich)
    below = check(f.of_notional("24999.99999999"), account=rich)
    assert (pending.decision, pending.reasons, pending.allowed) == (Outcome.PENDING_APPROVAL, (), False)
    assert below.decision == Outcome.APPROVED


def test_a_rejection_above_the_threshold_is_rejected_not_pending():
    decision = check(f.of_notional("30000"), user=f.user(max_position_size=D("25000")))
    assert decision.decision == Outcome.REJECTED


# --- trading_halted -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("portfolio_state", "account_state", "expected"),
    [
        (TradingMode.HALTED, TradingMode.ACTIVE, [(RuleCode.TRADING_HALTED, None, "halted")]),
        (TradingMode.ACTIVE, TradingMode.HALTED, [(RuleCode.TRADING_HALTED, None, "halted")]),
        (TradingMode.REDUCING, TradingMode.ACTIVE, [(RuleCode.TRADING_HALTED, None, "reducing")]),
        (TradingMode.ACTIVE, TradingMode.REDUCING, [(RuleCode.TRADING_HALTED, None, "reducing")]),
        (
            TradingMode.HALTED,
            TradingMode.REDUCING,
            [(RuleCode.TRADING_HALTED, None, "halted"), (RuleCode.TRADING_HALTED, None, "reducing")],
        ),
    ],
)
def test_halted_or_reducing_rejects_an_opening_request(portfolio_state, account_state, expected):
    decision = check(portfolio=f.portfolio(state=portfolio_state), account=f.account(state=account_state))
    assert decision.decision == Outcome.REJECTED
    assert triples(decision) == expected


def test_trading_halted_messages_name_the_scope():
    decision = check(portfolio=f.portfolio(state=TradingMode.HALTED), account=f.account(state=TradingMode.REDUCING))
    assert [r.message for r in decision.reasons] == [
        "portfolio trading is halted",
        "account is reducing: only reduce-only requests are accepted",
    ]


# --- permission_denied ----------------------------------------------------------------------------------------


def test_a_user_who_may_not_trade_is_denied():
    decision = check(user=f.user(can_trade=False))
    assert triples(decision) == [(RuleCode.PERMISSION_DENIED, None, None)]
    assert decision.reason == "the user may not trade"


def test_a_symbol_outside_the_allowed_ones_is_denied_and_an_allowed_one_passes():
    denied = check(user=f.user(allowed_symbols=frozenset({"ETH-USD"})))
    allowed = check(user=f.user(allowed_symbols=frozenset({"ETH-USD", "BTC-USD"})))
    assert triples(denied) == [(RuleCode.PERMISSION_DENIED, None, "BTC-USD")]
    assert denied.reason == "symbol BTC-USD is not among the user's allowed symbols"
    assert allowed.decision == Outcome.APPROVED


def test_both_permission_failures_are_reported():
    decision = check(user=f.user(can_trade=False, allowed_symbols=frozenset({"ETH-USD"})))
    assert triples(decision) == [
        (RuleCode.PERMISSION_DENIED, None, None),
        (RuleCode.PERMISSION_DENIED, None, "BTC-USD"),
    ]


# --- max_position_size ----------------------------------------------------------------------------------------


def test_position_size_equal_to_the_user_limit_passes_and_one_unit_more_fails():
    strict_user = f.user(max_position_size=D("15000"))
    assert check(f.of_notional("15000"), user=strict_user).decision == Outcome.APPROVED
    decision = check(f.of_notional("15000.00000001"), user=strict_user)
    assert triples(decision) == [(RuleCode.MAX_POSITION_SIZE, D("15000"), D("15000.00000001"))]
    assert decision.reason == "notional 15000.00000001 exceeds max position size 15000"


def test_position_size_equal_to_max_position_pct_of_equity_passes_and_one_unit_more_fails():
    assert check(f.of_notional("20000")).decision == Outcome.APPROVED  # 0.20 x 100000
    decision = check(f.of_notional("20000.00000001"))
    assert triples(decision) == [(RuleCode.MAX_POSITION_SIZE, D("20000.00000000"), D("20000.00000001"))]
    assert decision.reason == (
        "notional 20000.00000001 exceeds max position size 20000.00000000 (0.20 of account equity 100000)"
    )


def test_the_brief_example_message():
    rich = f.account(equity=D("200000"), peak_equity=D("200000"), day_start_equity=D("200000"))
    decision = check(f.of_notional("30000"), account=rich, user=f.user(max_position_size=D("25000")))
    assert triples(decision) == [(RuleCode.MAX_POSITION_SIZE, D("25000"), D("30000"))]
    assert decision.reason == "notional 30000.00000000 exceeds max position size 25000"


def test_a_pct_limit_off_the_grid_is_reported_rounded_down_and_enforced_exactly():
    # 0.2 x 0.00000011 = 0.000000022: n = 0.00000002 passes, 0.00000003 fails, the limit shown is 0.00000002.
    small = f.account(equity=D("0.00000011"), peak_equity=D("0"), day_start_equity=D("0.00000011"))
    roomy = f.limits(max_account_exposure_pct=D("1"))
    assert check(f.of_notional("0.00000002"), account=small, limits=roomy).decision == Outcome.APPROVED
    decision = check(f.of_notional("0.00000003"), account=small, limits=roomy)
    assert triples(decision) == [(RuleCode.MAX_POSITION_SIZE, D("0.00000002"), D("0.00000003"))]


# --- max_open_positions ---------------------------------------------------------------------------------------


def test_open_positions_below_the_user_limit_pass_and_at_it_fail():
    assert check(account=f.account(position_count=9)).decision == Outcome.APPROVED
    decision = check(account=f.account(position_count=10))
    assert triples(decision) == [(RuleCode.MAX_OPEN_POSITIONS, 10, 10)]
    assert decision.reason == "account holds 10 pending, approved or open positions, its limit is 10"


def test_portfolio_positions_below_max_total_pass_and_at_it_fail():
    assert check(portfolio=f.portfolio(position_count=49)).decision == Outcome.APPROVED
    decision = check(portfolio=f.portfolio(position_count=50))
    assert triples(decision) == [(RuleCode.MAX_OPEN_POSITIONS, 50, 50)]


def test_account_and_portfolio_position_counts_are_both_reported_account_first():
    decision = check(account=f.account(position_count=12), portfolio=f.portfolio(position_count=51))
    assert triples(decision) == [(RuleCode.MAX_OPEN_POSITIONS, 10, 12), (RuleCode.MAX_OPEN_POSITIONS, 50, 51)]


# --- account_exposure / portfolio_exposure / symbol_concentration / correlated_exposure -------------------------


def test_account_exposure_equal_to_the_limit_passes_and_one_unit_more_fails():
    loaded = f.account(exposure=D("80000"))
    assert check(f.of_notional("10000"), account=loaded).decision == Outcome.APPROVED  # 90000 = 0.90 x 100000
    decision = check(f.of_notional("10000.00000001"), account=loaded)
    assert triples(decision) == [(RuleCode.ACCOUNT_EXPOSURE, D("90000.00000000"), D("90000.00000001"))]
    assert decision.reason == (
        "account exposure 90000.00000001 would exceed 90000.00000000 (0.90 of account equity 100000)"
    )


def test_portfolio_exposure_equal_to_the_limit_passes_and_one_unit_more_fails():
    loaded = f.portfolio(exposure=D("790000"))
    assert check(f.of_notional("10000"), portfolio=loaded).decision == Outcome.APPROVED  # 800000 = 0.80 x 1e6
    decision = check(f.of_notional("10000.00000001"), portfolio=loaded)
    assert triples(decision) == [(RuleCode.PORTFOLIO_EXPOSURE, D("800000.00000000"), D("800000.00000001"))]


def test_symbol_concentration_equal_to_the_limit_passes_and_one_unit_more_fails():
    loaded = f.portfolio(symbol_exposure=D("290000"))
    assert check(f.of_notional("10000"), portfolio=loaded).decision == Outcome.APPROVED  # 300000 = 0.30 x 1e6
    decision = check(f.of_notional("10000.00000001"), portfolio=loaded)
    assert triples(decision) == [(RuleCode.SYMBOL_CONCENTRATION, D("300000.00000000"), D("300000.00000001"))]
    assert decision.reason == (
        "portfolio exposure in BTC-USD 300000.00000001 would exceed 300000.00000000 (0.30 of portfolio equity 1000000)"
    )


def test_correlated_exposure_equal_to_the_group_limit_passes_and_one_unit_more_fails():
    loaded = f.portfolio(group_exposure=D("240000"), group_limit_pct=D("0.25"), group_name="majors")
    assert check(f.of_notional("10000"), portfolio=loaded).decision == Outcome.APPROVED
    decision = check(f.of_notional("10000.00000001"), portfolio=loaded)
    assert triples(decision) == [(RuleCode.CORRELATED_EXPOSURE, D("250000.00000000"), D("250000.00000001"))]
    assert decision.reason == (
        "exposure of correlation group majors 250000.00000001 would exceed 250000.00000000"
        " (0.25 of portfolio equity 1000000)"
    )


def test_a_symbol_in_no_correlation_group_skips_the_group_rule():
    decision = check(portfolio=f.portfolio(group_exposure=None, group_limit_pct=None))
    assert decision.decision == Outcome.APPROVED


def test_zero_equity_makes_every_pct_of_equity_ceiling_zero():
    broke_account = f.account(equity=D("0"), peak_equity=D("0"), day_start_equity=D("0"))
    decision = check(f.of_notional("0.00000001"), account=broke_account)
    assert [r.code for r in decision.reasons] == [
        RuleCode.MAX_POSITION_SIZE,
        RuleCode.ACCOUNT_EXPOSURE,
        RuleCode.DAILY_LOSS_LIMIT,  # a loss of 0 has reached a limit of 0
    ]
    broke_portfolio = f.portfolio(equity=D("0"), day_start_equity=D("0"))
    decision = check(f.of_notional("0.00000001"), portfolio=broke_portfolio)
    assert [r.code for r in decision.reasons] == [
        RuleCode.PORTFOLIO_EXPOSURE,
        RuleCode.SYMBOL_CONCENTRATION,
        RuleCode.DAILY_LOSS_LIMIT,  # a loss of 0 has reached a limit of 0
    ]


# --- daily_loss_limit -----------------------------------------------------------------------------------------


def test_account_daily_loss_reaching_the_pct_limit_rejects_and_just_below_passes():
    # effective limit = min(user 10000, 0.05 x 100000 = 5000) = 5000
    decision = check(account=f.account(equity=D("95000")))
    assert triples(decision) == [(RuleCode.DAILY_LOSS_LIMIT, D("5000.00000000"), D("5000"))]
    assert decision.reason == "account daily loss 5000 has reached its limit 5000.00000000"
    assert check(account=f.account(equity=D("95000.00000001"))).decision == Outcome.APPROVED


def test_account_daily_loss_reaching_the_user_limit_rejects_when_it_is_stricter():
    strict_user = f.user(max_daily_loss=D("3000"))
    decision = check(account=f.account(equity=D("97000")), user=strict_user)
    assert triples(decision) == [(RuleCode.DAILY_LOSS_LIMIT, D("3000"), D("3000"))]
    assert check(account=f.account(equity=D("97000.00000001")), user=strict_user).decision == Outcome.APPROVED


def test_portfolio_daily_loss_reaching_the_limit_rejects_and_just_below_passes():
    decision = check(portfolio=f.portfolio(equity=D("950000")))  # 0.05 x 1000000
    assert triples(decision) == [(RuleCode.DAILY_LOSS_LIMIT, D("50000.00000000"), D("50000"))]
    assert decision.reason == (
        "portfolio daily loss 50000 has reached its limit 50000.00000000 (0.05 of day start equity 1000000)"
    )
    assert check(portfolio=f.portfolio(equity=D("950000.00000001"))).decision == Outcome.APPROVED


def test_a_daily_gain_never_trips_the_daily_loss_rule():
    assert check(account=f.account(equity=D("120000"), peak_equity=D("120000"))).decision == Outcome.APPROVED


# --- drawdown_limit -------------------------------------------------------------------------------------------


def test_drawdown_reaching_the_limit_rejects_and_just_below_passes():
    at_limit = f.account(equity=D("80000"), day_start_equity=D("80000"))  # (100000 - 80000) / 100000 = 0.20
    decision = check(f.of_notional("1000"), account=at_limit)
    assert triples(decision) == [(RuleCode.DRAWDOWN_LIMIT, D("0.20"), D("0.20000000"))]
    assert decision.reason == (
        "account drawdown 0.20000000 has reached the limit 0.20 (peak equity 100000, equity 80000)"
    )
    below = f.account(equity=D("80000.00000001"), day_start_equity=D("80000.00000001"))
    assert check(f.of_notional("1000"), account=below).decision == Outcome.APPROVED


def test_no_peak_means_no_drawdown():
    fresh = f.account(equity=D("100"), peak_equity=D("0"), day_start_equity=D("100"))
    assert check(f.of_notional("10"), account=fresh).decision == Outcome.APPROVED


# --- every failing rule, in order -----------------------------------------------------------------------------


def test_every_failing_rule_is_reported_in_the_table_order():
    decision = check(
        f.of_notional("900000", symbol="DOGE-USD"),
        account=f.account(
            state=TradingMode.HALTED,
            equity=D("50000"),
            exposure=D("10"),
            position_count=10,
            day_start_equity=D("60000"),
        ),
        portfolio=f.portfolio(
            state=TradingMode.HALTED,
            equity=D("900000"),
            position_count=50,
            group_exposure=D("0"),
            group_limit_pct=D("0.5"),
            group_name="memes",
        ),
        user=f.user(can_trade=False, allowed_symbols=frozenset({"BTC-USD"})),
    )
    assert [r.code for r in decision.reasons] == [
        RuleCode.TRADING_HALTED,
        RuleCode.TRADING_HALTED,
        RuleCode.PERMISSION_DENIED,
        RuleCode.PERMISSION_DENIED,
        RuleCode.MAX_POSITION_SIZE,
        RuleCode.MAX_OPEN_POSITIONS,
        RuleCode.MAX_OPEN_POSITIONS,
        RuleCode.ACCOUNT_EXPOSURE,
        RuleCode.PORTFOLIO_EXPOSURE,
        RuleCode.SYMBOL_CONCENTRATION,
        RuleCode.CORRELATED_EXPOSURE,
        RuleCode.DAILY_LOSS_LIMIT,
        RuleCode.DAILY_LOSS_LIMIT,
        RuleCode.DRAWDOWN_LIMIT,
    ]
    assert decision.decision == Outcome.REJECTED
    assert decision.notional == D("900000")
    assert decision.reason == "portfolio trading is halted"


# --- reduce-only ----------------------------------------------------------------------------------------------


def test_reduce_only_reserves_nothing_and_skips_every_exposure_rule():
    overloaded = f.account(exposure=D("1000000"), position_count=99, equity=D("1"), day_start_equity=D("100000"))
    req = f.request(quantity=D("2"), reduce_only=True, reduce_quantity_available=D("2"))
    decision = check(req, account=overloaded, user=f.user(can_trade=False), portfolio=f.portfolio(exposure=D("9e9")))
    assert decision == Decision(Outcome.APPROVED, D("0"), ())


def test_reduce_only_is_approved_when_reducing_and_rejected_when_halted():
    req = f.request(reduce_only=True, reduce_quantity_available=D("1"))
    assert check(req, account=f.account(state=TradingMode.REDUCING)).decision == Outcome.APPROVED
    assert check(req, portfolio=f.portfolio(state=TradingMode.REDUCING)).decision == Outcome.APPROVED
    halted = check(req, account=f.account(state=TradingMode.HALTED))
    assert (halted.decision, halted.notional) == (Outcome.REJECTED, D("0"))
    assert triples(halted) == [(RuleCode.TRADING_HALTED, None, "halted")]


def test_reduce_only_beyond_the_open_quantity_is_rejected():
    at_open = f.request(quantity=D("0.5"), reduce_only=True, reduce_quantity_available=D("0.5"))
    beyond = f.request(quantity=D("0.50000001"), reduce_only=True, reduce_quantity_available=D("0.5"))
    no_position = f.request(quantity=D("0.5"), reduce_only=True, reduce_quantity_available=None)
    assert check(at_open).decision == Outcome.APPROVED
    decision = check(beyond)
    assert triples(decision) == [(RuleCode.REDUCE_EXCEEDS_POSITION, D("0.5"), D("0.50000001"))]
    assert decision.reason == "quantity 0.50000001 exceeds the position's open quantity 0.5"
    assert triples(check(no_position)) == [(RuleCode.REDUCE_EXCEEDS_POSITION, D("0"), D("0.5"))]


def test_reduce_only_is_never_pending_approval():
    req = f.of_notional("1000000", reduce_only=True, reduce_quantity_available=D("1"))
    assert check(req).decision == Outcome.APPROVED


# --- legacy {account_id, position_size} -----------------------------------------------------------------------


def test_legacy_request_checks_its_notional_and_skips_the_symbol_rules():
    crowded = f.portfolio(symbol_exposure=D("9e6"), group_exposure=D("9e6"), group_limit_pct=D("0.1"))
    picky = f.user(allowed_symbols=frozenset({"ETH-USD"}))
    decision = check(legacy_request(D("1000")), portfolio=crowded, user=picky)
    assert decision == Decision(Outcome.APPROVED, D("1000"), ())


def test_legacy_request_still_runs_the_account_rules():
    decision = check(legacy_request(D("20000.00000001")), account=f.account(exposure=D("70000")))
    assert [r.code for r in decision.reasons] == [RuleCode.MAX_POSITION_SIZE, RuleCode.ACCOUNT_EXPOSURE]
    assert check(legacy_request(D("1000")), user=f.user(can_trade=False)).decision == Outcome.REJECTED
