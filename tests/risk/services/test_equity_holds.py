"""Self-reported equity cannot move anyone else's limits (risk.services.equity): an increase beyond
max_equity_increase_pct over the last accepted figure or the day's start (a first report: over the starting
balance) is held until an operator confirms it, decreases apply at once, and deposits and withdrawals are
operator-recorded transfers that move equity, peak and start-of-day equity together."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.models import AuditEntry, TradingInstance
from risk.errors import EquityHoldChanged, IdempotencyConflict, NoEquityHold, TransferExceedsEquity
from risk.models import EquityHold, EquityTransfer, Portfolio, RiskEvent, RiskLimits, TradingState
from risk.services.check import CheckInput, position_check
from risk.services.equity import equity_hold_confirm, equity_report, equity_transfer_record
from risk.services.portfolio_equity import stale_equity_sweep
from tests.accounts.factories import OperatorFactory, TradingInstanceFactory, UserPermissionFactory
from tests.risk.conftest import counter_drift, equity_drift, funded_account

pytestmark = pytest.mark.django_db

DAY = datetime(2031, 3, 4, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark from another test."""


@pytest.fixture
def risk_admin():
    return OperatorFactory(username="riskadmin")


def report(account: TradingInstance, equity: str, *, at: datetime = DAY, cash_balance: str | None = None):
    return equity_report(
        instance_id=account.pk,
        equity=Decimal(equity),
        cash_balance=None if cash_balance is None else Decimal(cash_balance),
        now=at,
    )


def figures(account: TradingInstance) -> tuple[Decimal, Decimal, Decimal]:
    account.refresh_from_db()
    return account.equity, account.peak_equity, account.day_start_equity


def totals() -> tuple[Decimal, Decimal]:
    portfolio = Portfolio.objects.get()
    return portfolio.equity, portfolio.day_start_equity


def holds(account: TradingInstance) -> list[tuple[str, Decimal, int]]:
    return list(EquityHold.objects.filter(instance=account).order_by("pk").values_list("status", "equity", "reports"))


def held_events() -> int:
    return RiskEvent.objects.filter(type="equity_increase_held", severity="warning").count()


def unfunded_account(starting_balance: str) -> TradingInstance:
    """A new account as an operator creates it: no report yet, equity 0, the given starting balance."""
    instance = TradingInstanceFactory(
        starting_balance=Decimal(starting_balance),
        equity=Decimal(0),
        peak_equity=Decimal(0),
        day_start_equity=Decimal(0),
    )
    UserPermissionFactory(
        user=instance.user, max_position_size=Decimal(10**6), max_daily_loss=Decimal(10**6), max_open_positions=100
    )
    return instance


# ---------------------------------------------------------------------------------------------- holds
def test_an_increase_beyond_the_bound_is_held_not_applied_and_still_keeps_the_account_fresh():
    account = funded_account("100000")
    report(account, "100000", at=DAY)

    within = report(account, "150000", at=DAY + timedelta(minutes=1))  # exactly +50 %: applies
    # Within +50 % of the last accepted 150000, but just beyond +50 % of the day's start 100000.
    held = report(account, "150000.00000001", at=DAY + timedelta(minutes=2))

    assert (within.hold, figures(account)) == (None, (Decimal("150000"), Decimal("150000"), Decimal("100000")))
    assert held.hold is not None
    assert (held.hold.equity, held.hold.accepted_equity) == (Decimal("150000.00000001"), Decimal("100000"))
    account.refresh_from_db()
    assert account.equity_reported_at == account.last_heartbeat == DAY + timedelta(minutes=2)
    assert totals() == (Decimal("150000"), Decimal("100000"))
    assert held_events() == 1
    # Fresh as of the held report: still counted after the max age measured from the last applied one.
    stale_equity_sweep(now=DAY + timedelta(minutes=16))
    assert account.__class__.objects.get(pk=account.pk).equity_counted is True
    assert equity_drift() == []


