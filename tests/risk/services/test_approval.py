"""The approval workflow (risk.services.approval): approve re-runs every rule without the position's own
reservation and may still reject; reject releases; both audited; anything but a pending position is a 409."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from nija.event_store import stream_key
from nija.events import flush_published
from risk.errors import IllegalTransition
from risk.models import RiskLimits
from risk.services.approval import position_approve, position_reject
from risk.services.equity import equity_report
from risk.services.lifecycle import position_cancel
from risk.services.trading_state import trading_halt
from tests.accounts.factories import OperatorFactory
from tests.risk.conftest import counter_drift, funded_account
from tests.risk.services.scenario import exposures, fill, reserve, snapshot
from trading.market import market_price_set


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark from another test: n is quantity x price unless the test sets one."""


@pytest.fixture
def approver():
    return OperatorFactory(username="alice")


def _pending(equity: str = "200000", quantity: str = "0.6"):
    """A pending position: 0.6 x 50000 = 30000 is under 0.20 x 200000 and at or above the threshold 25000."""
    account = funded_account(equity)
    position = reserve(account, quantity=quantity, price="50000")
    assert position.status == "pending_approval"
    return account, position


@pytest.mark.django_db
def test_a_pending_position_that_still_fits_is_approved_with_a_fresh_reservation_and_audited(approver):
    account, position = _pending()
    now = timezone.now() + timedelta(minutes=5)

    approved = position_approve(position_id=position.pk, actor=approver, reason="desk ok", now=now)

    assert (approved.status, approved.notional, approved.checked_notional) == (
        "approved",
        Decimal("30000.00000000"),
        Decimal("30000.00000000"),
    )
    approved.refresh_from_db()
    assert approved.reservation_expires_at == now + timedelta(seconds=120)  # reservation_ttl from approval
    assert (approved.decided_by, approved.decided_at, approved.decision_reason) == (approver, now, "desk ok")
    assert exposures(account) == (Decimal(30000), 1, Decimal(30000), 1, Decimal(30000))
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.actor_username, entry.action, entry.reason) == (
        approver,
        "alice",
        "position.approve",
        "desk ok",
    )
    assert (entry.target_type, entry.target_id) == ("trading.position", str(position.pk))
    assert entry.before == {"status": "pending_approval", "notional": "30000.00000000", "reasons": []}
    assert entry.after == {"status": "approved", "notional": "30000.00000000", "reasons": []}
    assert counter_drift() == []


@pytest.mark.django_db
def test_approval_re_fixes_the_notional_at_a_higher_fresh_mark(approver):
    account, position = _pending()
    market_price_set(symbol="BTC-USD", price=Decimal("51000"))

    approved = position_approve(position_id=position.pk, actor=approver, reason="", now=timezone.now())

    assert (approved.status, approved.checked_notional, approved.notional) == (
        "approved",
        Decimal("30600.00000000"),
        Decimal("30600.00000000"),
    )
    assert exposures(account) == (Decimal(30600), 1, Decimal(30600), 1, Decimal(30600))
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_position_that_no_longer_fits_is_rejected_with_its_reasons_and_released(approver):
    """Threshold 10000: two pending 15000 BTC positions exactly fill the symbol room (0.30 x 100000); the second is
    approved and filled higher, taking 3000 more; the first then no longer fits."""
    account = funded_account("100000")
    RiskLimits.objects.create(instance=account, approval_threshold=Decimal("10000"))
    first = reserve(account, quantity="0.3", price="50000")
    second = reserve(account, quantity="0.3", price="50000")
    assert (first.status, second.status) == ("pending_approval", "pending_approval")
    position_approve(position_id=second.pk, actor=approver, reason="fits", now=timezone.now())
    fill(second, "ex-1", "0.3", "60000")
    assert exposures(account) == (Decimal(33000), 2, Decimal(33000), 2, Decimal(33000))

    decided = position_approve(position_id=first.pk, actor=approver, reason="try", now=timezone.now())

    assert decided.status == "rejected"
    decided.refresh_from_db()
    assert decided.status == "rejected"
    assert [(r["code"], r["limit"], r["value"]) for r in decided.reasons] == [
        ("symbol_concentration", "30000.00000000", "33000.00000000")
    ]
    assert (decided.decided_by, decided.decision_reason) == (approver, "try")
    assert exposures(account) == (Decimal(18000), 1, Decimal(18000), 1, Decimal(18000))
    entry = AuditEntry.objects.filter(action="position.approve", target_id=str(first.pk)).get()
    assert entry.before["status"] == "pending_approval"
    assert entry.after["status"] == "rejected"
    assert [r["code"] for r in entry.after["reasons"]] == ["symbol_concentration"]
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_position_rejected_at_approval_is_published_with_the_reasons_it_was_rejected_for(
    approver, redis_client, django_capture_on_commit_callbacks
):
    """The dashboard (every figure) and the bot's channel (its own figures) both learn why."""
    account, position = _pending()
    RiskLimits.objects.filter(instance__isnull=True).update(max_position_pct=Decimal("0.10"))  # 20000 < 30000
    redis_client.flushdb()

    with django_capture_on_commit_callbacks(execute=True):
        decided = position_approve(position_id=position.pk, actor=approver, reason="try")
    assert flush_published()

    def published(channel: str) -> dict:
        (event,) = [json.loads(data[b"d"]) for _, data in redis_client.xrange(stream_key(channel))]
        return event

    expected = [{k: v for k, v in reason.items() if k != "scope"} for reason in decided.reasons]
    assert [reason["code"] for reason in expected] == ["max_position_size"]
    for channel in ("dashboard", f"account-{account.pk}"):
        event = published(channel)
        assert (event["status"], event["reasons"]) == ("rejected", expected)


