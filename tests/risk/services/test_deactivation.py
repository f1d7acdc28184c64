"""Deactivating an account or its user (risk.services.activation): its unfilled reservations are cancelled, its
equity leaves the portfolio's totals, and its new checks, equity reports and approvals are refused with
`account_inactive`, while what it holds can still be closed."""

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEntry, TradingInstance
from risk.errors import AccountInactive
from risk.models import Portfolio
from risk.services.activation import trading_instance_activation_set, user_activation_set
from risk.services.approval import position_approve
from risk.services.check import CheckInput, position_check
from risk.services.equity import equity_report
from tests.accounts.factories import OperatorFactory, TradingInstanceFactory
from tests.risk.conftest import counter_drift, deactivate_outside_the_gate, equity_drift, funded_account
from tests.risk.services.scenario import close, exposures, fill, reserve
from trading.models import Position

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark from another test."""


def holding(account: TradingInstance) -> dict[str, Position]:
    """A pending, an approved and a partly filled position (1 of 3 filled): every kind of unfilled reservation."""
    positions = {
        "pending": reserve(account, quantity="0.6"),  # 30000: at or above the approval threshold
        "approved": reserve(account, quantity="0.1"),
        "open": fill(reserve(account, quantity="0.3"), "ex-1", "0.1", "50000"),
    }
    assert [p.status for p in positions.values()] == ["pending_approval", "approved", "open"]
    return positions


def statuses(positions: dict[str, Position]) -> dict[str, tuple[str, bool]]:
    """Each position's status and whether its unfilled rest was released."""
    rows = Position.objects.in_bulk([p.pk for p in positions.values()])
    return {name: (rows[p.pk].status, rows[p.pk].unfilled_released_at is not None) for name, p in positions.items()}


def check_input(account: TradingInstance, **fields) -> CheckInput:
    return CheckInput(
        account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal("0.01"), price=Decimal("50000"), **fields
    )


def test_deactivating_an_account_cancels_its_unfilled_reservations_and_takes_it_out_of_portfolio_equity():
    kept, dropped = funded_account("100000"), funded_account("200000")
    positions = holding(dropped)
    theirs = reserve(kept, quantity="0.1")

    outcome = trading_instance_activation_set(instance_id=dropped.pk, active=False, actor=None, reason="retired")

    assert sorted(outcome.cancelled_position_ids) == sorted(p.pk for p in positions.values())
    assert statuses(positions) == {
        "pending": ("cancelled", True),
        "approved": ("cancelled", True),
        "open": ("open", True),  # the filled 0.1 stays open: it exists at the exchange
    }
    assert exposures(dropped)[:2] == (Decimal("5000"), 1)
    assert Position.objects.get(pk=theirs.pk).status == "approved"
    portfolio = Portfolio.objects.get()
    assert (portfolio.equity, portfolio.day_start_equity) == (Decimal("100000"), Decimal("100000"))
    assert equity_drift() == []
    assert counter_drift() == []


def test_deactivating_a_user_does_the_same_for_every_account_of_the_user_audited_once():
    operator = OperatorFactory()
    first = funded_account("100000")
    second = TradingInstanceFactory(user=first.user, starting_balance=Decimal("50000"), equity=0, peak_equity=0)
    equity_report(instance_id=second.pk, equity=Decimal("50000"), cash_balance=None)
    kept = funded_account("25000")
    positions = {"first": reserve(first, quantity="0.1"), "second": reserve(second, quantity="0.1")}

    outcome = user_activation_set(user_id=first.user_id, active=False, actor=operator, reason="fraud")

    assert sorted(outcome.cancelled_position_ids) == sorted(p.pk for p in positions.values())
    assert {name: status for name, (status, _) in statuses(positions).items()} == {
        "first": "cancelled",
        "second": "cancelled",
    }
    assert Portfolio.objects.get().equity == Decimal("25000")  # only the other user's account counts
    entries = AuditEntry.objects.filter(action="user.update", target_id=str(first.user_id))
    assert [(e.before, e.after, e.reason) for e in entries] == [({"is_active": True}, {"is_active": False}, "fraud")]
    with pytest.raises(AccountInactive):
        position_check(request=check_input(second), user_id=second.user_id)
    assert position_check(request=check_input(kept), user_id=kept.user_id).decision == "approved"
    assert equity_drift() == []
    assert counter_drift() == []


@pytest.mark.parametrize("deactivated", ["account", "user"])
@pytest.mark.parametrize("kind", ["reserving", "dry-run", "reduce-only"])
def test_a_check_of_a_deactivated_account_is_refused_and_writes_nothing(deactivated, kind):
    account = funded_account("100000")
    position = fill(reserve(account, quantity="0.1"), "ex-1", "0.1", "50000")
    if deactivated == "account":
        TradingInstance.objects.filter(pk=account.pk).update(is_active=False)
    else:
        user_activation_set(user_id=account.user_id, active=False, actor=None, reason="fraud")
    fields = {"dry-run": {"dry_run": True}, "reduce-only": {"reduce_only": True, "position_id": position.pk}}
    before = (Position.objects.count(), exposures(account))

    with pytest.raises(AccountInactive):
        position_check(request=check_input(account, **fields.get(kind, {})), user_id=account.user_id)

    assert (Position.objects.count(), exposures(account)) == before


def test_an_equity_report_of_a_deactivated_users_account_is_refused():
    account = funded_account("100000")
    user_activation_set(user_id=account.user_id, active=False, actor=None, reason="fraud")
    before = Portfolio.objects.values().get()

    with pytest.raises(AccountInactive):
        equity_report(instance_id=account.pk, equity=Decimal("1"), cash_balance=None)

    account.refresh_from_db()
    assert (account.equity, Portfolio.objects.values().get()) == (Decimal("100000"), before)


def test_a_pending_position_of_a_deactivated_user_is_never_approved():
    account = funded_account("200000")
    pending = reserve(account, quantity="0.6")
    deactivate_outside_the_gate(account, "user")  # its reservation is still pending: the sweep has not run yet

    with pytest.raises(AccountInactive):
        position_approve(position_id=pending.pk, actor=OperatorFactory(), reason="ok", now=timezone.now())

    pending.refresh_from_db()
    assert pending.status == "pending_approval"
    assert not AuditEntry.objects.filter(action="position.approve").exists()


def test_what_a_deactivated_account_holds_can_still_be_filled_and_closed():
    account = funded_account("100000")
    position = fill(reserve(account, quantity="0.3"), "ex-1", "0.1", "50000")
    deactivate_outside_the_gate(account, "user")

    fill(position, "ex-2", "0.1", "50000")
    trade = close(position, "c-1", "51000")

    position.refresh_from_db()
    assert (trade.quantity, trade.pnl) == (Decimal("0.2"), Decimal("200"))
    # the order's unfilled 0.1 was not released here (a close never releases it): it still holds its share of n
    assert (position.status, position.notional) == ("open", Decimal("5000"))
    assert counter_drift() == []
