"""The kill switch (risk.services.trading_state): halt and reduce-only for the portfolio or one account, the
reservation sweep of a HALT (only in its scope), events and audit, checks while halted, resume."""

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from risk.errors import AccountNotFound
from risk.models import RiskEvent, TradingState
from risk.services.check import CheckInput, position_check
from risk.services.trading_state import trading_halt, trading_resume
from tests.accounts.factories import OperatorFactory
from tests.risk.conftest import counter_drift, funded_account
from tests.risk.services.scenario import exposures, fill, reserve
from trading.models import Position


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark from another test."""


@pytest.fixture
def admin():
    return OperatorFactory(username="riskadmin")


def _book(account, prefix: str) -> dict[str, Position]:
    """One position in every state that matters to a halt (200000 equity: 0.6 x 50000 is pending)."""
    book = {
        "approved": reserve(account, quantity="0.1"),
        "pending": reserve(account, quantity="0.6"),
        "open_rest": reserve(account, quantity="0.3"),
        "open_full": reserve(account, quantity="0.2"),
    }
    fill(book["open_rest"], f"{prefix}-1", "0.1", "50000")
    fill(book["open_full"], f"{prefix}-2", "0.2", "50000")
    assert book["pending"].status == "pending_approval"
    return book


def _statuses(book: dict[str, Position]) -> dict[str, tuple[str, Decimal]]:
    stored = {p.pk: p for p in Position.objects.filter(pk__in=[p.pk for p in book.values()])}
    return {name: (stored[p.pk].status, stored[p.pk].notional) for name, p in book.items()}


UNTOUCHED = {
    "approved": ("approved", Decimal(5000)),
    "pending": ("pending_approval", Decimal(30000)),
    "open_rest": ("open", Decimal(15000)),  # 0.1 filled at 50000 + 0.2/0.3 of 15000
    "open_full": ("open", Decimal(10000)),
}
SWEPT = {
    "approved": ("cancelled", Decimal(5000)),  # the stored n; a cancelled position holds nothing
    "pending": ("cancelled", Decimal(30000)),
    "open_rest": ("open", Decimal(5000)),  # only the unfilled rest released
    "open_full": ("open", Decimal(10000)),
}


def _check(account, *, reduce_only_of: Position | None = None):
    request = CheckInput(
        account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal("0.01"), price=Decimal(50000)
    )
    if reduce_only_of is not None:
        request = CheckInput(
            account_id=account.pk,
            symbol="BTC-USD",
            side="long",
            quantity=Decimal("0.05"),
            price=Decimal(50000),
            reduce_only=True,
            position_id=reduce_only_of.pk,
        )
    return position_check(request=request, user_id=account.user_id, now=timezone.now())


@pytest.mark.django_db
def test_a_portfolio_halt_cancels_every_unfilled_reservation_and_is_recorded(admin):
    first, second = funded_account("200000"), funded_account("200000")
    book_1, book_2 = _book(first, "a"), _book(second, "b")

    change = trading_halt(instance_id=None, mode="halted", reason="exchange outage", actor=admin, now=timezone.now())

    assert (change.state.state, change.previous, change.state.instance_id) == ("halted", "active", None)
    swept = [book[name].pk for book in (book_1, book_2) for name in ("approved", "pending", "open_rest")]
    assert sorted(change.cancelled_position_ids) == sorted(swept)
    assert _statuses(book_1) == SWEPT
    assert _statuses(book_2) == SWEPT
    assert exposures(first) == (Decimal(15000), 2, Decimal(30000), 4, Decimal(30000))
    state = TradingState.objects.get(instance__isnull=True)
    assert (state.state, state.reason, state.changed_by) == ("halted", "exchange outage", admin)
    event = RiskEvent.objects.exclude(type="approval_requested").get()
    assert (event.type, event.severity, event.instance_id) == ("trading_halted", "critical", None)
    assert event.details == {"previous": "active", "state": "halted", "reason": "exchange outage", "actor": "riskadmin"}
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.reason) == (admin, "trading_state.change", "exchange outage")
    assert (entry.before, entry.after) == ({"state": "active"}, {"state": "halted"})
    assert counter_drift() == []


@pytest.mark.django_db
def test_an_account_halt_cancels_only_that_accounts_reservations(admin):
    halted, other = funded_account("200000"), funded_account("200000")
    book_halted, book_other = _book(halted, "a"), _book(other, "b")

    change = trading_halt(
        instance_id=halted.pk, mode="halted", reason="bot misbehaves", actor=admin, now=timezone.now()
    )

    assert (change.state.state, change.state.instance_id) == ("halted", halted.pk)
    assert _statuses(book_halted) == SWEPT
    assert _statuses(book_other) == UNTOUCHED
    assert exposures(halted)[:2] == (Decimal(15000), 2)
    assert exposures(other)[:2] == (Decimal(60000), 4)
    assert TradingState.objects.get(instance__isnull=True).state == "active"
    event = RiskEvent.objects.exclude(type="approval_requested").get()
    assert (event.type, event.severity, event.instance_id) == ("trading_halted", "critical", halted.pk)
    assert AuditEntry.objects.get().target_id == str(change.state.pk)
    assert counter_drift() == []


@pytest.mark.django_db
def test_reducing_keeps_reservations_and_raises_a_warning(admin):
    account = funded_account("200000")
    book = _book(account, "a")

    change = trading_halt(instance_id=account.pk, mode="reducing", reason="wind down", actor=admin, now=timezone.now())

    assert (change.state.state, change.cancelled_position_ids) == ("reducing", ())
    assert _statuses(book) == UNTOUCHED
    event = RiskEvent.objects.exclude(type="approval_requested").get()
    assert (event.type, event.severity) == ("trading_reducing", "warning")
    assert AuditEntry.objects.get().after == {"state": "reducing"}
    assert counter_drift() == []


@pytest.mark.parametrize("scope", ["portfolio", "account"])
@pytest.mark.django_db
def test_checks_are_rejected_while_halted_and_reduce_only_is_rejected_too(admin, scope):
    account = funded_account("200000")
    open_position = fill(reserve(account, quantity="0.1"), "ex-1", "0.1", "50000")
    trading_halt(
        instance_id=None if scope == "portfolio" else account.pk,
        mode="halted",
        reason="",
        actor=admin,
        now=timezone.now(),
    )
    positions = Position.objects.count()

    outcome = _check(account)
    reduce = _check(account, reduce_only_of=open_position)

    assert (outcome.decision, [r["code"] for r in outcome.reasons]) == ("rejected", ["trading_halted"])
    assert outcome.reasons[0]["message"] == f"{scope} trading is halted"
    assert (reduce.decision, [r["code"] for r in reduce.reasons]) == ("rejected", ["trading_halted"])
    assert Position.objects.count() == positions + 1  # the rejected check is recorded, holding nothing
    assert exposures(account)[:2] == (Decimal(5000), 1)
    assert counter_drift() == []


@pytest.mark.parametrize("scope", ["portfolio", "account"])
@pytest.mark.django_db
def test_reducing_rejects_new_exposure_and_passes_reduce_only(admin, scope):
    account = funded_account("200000")
    open_position = fill(reserve(account, quantity="0.1"), "ex-1", "0.1", "50000")
    trading_halt(
        instance_id=None if scope == "portfolio" else account.pk,
        mode="reducing",
        reason="",
        actor=admin,
        now=timezone.now(),
    )
    positions = Position.objects.count()

    outcome = _check(account)
    reduce = _check(account, reduce_only_of=open_position)

    assert (outcome.decision, [r["code"] for r in outcome.reasons]) == ("rejected", ["trading_halted"])
    assert (reduce.decision, reduce.reasons, reduce.notional) == ("approved", (), Decimal(0))
    assert Position.objects.count() == positions + 1  # the reduce-only confirmation writes nothing
    assert exposures(account)[:2] == (Decimal(5000), 1)
    assert counter_drift() == []


@pytest.mark.parametrize("scope", ["portfolio", "account"])
@pytest.mark.django_db
def test_resume_returns_to_active_and_checks_pass_again(admin, scope):
    account = funded_account("200000")
    instance_id = None if scope == "portfolio" else account.pk
    trading_halt(instance_id=instance_id, mode="halted", reason="halt", actor=admin, now=timezone.now())

    change = trading_resume(instance_id=instance_id, reason="all clear", actor=admin, now=timezone.now())

    assert (change.state.state, change.previous) == ("active", "halted")
    assert _check(account).decision == "approved"
    events = list(RiskEvent.objects.order_by("id").values_list("type", "severity"))
    assert events == [("trading_halted", "critical"), ("trading_active", "info")]
    assert list(AuditEntry.objects.order_by("id").values_list("before", "after", "reason")) == [
        ({"state": "active"}, {"state": "halted"}, "halt"),
        ({"state": "halted"}, {"state": "active"}, "all clear"),
    ]
    assert exposures(account)[:2] == (Decimal(500), 1)
    assert counter_drift() == []


@pytest.mark.django_db
def test_halting_an_unknown_account_writes_nothing(admin):
    states, events, audits = TradingState.objects.count(), RiskEvent.objects.count(), AuditEntry.objects.count()

    with pytest.raises(AccountNotFound):
        trading_halt(instance_id=987654321, mode="halted", reason="", actor=admin, now=timezone.now())

    assert (TradingState.objects.count(), RiskEvent.objects.count(), AuditEntry.objects.count()) == (
        states,
        events,
        audits,
    )
