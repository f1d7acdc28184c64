"""Portfolio equity counts only fresh reports (risk.services.portfolio_equity): the account sweep takes a silent
account out of the portfolio's equity and day start once its report passes its own equity_max_age, its next
report puts it back with its own day start, and (re)activation follows the same rule. Times are explicit (a fixed
UTC day), so no test depends on when it runs."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.models import TradingInstance
from risk.models import Portfolio, RiskLimits
from risk.services.activation import trading_instance_activation_set
from risk.services.check import CheckInput, position_check
from risk.services.equity import equity_report
from risk.services.portfolio_equity import stale_equity_sweep
from risk.tasks import sweep_accounts
from tests.risk.conftest import counter_drift, deactivate_outside_the_gate, equity_drift, funded_account
from tests.risk.services.scenario import reserve
from trading.models import Position

pytestmark = pytest.mark.django_db

DAY = datetime(2031, 3, 4, 10, 0, tzinfo=UTC)  # every report and check below happens on this UTC day
MAX_AGE = timedelta(minutes=15)  # the default equity_max_age


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark from another test."""


def report(account: TradingInstance, equity: str, *, at: datetime):
    return equity_report(instance_id=account.pk, equity=Decimal(equity), cash_balance=None, now=at)


def totals() -> tuple[Decimal, Decimal]:
    portfolio = Portfolio.objects.get()
    return portfolio.equity, portfolio.day_start_equity


def counted(account: TradingInstance) -> bool:
    account.refresh_from_db()
    return account.equity_counted


def btc_check(account: TradingInstance, notional: str, *, at: datetime) -> list[str]:
    """A check of `notional` in BTC-USD at 1 per unit; the codes of the rules that reject it ([] if approved)."""
    outcome = position_check(
        request=CheckInput(
            account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal(notional), price=Decimal(1)
        ),
        user_id=account.user_id,
        now=at,
    )
    return [reason["code"] for reason in outcome.reasons]


def test_a_silent_account_leaves_portfolio_equity_once_its_report_passes_its_max_age():
    fresh, silent = funded_account("100000"), funded_account("500000")
    report(fresh, "100000", at=DAY)
    report(silent, "500000", at=DAY)
    assert btc_check(fresh, "15000", at=DAY) == []
    late = DAY + MAX_AGE + timedelta(microseconds=1)
    report(fresh, "100000", at=late)

    assert stale_equity_sweep(now=DAY + MAX_AGE).account_ids == ()  # exactly max_age old: still fresh
    swept = stale_equity_sweep(now=late)

    assert swept.account_ids == (silent.pk,)
    assert totals() == (Decimal("100000"), Decimal("100000"))
    assert (counted(silent), counted(fresh)) == (False, True)
    # E is now 100000: 15000 + 16000 in BTC passes 0.30 x E (it would pass 0.30 x 600000 easily).
    assert btc_check(fresh, "16000", at=late) == ["symbol_concentration"]
    assert stale_equity_sweep(now=late).account_ids == ()  # idempotent
    assert equity_drift() == []
    assert counter_drift() == []


def test_its_next_report_puts_it_back_with_its_own_day_start_unchanged():
    fresh, silent = funded_account("100000"), funded_account("500000")
    report(fresh, "100000", at=DAY)
    report(silent, "500000", at=DAY)  # its first report of the day: it starts the day at 500000
    report(silent, "490000", at=DAY + timedelta(minutes=1))
    late = DAY + timedelta(hours=2)
    report(fresh, "100000", at=late)
    stale_equity_sweep(now=late)
    assert totals() == (Decimal("100000"), Decimal("100000"))

    report(silent, "480000", at=late + timedelta(seconds=1))

    silent.refresh_from_db()
    assert (silent.equity, silent.day_start_equity, silent.equity_counted) == (
        Decimal("480000"),
        Decimal("500000"),  # not 480000: going quiet does not shed the day's loss
        True,
    )
    assert totals() == (Decimal("580000"), Decimal("600000"))
    assert equity_drift() == []


def test_an_accounts_own_equity_max_age_decides_when_it_leaves():
    short, long_ = funded_account("100000"), funded_account("200000")
    RiskLimits.objects.create(instance=short, equity_max_age_seconds=60)
    RiskLimits.objects.create(instance=long_, equity_max_age_seconds=3600)
    report(short, "100000", at=DAY)
    report(long_, "200000", at=DAY)

    after_a_minute = stale_equity_sweep(now=DAY + timedelta(seconds=61))
    after_half_an_hour = stale_equity_sweep(now=DAY + timedelta(minutes=30))
    after_an_hour = stale_equity_sweep(now=DAY + timedelta(seconds=3601))

    assert (after_a_minute.account_ids, after_half_an_hour.account_ids, after_an_hour.account_ids) == (
        (short.pk,),
        (),  # past the default 15 minutes, within its own hour
        (long_.pk,),
    )
    assert totals() == (Decimal(0), Decimal(0))
    assert equity_drift() == []


def test_the_sweep_task_takes_out_accounts_of_a_user_deactivated_outside_the_risk_gate_and_releases_them():
    """A user deactivated by a path that knows nothing of the risk gate (a shell, a raw UPDATE): the
    periodic sweep takes its accounts out of E and releases what they reserve."""
    kept = funded_account("100000")
    dropped = funded_account("300000")
    reserved = reserve(dropped, quantity="0.1")
    deactivate_outside_the_gate(dropped, "user")
    assert equity_drift() == [f"account {dropped.pk}: counted but inactive"]

    assert sweep_accounts() == 2  # one account out of E, one reservation released
    assert sweep_accounts() == 0

    assert totals() == (Decimal("100000"), Decimal("100000"))
    assert Position.objects.get(pk=reserved.pk).status == "cancelled"
    assert (counted(dropped), counted(kept)) == (False, True)
    assert equity_drift() == []
    assert counter_drift() == []


def test_reactivating_an_account_whose_report_went_stale_leaves_it_out_until_it_reports():
    kept, paused = funded_account("100000"), funded_account("50000")
    report(kept, "100000", at=DAY)
    report(paused, "50000", at=DAY)
    trading_instance_activation_set(instance_id=paused.pk, active=False, actor=None, reason="pause", now=DAY)
    assert totals() == (Decimal("100000"), Decimal("100000"))

    late = DAY + timedelta(hours=1)
    trading_instance_activation_set(instance_id=paused.pk, active=True, actor=None, reason="back", now=late)
    assert (counted(paused), totals()) == (False, (Decimal("100000"), Decimal("100000")))

    report(paused, "45000", at=late)
    assert (counted(paused), totals()) == (True, (Decimal("145000"), Decimal("150000")))
    assert equity_drift() == []


def test_reactivating_an_account_whose_report_is_fresh_counts_it_at_once_with_its_own_day_start():
    kept, paused = funded_account("100000"), funded_account("50000")
    report(kept, "100000", at=DAY)
    report(paused, "50000", at=DAY)
    report(paused, "46000", at=DAY + timedelta(minutes=1))
    trading_instance_activation_set(instance_id=paused.pk, active=False, actor=None, reason="pause", now=DAY)

    trading_instance_activation_set(
        instance_id=paused.pk, active=True, actor=None, reason="back", now=DAY + timedelta(minutes=5)
    )

    assert (counted(paused), totals()) == (True, (Decimal("146000"), Decimal("150000")))
    assert equity_drift() == []
