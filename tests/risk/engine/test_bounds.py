"""`counter_bounds` against `evaluate` itself: with everything but the counters unchanged, a decision that is not a
rejection is the same decision for counters within its bounds and a rejection for counters outside them.

The oracle is `evaluate` run again on the moved counters; the bounds only say which of the two to expect. Counters
are moved to land on, just under and just over each ceiling and count limit (where an off-by-one would show), and
anywhere else.
"""

from dataclasses import replace
from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from risk.engine import Outcome, evaluate, notional
from risk.engine.bounds import CounterBounds, Counters, counter_bounds, within
from tests.risk.engine.test_properties import SETTINGS, check_inputs, money, permissive

ONE_UNIT = Decimal("0.00000001")
LEAST_PCT = Decimal("0.1")  # with equity 10 n (`permissive`), every percentage ceiling admits n


@st.composite
def approvable_inputs(draw) -> tuple:
    """Random (boundary-snapped) inputs; where they reject, made permissive so that only the counters can reject."""
    request, account, portfolio, user, limits = draw(check_inputs())
    if evaluate(request, account, portfolio, user, limits).decision != Outcome.REJECTED:
        return request, account, portfolio, user, limits
    n = request.legacy_notional or notional(request.quantity, request.price, request.mark)
    account, portfolio, user = permissive(n, account, portfolio, user)
    user = replace(user, max_open_positions=draw(st.integers(1, 20)))
    if draw(st.booleans()):
        group_pct = max(draw(st.sampled_from([Decimal("0.1"), Decimal("0.25"), Decimal("1")])), LEAST_PCT)
        portfolio = replace(portfolio, group_exposure=Decimal(0), group_limit_pct=group_pct, group_name="majors")
    pct_fields = ("max_position_pct", "max_account_exposure_pct", "max_portfolio_exposure_pct")
    pct_fields += ("max_symbol_exposure_pct", "max_daily_loss_pct", "max_drawdown_pct")
    limits = replace(
        limits,
        max_total_positions=max(limits.max_total_positions, 1),
        **{name: max(getattr(limits, name), LEAST_PCT) for name in pct_fields},
    )
    return request, account, portfolio, user, limits


COUNTERS = (
    "account_exposure",
    "account_positions",
    "portfolio_exposure",
    "portfolio_positions",
    "symbol_exposure",
    "group_exposure",
)


def _edges(bounds: CounterBounds, name: str) -> list:
    """The values of counter `name` on, just under and just over its boundary (empty: it has none)."""
    n = bounds.notional
    caps = {
        "account_exposure": bounds.account_exposure_cap,
        "portfolio_exposure": bounds.portfolio_exposure_cap,
        "symbol_exposure": bounds.symbol_exposure_cap,
        "group_exposure": bounds.group_exposure_cap,
    }
    if name in caps:
        cap = caps[name]
        if cap is None:
            return []
        edge = cap - n
        return [value for value in (edge - ONE_UNIT, edge, edge + ONE_UNIT, edge + 1) if value >= 0]
    limit = bounds.account_positions_limit if name == "account_positions" else bounds.portfolio_positions_limit
    return [count for count in (limit - 1, limit, limit + 1) if count >= 0]


@st.composite
def moved_counters(draw, bounds: CounterBounds, counters: Counters) -> Counters:
    """The counters with one of them moved onto (or just either side of) its boundary, or all moved anywhere."""
    name = draw(st.sampled_from([*COUNTERS, "all"]))
    if name == "all":
        return Counters(
            account_exposure=draw(money()),
            account_positions=draw(st.integers(0, 30)),
            portfolio_exposure=draw(money()),
            portfolio_positions=draw(st.integers(0, 80)),
            symbol_exposure=draw(money()),
            group_exposure=None if counters.group_exposure is None else draw(money()),
        )
    edges = _edges(bounds, name)
    if not edges:
        return counters
    return replace(counters, **{name: draw(st.sampled_from(edges))})


def _counters_of(account, portfolio) -> Counters:
    return Counters(
        account_exposure=account.exposure,
        account_positions=account.position_count,
        portfolio_exposure=portfolio.exposure,
        portfolio_positions=portfolio.position_count,
        symbol_exposure=portfolio.symbol_exposure,
        group_exposure=portfolio.group_exposure,
    )


def _with_counters(account, portfolio, counters: Counters):
    return (
        replace(account, exposure=counters.account_exposure, position_count=counters.account_positions),
        replace(
            portfolio,
            exposure=counters.portfolio_exposure,
            position_count=counters.portfolio_positions,
            symbol_exposure=counters.symbol_exposure,
            group_exposure=counters.group_exposure,
        ),
    )


@SETTINGS
@given(approvable_inputs(), st.data())
def test_a_decision_holds_within_its_bounds_and_is_a_rejection_outside_them(inputs, data):
    request, account, portfolio, user, limits = inputs
    decision = evaluate(request, account, portfolio, user, limits)
    assume(decision.decision != Outcome.REJECTED)
    bounds = counter_bounds(request, account, portfolio, user, limits, notional=decision.notional)
    counters = data.draw(moved_counters(bounds, _counters_of(account, portfolio)))

    again = evaluate(request, *_with_counters(account, portfolio, counters), user, limits)

    if within(bounds, counters):
        assert again == decision
    else:
        assert again.decision == Outcome.REJECTED


@SETTINGS
@given(approvable_inputs())
def test_the_counters_a_decision_was_made_on_are_within_its_bounds(inputs):
    request, account, portfolio, user, limits = inputs
    decision = evaluate(request, account, portfolio, user, limits)
    assume(decision.decision != Outcome.REJECTED)
    bounds = counter_bounds(request, account, portfolio, user, limits, notional=decision.notional)
    assert within(bounds, _counters_of(account, portfolio))
