"""Account and portfolio metrics: exact figures, mark-to-market, and the undefined ratios (None)."""

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from risk.engine import PositionView, Side, TradeStats, account_metrics, portfolio_metrics, position_market_value
from tests.risk.engine import factories as f

D = Decimal

BTC_OPEN = PositionView("BTC-USD", Side.LONG, quantity=D("0.5"), entry_price=D("60000"), notional=D("30000"))
ETH_SHORT = PositionView("ETH-USD", Side.SHORT, quantity=D("10"), entry_price=D("3000"), notional=D("30000"))
SOL_RESERVED = PositionView("SOL-USD", Side.LONG, quantity=D("0"), entry_price=None, notional=D("5000"))
PRICES = {"BTC-USD": D("62000"), "ETH-USD": D("3100")}
GROUPS = {"BTC-USD": "majors", "ETH-USD": "majors"}


def test_mark_to_market_revalues_the_filled_quantity_with_the_sides_sign():
    assert position_market_value(BTC_OPEN, PRICES) == (D("31000"), D("1000"))
    assert position_market_value(ETH_SHORT, PRICES) == (D("31000"), D("-1000"))
    assert position_market_value(SOL_RESERVED, PRICES) == (D("5000"), D("0"))  # unfilled: booked notional
    assert position_market_value(BTC_OPEN, {}) == (D("30000"), D("0"))  # no price: booked notional


def test_account_metrics_exact_figures():
    account = f.account(equity=D("95000"), peak_equity=D("100000"), day_start_equity=D("98000"))
    stats = TradeStats(closed_trades=4, wins=3, gross_profit=D("900"), gross_loss=D("300"))
    m = account_metrics(
        account=account, positions=[BTC_OPEN, ETH_SHORT, SOL_RESERVED], prices=PRICES, stats=stats, groups=GROUPS
    )
    assert (m.equity, m.exposure, m.market_exposure, m.unrealized_pnl) == (D(95000), D(65000), D(67000), D(0))
    assert m.exposure_pct == D("0.70526316")  # 67000 / 95000
    assert m.drawdown == D("0.05000000")
    assert (m.daily_pnl, m.daily_pnl_pct) == (D("-3000"), D("-0.03061224"))
    assert (m.position_count, m.largest_position, m.average_position) == (3, D("30000"), D("21666.66666667"))
    assert (m.win_rate, m.profit_factor) == (D("0.75000000"), D("3.00000000"))
    assert m.concentration_by_symbol == {
        "BTC-USD": D("0.32631579"),
        "ETH-USD": D("0.32631579"),
        "SOL-USD": D("0.05263158"),
    }
    assert m.concentration_by_group == {"majors": D("0.65263158")}


def test_undefined_ratios_are_none_and_no_peak_is_no_drawdown():
    empty = f.account(equity=D("0"), peak_equity=D("0"), day_start_equity=D("0"))
    m = account_metrics(account=empty, positions=[], prices={}, stats=TradeStats())
    assert (m.exposure, m.exposure_pct, m.drawdown, m.daily_pnl_pct) == (D(0), None, D(0), None)
    assert (m.largest_position, m.average_position, m.win_rate, m.profit_factor) == (None, None, None, None)
    assert (m.concentration_by_symbol, m.concentration_by_group) == ({}, {})


def test_profit_factor_is_none_without_a_loss_and_win_rate_counts_closed_trades():
    stats = TradeStats(closed_trades=2, wins=2, gross_profit=D("50"), gross_loss=D("0"))
    m = account_metrics(account=f.account(), positions=[], prices={}, stats=stats)
    assert (m.win_rate, m.profit_factor) == (D("1.00000000"), None)


def test_drawdown_uses_the_high_water_mark_even_when_the_peak_lags():
    m = account_metrics(
        account=f.account(equity=D("110000"), peak_equity=D("100000")), positions=[], prices={}, stats=TradeStats()
    )
    assert m.drawdown == D("0E-8")


def test_portfolio_metrics_take_the_summed_figures():
    m = portfolio_metrics(
        equity=D("1000000"),
        peak_equity=D("1250000"),
        day_start_equity=D("1000000"),
        positions=[BTC_OPEN, ETH_SHORT],
        prices=PRICES,
        stats=TradeStats(),
        groups=GROUPS,
    )
    assert (m.drawdown, m.daily_pnl, m.exposure, m.market_exposure) == (D("0.2"), D(0), D(60000), D(62000))
    assert m.concentration_by_group == {"majors": D("0.06200000")}


money = st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False, allow_infinity=False)
positions = st.lists(
    st.builds(
        PositionView,
        st.sampled_from(["BTC-USD", "ETH-USD"]),
        st.sampled_from(list(Side)),
        money,
        st.one_of(st.none(), money),
        money,
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(positions, st.dictionaries(st.sampled_from(["BTC-USD", "ETH-USD"]), money))
def test_exposure_is_the_exact_sum_and_every_figure_is_decimal(views, prices):
    m = portfolio_metrics(
        equity=D(1), peak_equity=D(1), day_start_equity=D(1), positions=views, prices=prices, stats=TradeStats()
    )
    assert Fraction(m.exposure) == sum((Fraction(v.notional) for v in views), Fraction(0))
    marked = Fraction(0)
    for v in views:
        mark = prices.get(v.symbol)
        moved = v.entry_price is not None and mark is not None and v.quantity
        marked += Fraction(v.notional) + (
            Fraction(v.quantity) * (Fraction(mark) - Fraction(v.entry_price)) if moved else 0
        )
    assert abs(Fraction(m.market_exposure) - marked) <= Fraction(1, 2 * 10**8)
    for value in (m.exposure, m.market_exposure, m.unrealized_pnl, m.drawdown, m.daily_pnl):
        assert type(value) is Decimal