@pytest.mark.django_db
def test_approval_in_a_reducing_account_is_rejected_as_trading_halted(approver):
    account, position = _pending()
    trading_halt(instance_id=account.pk, mode="reducing", reason="wind down", actor=approver, now=timezone.now())

    decided = position_approve(position_id=position.pk, actor=approver, reason="", now=timezone.now())

    assert decided.status == "rejected"
    assert [r["code"] for r in decided.reasons] == ["trading_halted"]
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    assert counter_drift() == []


@pytest.mark.django_db
def test_approval_after_the_approval_window_closed_is_refused(approver):
    account, position = _pending()
    late = position.reservation_expires_at + timedelta(seconds=1)  # not swept yet
    equity_report(instance_id=account.pk, equity=Decimal("200000"), cash_balance=None, now=late)  # fresh equity
    before = snapshot(position)

    with pytest.raises(IllegalTransition):
        position_approve(position_id=position.pk, actor=approver, reason="late", now=late)

    assert snapshot(position) == before
    assert not AuditEntry.objects.exists()
    assert counter_drift() == []


@pytest.mark.django_db
def test_reject_releases_the_reservation_and_is_audited(approver):
    account, position = _pending()
    now = timezone.now()

    rejected = position_reject(position_id=position.pk, actor=approver, reason="too big today", now=now)

    rejected.refresh_from_db()
    assert (rejected.status, rejected.decided_by, rejected.decided_at) == ("rejected", approver, now)
    assert rejected.decision_reason == "too big today"
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.reason) == (approver, "position.reject", "too big today")
    assert entry.before == {"status": "pending_approval", "notional": "30000.00000000", "reasons": []}
    assert entry.after["status"] == "rejected"
    assert counter_drift() == []


def _approved(account, approver):
    return reserve(account, quantity="0.1")


def _rejected(account, approver):
    position = reserve(account, quantity="0.6")
    return position_reject(position_id=position.pk, actor=approver, reason="", now=timezone.now())


def _cancelled(account, approver):
    position = reserve(account, quantity="0.6")
    return position_cancel(position_id=position.pk, instance_id=None, now=timezone.now())


def _open(account, approver):
    position = reserve(account, quantity="0.1")
    return fill(position, "ex-1", "0.1", "50000")


@pytest.mark.parametrize(
    "make", [_approved, _rejected, _cancelled, _open], ids=["approved", "rejected", "cancelled", "open"]
)
@pytest.mark.parametrize("decide", [position_approve, position_reject], ids=["approve", "reject"])
@pytest.mark.django_db
def test_only_a_pending_position_can_be_decided(approver, make, decide):
    account = funded_account("200000")
    position = make(account, approver)
    before, counters, audits = snapshot(position), exposures(account), AuditEntry.objects.count()

    with pytest.raises(IllegalTransition) as refused:
        decide(position_id=position.pk, actor=approver, reason="", now=timezone.now())

    assert refused.value.status_code == 409
    assert snapshot(position) == before
    assert exposures(account) == counters
    assert AuditEntry.objects.count() == audits
    assert counter_drift() == []
