"""Desk analytics: correlation of daily returns and historical VaR / expected shortfall, exact on hand-checked
data; the expected figures are worked out by hand in the comments or by Python's `statistics`, never by the code
under test."""

import random
import statistics
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from monitoring.analytics import correlation_matrix, pearson, tail_risk
from monitoring.services import analytics_run
from monitoring.snapshots import analytics_get
from risk.services.equity import equity_transfer_record
from tests.accounts.factories import TradingInstanceFactory
from tests.risk.conftest import funded_account
from tests.risk.services.test_equity import report
from trading.models import DailyStatistic

D = Decimal
NINETY_FIVE, NINETY_NINE = D("0.95"), D("0.99")


def test_pearson_on_a_hand_checked_series():
    # x - 3 = -2 -1 0 1 2, y - 3 = -1 -2 1 0 2: sum of products 8, sums of squares 10 and 10: r = 8 / 10.
    assert pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8, abs=1e-15)
    assert pearson([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0, abs=1e-15)
    assert pearson([1, 2, 3], [5, 5, 5]) is None  # a series that never moves has no correlation


def test_pearson_agrees_with_the_standard_library_on_random_series():
    rng = random.Random(7)
    for _ in range(50):
        xs = [rng.gauss(0, 0.02) for _ in range(60)]
        ys = [0.5 * x + rng.gauss(0, 0.01) for x in xs]
        assert pearson(xs, ys) == pytest.approx(statistics.correlation(xs, ys), abs=1e-12)


def test_the_matrix_needs_twenty_common_days_and_says_how_many_it_had():
    start = date(2026, 1, 1)
    days = [start + timedelta(days=n) for n in range(25)]
    rng = random.Random(3)
    a = {day: rng.uniform(-0.03, 0.03) for day in days}
    b = {day: rng.uniform(-0.03, 0.03) for day in days}
    c = {day: rng.uniform(-0.03, 0.03) for day in days[10:]}  # 15 days in common with the others

    matrix = correlation_matrix({1: a, 2: b, 3: c})

    assert matrix.account_ids == (1, 2, 3)
    assert matrix.days == ((25, 25, 15), (25, 25, 15), (15, 15, 15))
    expected = statistics.correlation([a[day] for day in days], [b[day] for day in days])
    assert matrix.coefficients[0][1] == pytest.approx(expected, abs=1e-12)
    assert matrix.coefficients[1][0] == matrix.coefficients[0][1]
    assert (matrix.coefficients[0][0], matrix.coefficients[1][1]) == (pytest.approx(1.0), pytest.approx(1.0))
    assert matrix.coefficients[0][2] is None
    assert matrix.coefficients[2][2] is None


def test_var_and_expected_shortfall_on_a_hand_checked_series():
    pnl = [D("-100"), D("-40"), *[D("10")] * 38]  # 40 days

    # 95 %: k = ceil(40 x 0.05) = 2 worst days, -100 and -40: VaR 40, shortfall (100 + 40) / 2 = 70.
    assert tail_risk(pnl, NINETY_FIVE).__dict__ == {
        "confidence": NINETY_FIVE,
        "days": 40,
        "tail_days": 2,
        "value_at_risk": D("40"),
        "expected_shortfall": D("70"),
    }
    # 99 %: k = ceil(40 x 0.01) = 1: the worst day alone.
    ninety_nine = tail_risk(pnl, NINETY_NINE)
    assert (ninety_nine.tail_days, ninety_nine.value_at_risk, ninety_nine.expected_shortfall) == (1, 100, 100)


def test_below_twenty_days_there_is_no_figure_only_the_day_count():
    short = tail_risk([D("-5")] * 19, NINETY_FIVE)

    assert (short.days, short.value_at_risk, short.expected_shortfall) == (19, None, None)


def test_days_that_all_made_money_give_a_negative_var():
    figures = tail_risk([D(n) for n in range(1, 21)], NINETY_FIVE)

    assert (figures.value_at_risk, figures.expected_shortfall) == (D("-1"), D("-1"))


@pytest.mark.django_db
def test_the_analytics_task_reads_daily_statistics_and_caches_the_figures(redis_client):
    today = timezone.now().date()
    days = [today - timedelta(days=n) for n in range(22, 0, -1)]  # 22 complete days; today is left out
    big, small = TradingInstanceFactory(exposure=D("5000")), TradingInstanceFactory(exposure=D("100"))
    big_pnl = {days[0]: D("-300"), days[1]: D("-100")}
    small_pnl = {days[0]: D("-200"), days[2]: D("-150")}
    for account, pnl, default in ((big, big_pnl, D("50")), (small, small_pnl, D("20"))):
        for day in [*days, today]:
            gain = pnl.get(day, default)
            DailyStatistic.objects.create(
                instance=account, date=day, start_equity=D("10000"), end_equity=D("10000") + gain
            )

    analytics = analytics_run(now=timezone.now())

    assert analytics_get() == analytics
    risk = analytics["risk"]
    assert risk["days"] == 22
    # Portfolio P&L per day: -500, -80, -100, then 70 on 19 days. 95 %: k = ceil(1.1) = 2: -500 and -100.
    ninety_five, ninety_nine = risk["figures"]
    assert (ninety_five["value_at_risk"], ninety_five["expected_shortfall"]) == ("100.00000000", "300.00000000")
    assert (ninety_nine["value_at_risk"], ninety_nine["expected_shortfall"]) == ("500.00000000", "500.00000000")
    correlation = analytics["correlation"]
    assert correlation["account_ids"] == [big.pk, small.pk]  # largest exposure first
    assert correlation["days"] == [[22, 22], [22, 22]]
    returns = [
        [float(pnl.get(day, default) / 10000) for day in days] for pnl, default in ((big_pnl, 50), (small_pnl, 20))
    ]
    assert correlation["coefficients"][0][1] == pytest.approx(statistics.correlation(*returns), abs=1e-6)


@pytest.mark.django_db
def test_with_little_history_the_analytics_say_so(redis_client):
    account = TradingInstanceFactory(exposure=D("1"))
    today = timezone.now().date()
    for n in range(1, 6):
        DailyStatistic.objects.create(
            instance=account, date=today - timedelta(days=n), start_equity=D("100"), end_equity=D("99")
        )

    analytics = analytics_run(now=timezone.now())

    assert [figure["enough_history"] for figure in analytics["risk"]["figures"]] == [False, False]
    assert [figure["value_at_risk"] for figure in analytics["risk"]["figures"]] == [None, None]
    assert analytics["risk"]["days"] == 5
    assert analytics["correlation"]["coefficients"] == [[None]]
    assert analytics["correlation"]["days"] == [[5]]


@pytest.mark.django_db
def test_a_deposit_or_withdrawal_is_not_a_day_of_profit_or_loss(redis_client):
    """Twenty flat days, then a day whose only move is a 50,000 withdrawal the operator recorded as a transfer
    (the bot's next report says what is left): the portfolio made and lost nothing that day either."""
    today = timezone.now().date()
    account = funded_account("100000")  # today's first report: the day's row starts at 100,000
    for n in range(1, 21):
        DailyStatistic.objects.create(
            instance=account, date=today - timedelta(days=n), start_equity=D("100000"), end_equity=D("100000")
        )
    equity_transfer_record(instance_id=account.pk, amount=D("-50000"), reference="w-1", reason="withdrawal", actor=None)
    report(account, "50000")

    analytics = analytics_run(now=timezone.now() + timedelta(days=1))

    assert analytics["risk"]["days"] == 21
    assert [figure["value_at_risk"] for figure in analytics["risk"]["figures"]] == ["0.00000000", "0.00000000"]