def test_one_bot_reporting_100_times_its_equity_cannot_widen_anyone_elses_limits():
    reporter, other = funded_account("40000"), funded_account("100000")
    report(reporter, "40000")
    report(other, "100000")
    RiskLimits.objects.filter(instance__isnull=True).update(max_symbol_exposure_pct=Decimal("0.10"))

    outcome = report(reporter, "4000000", at=DAY + timedelta(minutes=1))
    check = position_check(
        request=CheckInput(
            account_id=other.pk, symbol="BTC-USD", side="long", quantity=Decimal("15000"), price=Decimal(1)
        ),
        user_id=other.user_id,
        now=DAY + timedelta(minutes=2),
    )

    assert outcome.hold is not None
    assert totals() == (Decimal("140000"), Decimal("140000"))
    # 0.10 x 140000 = 14000 < 15000; had the report applied, 0.10 x 4.1M would have let it through.
    assert [reason["code"] for reason in check.reasons] == ["symbol_concentration"]


def test_reporting_a_huge_first_figure_of_a_day_then_0_does_not_halt_the_portfolio():
    reporter = funded_account("100000")
    others = [funded_account("1000000"), funded_account("1000000")]
    for account in (reporter, *others):
        report(account, str(figures(account)[0]), at=DAY)
    next_day = DAY + timedelta(days=1)
    for account in others:
        report(account, "1000000", at=next_day)

    report(reporter, "9999999999", at=next_day + timedelta(seconds=1))  # the day's first figure: held
    outcome = report(reporter, "0", at=next_day + timedelta(seconds=2))  # a decrease: applies at once

    # Its own drawdown (its peak 100000, now 0) halts its account; the portfolio's day started at the day's first
    # accepted figures (0 is the reporter's), never at the held one, so the portfolio shows no loss.
    assert [(breach.kind, breach.account_id) for breach in outcome.new_breaches] == [("drawdown", reporter.pk)]
    assert dict(TradingState.objects.values_list("instance_id", "state")) == {None: "active", reporter.pk: "halted"}
    assert totals() == (Decimal("2000000"), Decimal("2000000"))
    assert holds(reporter) == [("superseded", Decimal("9999999999"), 1)]
    assert equity_drift() == []


def test_reports_each_within_the_bound_cannot_compound_past_it_within_a_day(risk_admin):
    """+50 % a report, eight reports a second, would take 100,000 to 2.56 million before anyone looks: within a
    UTC day a report is also measured against the day's start (raised by a figure an operator confirmed today)."""
    account = funded_account("100000")
    report(account, "100000")

    steps = [report(account, equity, at=DAY + timedelta(minutes=minute)) for minute, equity in
             enumerate(("150000", "225000", "337500"), start=1)]  # fmt: skip

    assert [step.hold is None for step in steps] == [True, False, False]
    assert figures(account) == (Decimal("150000"), Decimal("150000"), Decimal("100000"))
    assert holds(account) == [("open", Decimal("337500"), 2)]
    assert EquityHold.objects.get().accepted_equity == Decimal("100000")  # what the increase was measured against
    assert totals() == (Decimal("150000"), Decimal("100000"))
    # An operator vouches for 337,500: today's reports are measured against it from now on.
    equity_hold_confirm(instance_id=account.pk, actor=risk_admin, reason="statement", expected_equity=Decimal(337500))
    assert report(account, "400000", at=DAY + timedelta(minutes=5)).hold is None
    assert report(account, "506250.00000001", at=DAY + timedelta(minutes=6)).hold is not None  # > 1.5 x 337,500
    # The next day starts at the last accepted figure: its reports are measured against that.
    assert report(account, "600000", at=DAY + timedelta(days=1)).hold is None
    assert figures(account) == (Decimal("600000"), Decimal("600000"), Decimal("600000"))
    assert equity_drift() == []


