"""Equity reports (risk.services.equity): high-water mark, UTC-day rollover of day_start_equity, portfolio totals by
delta, and the latched emergency halts (account drawdown, portfolio daily loss) with their reservation sweep."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from accounts.models import AuditEntry, TradingInstance
from risk.errors import AccountInactive, AccountNotFound
from risk.models import BreachLatch, Portfolio, RiskEvent, RiskLimits, TradingState
from risk.services.check import CheckInput, position_check
from risk.services.equity import equity_report
from risk.services.trading_state import trading_resume
from tests.accounts.factories import OperatorFactory, TradingInstanceFactory, UserPermissionFactory
from tests.risk.conftest import counter_drift, funded_account
from tests.risk.services.scenario import exposures, reserve
from trading.models import DailyStatistic, Position


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark from another test."""


def report(account, equity: str, *, now: datetime | None = None, cash_balance: str | None = None):
    return equity_report(
        instance_id=account.pk,
        equity=Decimal(equity),
        cash_balance=None if cash_balance is None else Decimal(cash_balance),
        now=now or timezone.now(),
    )


def portfolio_totals_match() -> bool:
    """Portfolio equity and day-start equity equal the sums over the accounts (they move by deltas)."""
    sums = TradingInstance.objects.aggregate(equity=Sum("equity"), day_start=Sum("day_start_equity"))
    portfolio = Portfolio.objects.get()
    return (portfolio.equity, portfolio.day_start_equity) == (sums["equity"], sums["day_start"])


def state_of(account=None) -> str:
    row = TradingState.objects.filter(instance=account).first() if account else TradingState.objects.get(instance=None)
    return row.state if row else "active"


def emergencies(kind: str) -> list[tuple[str, int | None]]:
    return list(RiskEvent.objects.filter(type=f"emergency_{kind}").values_list("severity", "instance_id"))


# ---------------------------------------------------------------------------------------------- equity
@pytest.mark.django_db
def test_peak_equity_is_a_high_water_mark():
    account = funded_account("100000")

    report(account, "120000.5", cash_balance="5000")
    report(account, "110000")

    account.refresh_from_db()
    assert (account.equity, account.peak_equity, account.cash_balance) == (
        Decimal("110000"),
        Decimal("120000.5"),
        Decimal("5000"),
    )
    assert account.last_heartbeat == account.equity_reported_at
    assert portfolio_totals_match()


@pytest.mark.django_db
def test_day_start_equity_rolls_at_the_first_report_of_each_utc_day():
    account = funded_account("100000")
    other = funded_account("50000")
    late = datetime(2031, 3, 4, 23, 59, 59, tzinfo=UTC)
    next_day = datetime(2031, 3, 5, 0, 0, 1, tzinfo=UTC)

    report(account, "101000", now=late)  # a new UTC day for this account: it starts at 101000
    report(account, "97000", now=late)
    account.refresh_from_db()
    assert (account.day_start_equity, account.day_start_date, account.equity) == (
        Decimal("101000"),
        late.date(),
        Decimal("97000"),
    )
    portfolio = Portfolio.objects.get()
    assert (portfolio.equity, portfolio.day_start_equity) == (Decimal("147000"), Decimal("151000"))

    report(account, "96000", now=next_day)

    account.refresh_from_db()
    assert (account.day_start_equity, account.day_start_date) == (Decimal("96000"), next_day.date())
    portfolio = Portfolio.objects.get()
    assert (portfolio.equity, portfolio.day_start_equity) == (Decimal("146000"), Decimal("146000"))
    assert portfolio_totals_match()
    days = {
        row.date: (row.start_equity, row.end_equity, row.max_drawdown)
        for row in DailyStatistic.objects.filter(instance=account, date__gte=late.date())
    }
    assert days == {
        late.date(): (Decimal("101000"), Decimal("97000"), Decimal("0.03960396")),  # 4000 below the 101000 peak
        next_day.date(): (Decimal("96000"), Decimal("96000"), Decimal("0.04950495")),  # 5000 below it
    }
    del other


@pytest.mark.django_db
def test_an_unknown_or_inactive_account_report_writes_nothing():
    inactive = funded_account("100000")
    TradingInstance.objects.filter(pk=inactive.pk).update(is_active=False)
    portfolio_before = Portfolio.objects.values().get()

    with pytest.raises(AccountInactive):
        report(inactive, "1")
    with pytest.raises(AccountNotFound):
        equity_report(instance_id=987654321, equity=Decimal(1), cash_balance=None, now=timezone.now())

    inactive.refresh_from_db()
    assert inactive.equity == Decimal("100000")
    assert Portfolio.objects.values().get() == portfolio_before