def test_a_first_report_is_measured_against_the_starting_balance():
    unset, set_ = unfunded_account("0"), unfunded_account("80000")

    first_unset = report(unset, "100000")
    first_set = report(set_, "100000")  # within +50 % of 80000

    assert first_unset.hold is not None
    assert first_unset.hold.accepted_equity == Decimal(0)
    assert first_set.hold is None
    assert figures(unset) == (Decimal(0), Decimal(0), Decimal(0))
    assert figures(set_) == (Decimal("100000"), Decimal("100000"), Decimal("100000"))
    assert totals() == (Decimal("100000"), Decimal("100000"))

    TradingInstance.objects.filter(pk=unset.pk).update(starting_balance=Decimal("100000"))  # its operator sets it
    report(unset, "100000", at=DAY + timedelta(seconds=1))

    assert figures(unset) == (Decimal("100000"), Decimal("100000"), Decimal("100000"))
    assert holds(unset) == [("superseded", Decimal("100000"), 1)]
    assert equity_drift() == []


def test_later_held_reports_replace_the_figure_of_the_one_open_hold_and_raise_no_new_event():
    account = funded_account("100000")
    report(account, "100000")

    for minute, equity in enumerate(("300000", "250000", "400000"), start=1):
        report(account, equity, at=DAY + timedelta(minutes=minute), cash_balance=str(minute))

    assert holds(account) == [("open", Decimal("400000"), 3)]
    assert EquityHold.objects.get().cash_balance == Decimal(3)
    assert held_events() == 1
    assert figures(account) == (Decimal("100000"), Decimal("100000"), Decimal("100000"))


def test_a_decrease_applies_at_once_and_supersedes_the_open_hold():
    account = funded_account("100000")
    report(account, "100000")
    report(account, "900000", at=DAY + timedelta(minutes=1))

    report(account, "95000", at=DAY + timedelta(minutes=2))

    assert figures(account) == (Decimal("95000"), Decimal("100000"), Decimal("100000"))
    assert holds(account) == [("superseded", Decimal("900000"), 1)]
    report(account, "900000", at=DAY + timedelta(minutes=3))  # a new hold, a new event
    assert [status for status, _, _ in holds(account)] == ["superseded", "open"]
    assert held_events() == 2


# ---------------------------------------------------------------------------------------------- confirmation
def test_confirming_applies_the_latest_held_figure_moves_the_portfolio_and_is_audited(risk_admin):
    account = funded_account("100000")
    report(account, "100000")
    report(account, "300000", at=DAY + timedelta(minutes=1), cash_balance="1000")
    report(account, "310000", at=DAY + timedelta(minutes=2), cash_balance="2000")

    with pytest.raises(EquityHoldChanged):
        equity_hold_confirm(instance_id=account.pk, actor=risk_admin, reason="seen", expected_equity=Decimal(300000))
    hold = equity_hold_confirm(
        instance_id=account.pk, actor=risk_admin, reason="exchange statement checked", expected_equity=Decimal(310000)
    )

    assert (hold.status, hold.resolved_by, hold.resolution_reason) == (
        "confirmed",
        risk_admin,
        "exchange statement checked",
    )
    account.refresh_from_db()
    assert (account.equity, account.peak_equity, account.day_start_equity, account.cash_balance) == (
        Decimal("310000"),
        Decimal("310000"),
        Decimal("100000"),  # a confirmed gain is the day's P&L
        Decimal("2000"),
    )
    assert totals() == (Decimal("310000"), Decimal("100000"))
    entry = AuditEntry.objects.get(action="equity_hold.confirm")
    assert (entry.actor, entry.reason, entry.before["equity"], entry.after["equity"]) == (
        risk_admin,
        "exchange statement checked",
        "100000.00000000",
        "310000.00000000",
    )
    with pytest.raises(NoEquityHold):
        equity_hold_confirm(instance_id=account.pk, actor=risk_admin, reason="again", expected_equity=Decimal(310000))
    assert equity_drift() == []


def test_confirming_a_first_figure_starts_the_accounts_day_and_peak_at_it(risk_admin):
    account = unfunded_account("0")
    report(account, "250000")

    equity_hold_confirm(
        instance_id=account.pk, actor=risk_admin, reason="funded at the exchange", expected_equity=Decimal(250000)
    )

    assert figures(account) == (Decimal("250000"), Decimal("250000"), Decimal("250000"))
    assert totals() == (Decimal("250000"), Decimal("250000"))
    assert equity_drift() == []


# ---------------------------------------------------------------------------------------------- transfers
def test_a_deposit_moves_equity_peak_and_day_start_together_so_the_next_report_applies(risk_admin):
    account, other = funded_account("100000"), funded_account("50000")
    report(account, "100000")
    report(other, "50000")
    report(account, "95000", at=DAY + timedelta(minutes=1))  # a 5000 loss today

    outcome = equity_transfer_record(
        instance_id=account.pk, amount=Decimal("200000"), reference="dep-1", reason="deposit", actor=risk_admin
    )
    after = report(account, "295000", at=DAY + timedelta(minutes=2))

    assert outcome.created is True
    assert after.hold is None
    assert figures(account) == (Decimal("295000"), Decimal("300000"), Decimal("300000"))  # still 5000 down today
    assert totals() == (Decimal("345000"), Decimal("350000"))
    transfer = EquityTransfer.objects.get()
    assert (transfer.equity_before, transfer.equity_after, transfer.recorded_by) == (
        Decimal("95000"),
        Decimal("295000"),
        risk_admin,
    )
    assert AuditEntry.objects.get(action="equity_transfer.record").after["amount"] == "200000"
    assert equity_drift() == []


def test_a_withdrawal_recorded_first_never_trips_the_loss_limits(risk_admin):
    account, other = funded_account("100000"), funded_account("100000")
    report(account, "100000")
    report(other, "100000")

    equity_transfer_record(
        instance_id=account.pk, amount=Decimal("-60000"), reference="wd-1", reason="payout", actor=risk_admin
    )
    outcome = report(account, "40000", at=DAY + timedelta(minutes=1))

    assert outcome.new_breaches == ()
    assert set(TradingState.objects.values_list("state", flat=True)) == {"active"}
    assert figures(account) == (Decimal("40000"), Decimal("40000"), Decimal("40000"))
    assert totals() == (Decimal("140000"), Decimal("140000"))
    assert counter_drift() == []


def test_a_transfer_is_idempotent_by_reference_and_refuses_what_cannot_be(risk_admin):
    account = funded_account("100000")
    record = {"instance_id": account.pk, "reference": "dep-7", "reason": "deposit", "actor": risk_admin}
    first = equity_transfer_record(amount=Decimal("1000"), **record)
    before = (figures(account), totals(), AuditEntry.objects.count())

    again = equity_transfer_record(amount=Decimal("1000"), **record)
    with pytest.raises(IdempotencyConflict):
        equity_transfer_record(amount=Decimal("2000"), **record)
    with pytest.raises(TransferExceedsEquity):
        equity_transfer_record(amount=Decimal("-101000.00000001"), **(record | {"reference": "wd-9"}))

    assert (again.created, again.transfer.pk) == (False, first.transfer.pk)
    assert (figures(account), totals(), AuditEntry.objects.count()) == before
    assert EquityTransfer.objects.count() == 1


def test_a_withdrawal_beyond_the_days_start_leaves_the_start_at_zero(risk_admin):
    account = funded_account("100000")
    report(account, "100000")
    report(account, "140000", at=DAY + timedelta(minutes=1))

    equity_transfer_record(
        instance_id=account.pk, amount=Decimal("-120000"), reference="wd-2", reason="payout", actor=risk_admin
    )

    assert figures(account) == (Decimal("20000"), Decimal("20000"), Decimal("0"))
    assert totals() == (Decimal("20000"), Decimal("0"))
    assert equity_drift() == []


def test_a_first_report_after_a_deposit_recorded_on_a_new_account_applies(risk_admin):
    account = unfunded_account("0")
    equity_transfer_record(
        instance_id=account.pk, amount=Decimal("100000"), reference="dep-0", reason="funding", actor=risk_admin
    )

    outcome = report(account, "101000")

    assert outcome.hold is None
    assert figures(account) == (Decimal("101000"), Decimal("101000"), Decimal("101000"))
    assert totals() == (Decimal("101000"), Decimal("101000"))
    assert equity_drift() == []