# ---------------------------------------------------------------------------------------------- emergencies
@pytest.mark.django_db
def test_an_account_drawdown_at_the_emergency_limit_halts_that_account_once_until_it_clears():
    account = funded_account("100000")
    other = funded_account("1000000")  # keeps the portfolio's daily loss far below 8 %
    mine = [reserve(account, quantity="0.1"), reserve(account, quantity="0.2")]
    theirs = reserve(other, quantity="0.1")
    report(account, "120000")  # peak 120000

    tripped = report(account, "90000")  # (120000 - 90000) / 120000 = 0.25: reached

    assert [(b.kind, b.account_id, b.value) for b in tripped.new_breaches] == [
        ("drawdown", account.pk, Decimal("0.25"))
    ]
    assert sorted(tripped.cancelled_position_ids) == sorted(p.pk for p in mine)
    assert (state_of(account), state_of(other), state_of()) == ("halted", "active", "active")
    assert emergencies("drawdown") == [("critical", account.pk)]
    assert RiskEvent.objects.filter(severity="critical").count() == 1
    assert RiskEvent.objects.get().details == {
        "key": f"account:{account.pk}:drawdown",
        "limit": "0.250000",
        "value": "0.25000000",
        "previous_state": "active",
        "state": "halted",
    }
    assert list(BreachLatch.objects.values_list("key", flat=True)) == [f"account:{account.pk}:drawdown"]
    assert AuditEntry.objects.get().after == {"state": "halted"}  # the system's halt is audited (actor None)
    assert set(Position.objects.filter(instance=account).values_list("status", flat=True)) == {"cancelled"}
    assert Position.objects.get(pk=theirs.pk).status == "approved"
    assert exposures(account)[:2] == (Decimal(0), 0)
    assert counter_drift() == []

    for equity in ("90000", "90000", "89000", "85000", "90000"):  # still breached: latched
        assert report(account, equity).new_breaches == ()
    assert RiskEvent.objects.filter(severity="critical").count() == 1

    report(account, "100000")  # 16.7 %: the breach clears (the halt stays until an operator resumes)
    assert not BreachLatch.objects.exists()
    assert state_of(account) == "halted"

    again = report(account, "89999.99")  # a new breach raises again
    assert [b.kind for b in again.new_breaches] == ["drawdown"]
    assert emergencies("drawdown") == [("critical", account.pk), ("critical", account.pk)]
    assert BreachLatch.objects.count() == 1
    assert portfolio_totals_match()
    assert counter_drift() == []


@pytest.mark.django_db
def test_just_below_the_emergency_drawdown_nothing_trips():
    account = funded_account("100000")
    funded_account("1000000")

    outcome = report(account, "75000.00000001")  # 0.2499999999: not reached

    assert outcome.new_breaches == ()
    assert state_of(account) == "active"
    assert not RiskEvent.objects.exists()


@pytest.mark.django_db
def test_an_accounts_own_emergency_drawdown_override_applies():
    account = funded_account("100000")
    funded_account("1000000")
    RiskLimits.objects.create(instance=account, emergency_drawdown_pct=Decimal("0.10"))

    outcome = report(account, "90000")

    assert [(b.kind, b.limit) for b in outcome.new_breaches] == [("drawdown", Decimal("0.10"))]
    assert state_of(account) == "halted"


@pytest.mark.django_db
def test_a_portfolio_daily_loss_at_the_emergency_limit_halts_the_portfolio_and_sweeps_every_account():
    first, second = funded_account("50000"), funded_account("50000")
    positions = [reserve(first, quantity="0.1"), reserve(second, quantity="0.1")]

    tripped = report(first, "42000")  # portfolio (100000 - 92000) / 100000 = 0.08; the account's drawdown 0.16

    assert [(b.kind, b.account_id, b.value) for b in tripped.new_breaches] == [("daily_loss", None, Decimal("0.08"))]
    assert sorted(tripped.cancelled_position_ids) == sorted(p.pk for p in positions)
    assert (state_of(), state_of(first), state_of(second)) == ("halted", "active", "active")
    assert emergencies("daily_loss") == [("critical", None)]
    assert RiskEvent.objects.filter(severity="critical").count() == 1
    assert list(BreachLatch.objects.values_list("key", flat=True)) == ["portfolio:daily_loss"]
    assert exposures(first)[2:4] == (Decimal(0), 0)

    assert report(second, "50000").new_breaches == ()  # another account's report sees the latched breach
    assert report(first, "41000").new_breaches == ()
    assert emergencies("daily_loss") == [("critical", None)]
    assert portfolio_totals_match()
    assert counter_drift() == []


@pytest.mark.django_db
def test_resume_re_arms_the_threshold_so_a_breach_still_present_trips_again():
    account = funded_account("100000")
    funded_account("1000000")
    report(account, "75000")
    assert state_of(account) == "halted"

    trading_resume(instance_id=account.pk, reason="bot fixed", actor=OperatorFactory(), now=timezone.now())
    assert (state_of(account), BreachLatch.objects.count()) == ("active", 0)

    outcome = report(account, "75000")

    assert [b.kind for b in outcome.new_breaches] == ["drawdown"]
    assert state_of(account) == "halted"
    assert len(emergencies("drawdown")) == 2


def _reported_account(equity: str, *, at) -> TradingInstance:
    """An instance whose equity was reported at `at` (not now): funded_account always reports now."""
    instance = TradingInstanceFactory(equity=Decimal(0), peak_equity=Decimal(0), day_start_equity=Decimal(0))
    UserPermissionFactory(
        user=instance.user, max_position_size=Decimal(10**6), max_daily_loss=Decimal(10**6), max_open_positions=1000
    )
    equity_report(instance_id=instance.pk, equity=Decimal(equity), cash_balance=None, now=at)
    return instance


@pytest.mark.django_db
def test_a_new_utc_day_rolls_every_account_at_once_so_no_loss_hides_behind_yesterdays_gain(redis_client):
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    a = _reported_account("100000", at=yesterday)
    b = _reported_account("100000", at=yesterday)
    equity_report(instance_id=b.pk, equity=Decimal("120000"), cash_balance=None, now=yesterday)  # B gained 20k
    # An override cannot loosen a limit the portfolio shares: the portfolio's 5% still applies to A's checks.
    RiskLimits.objects.create(instance=a, max_daily_loss_pct=Decimal("0.20"))

    equity_report(instance_id=a.pk, equity=Decimal("100000"), cash_balance=None, now=now)  # first event today
    equity_report(instance_id=a.pk, equity=Decimal("88000"), cash_balance=None, now=now)
    outcome = position_check(
        request=CheckInput(
            account_id=a.pk, symbol="BTC-USD", side="long", quantity=Decimal("0.01"), price=Decimal("50000")
        ),
        user_id=a.user_id,
        now=now,
    )

    portfolio = Portfolio.objects.get()
    b.refresh_from_db()
    assert (portfolio.day_start_equity, portfolio.equity, portfolio.day_start_date) == (
        Decimal("220000"),
        Decimal("208000"),
        now.date(),
    )
    assert (b.day_start_equity, b.day_start_date) == (Decimal("120000"), now.date())  # rolled without reporting
    portfolio_reasons = [r for r in outcome.reasons if r["message"].startswith("portfolio daily loss")]
    assert outcome.decision == "rejected"
    assert [(r["code"], r["limit"], r["value"]) for r in portfolio_reasons] == [
        ("daily_loss_limit", "11000.00000000", "12000.00000000")  # 220k start, 208k now: 5.45% >= 5%
    ]


@pytest.mark.django_db
def test_an_account_override_tightens_portfolio_scoped_limits_but_never_loosens_them():
    from risk.selectors import limits_in_force

    account = funded_account("100000")
    RiskLimits.objects.create(
        instance=account,
        max_portfolio_exposure_pct=Decimal("0.95"),  # looser than the default 0.80: ignored
        max_symbol_exposure_pct=Decimal("0.10"),  # stricter than 0.30: applies
        max_total_positions=1000,  # looser than 50: ignored
        max_position_pct=Decimal("0.50"),  # an account-level limit: the override replaces the default
    )

    limits = limits_in_force(instance_id=account.pk).engine

    assert (
        limits.max_portfolio_exposure_pct,
        limits.max_symbol_exposure_pct,
        limits.max_total_positions,
        limits.max_position_pct,
    ) == (Decimal("0.80"), Decimal("0.10"), 50, Decimal("0.50"))
