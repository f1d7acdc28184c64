"""Fill, close, cancel and expiry after the check (risk.services.lifecycle): exact Decimals, counters equal to the
sum over positions after every scenario, idempotent replays, and 409s that write nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from risk.errors import IdempotencyConflict, IllegalTransition, QuantityExceeded
from risk.services.lifecycle import position_cancel, reservations_expire
from risk.services.trading_state import trading_halt
from tests.risk.conftest import counter_drift, funded_account
from tests.risk.services.scenario import close, exposures, fill, reserve, snapshot
from trading.models import DailyStatistic, Fill, Position, Trade


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark from another test: n is quantity x price."""


@pytest.fixture
def account():
    return funded_account("100000")


# ---------------------------------------------------------------------------------------------- fill
@pytest.mark.django_db
def test_partial_fills_add_up_at_the_volume_weighted_entry_and_re_fix_the_notional(account):
    position = reserve(account, quantity="0.3", price="50000")
    assert (position.status, position.notional) == ("approved", Decimal("15000.00000000"))

    fill(position, "ex-1", "0.1", "49000", fees="1.5")
    position.refresh_from_db()
    # 0.1 x 49000 filled + the unfilled 0.2 of 0.3 keeps its share of the checked 15000.
    assert (position.status, position.filled_quantity, position.entry_price) == ("open", Decimal("0.1"), Decimal(49000))
    assert position.notional == Decimal("14900.00000000")
    assert position.opened_at is not None
    assert exposures(account) == (Decimal("14900"), 1, Decimal("14900"), 1, Decimal("14900"))

    fill(position, "ex-2", "0.15", "51000.12345678", fees="2.25")
    position.refresh_from_db()
    # VWAP (0.1 x 49000 + 0.15 x 51000.12345678) / 0.25 = 50200.074074068 -> half-even 50200.07407407;
    # 0.25 x 50200.07407407 = 12550.0185185175 rounded up, plus 0.05/0.3 of 15000.
    assert position.entry_price == Decimal("50200.07407407")
    assert position.notional == Decimal("12550.01851852") + Decimal("2500")
    assert position.fees == Decimal("3.75")
    assert exposures(account)[0] == Decimal("15050.01851852")

    fill(position, "ex-3", "0.05", "50000")
    position.refresh_from_db()
    # (12550.0185185175 + 2500) / 0.3 = 50166.728395058333.. -> 50166.72839506; x 0.3 = 15050.018518518 -> up.
    assert (position.filled_quantity, position.entry_price) == (Decimal("0.3"), Decimal("50166.72839506"))
    assert position.notional == Decimal("15050.01851852")
    assert exposures(account) == (position.notional, 1, position.notional, 1, position.notional)
    assert list(Fill.objects.filter(position=position).order_by("pk").values_list("exchange_order_id", "quantity")) == [
        ("ex-1", Decimal("0.1")),
        ("ex-2", Decimal("0.15")),
        ("ex-3", Decimal("0.05")),
    ]
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_fill_above_the_checked_price_raises_the_held_notional(account):
    position = reserve(account, quantity="0.2", price="50000")

    fill(position, "ex-1", "0.2", "50500.5")

    position.refresh_from_db()
    assert position.notional == Decimal("10100.10000000")
    assert exposures(account) == (Decimal("10100.1"), 1, Decimal("10100.1"), 1, Decimal("10100.1"))
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_replayed_fill_changes_nothing(account):
    position = reserve(account)
    fill(position, "ex-1", "0.1", "49000", fees="1")
    before, counters = snapshot(position), exposures(account)

    replayed = fill(position, "ex-1", "0.1", "49000", fees="1")

    assert replayed.pk == position.pk
    assert snapshot(position) == before
    assert exposures(account) == counters
    assert Fill.objects.count() == 1
    assert counter_drift() == []


@pytest.mark.parametrize(
    ("quantity", "price", "fees"),
    [("0.2", "49000", "1"), ("0.1", "49000.5", "1"), ("0.1", "49000", "0")],
    ids=["quantity", "price", "fees"],
)
@pytest.mark.django_db
def test_the_same_exchange_order_id_with_a_different_fill_is_a_conflict(account, quantity, price, fees):
    position = reserve(account)
    fill(position, "ex-1", "0.1", "49000", fees="1")
    before, counters = snapshot(position), exposures(account)

    with pytest.raises(IdempotencyConflict):
        fill(position, "ex-1", quantity, price, fees=fees)

    assert snapshot(position) == before
    assert exposures(account) == counters
    assert Fill.objects.count() == 1
    assert counter_drift() == []


@pytest.mark.django_db
def test_an_exchange_order_id_already_used_on_another_position_is_a_conflict(account):
    first, second = reserve(account, quantity="0.1"), reserve(account, quantity="0.1")
    fill(first, "ex-1", "0.1", "50000")
    before = snapshot(second)

    with pytest.raises(IdempotencyConflict):
        fill(second, "ex-1", "0.1", "50000")

    assert snapshot(second) == before
    assert Fill.objects.count() == 1
    assert counter_drift() == []


@pytest.mark.django_db
def test_an_over_fill_is_refused_and_writes_nothing(account):
    position = reserve(account, quantity="0.3")
    fill(position, "ex-1", "0.25", "50000")
    before, counters = snapshot(position), exposures(account)

    with pytest.raises(QuantityExceeded) as refused:
        fill(position, "ex-2", "0.05000001", "50000")

    assert refused.value.get_codes() == "quantity_exceeded"
    assert snapshot(position) == before
    assert exposures(account) == counters
    assert Fill.objects.count() == 1
    assert counter_drift() == []


def _cancelled(account):
    position = reserve(account)
    return position_cancel(position_id=position.pk, instance_id=account.pk, now=timezone.now())


def _expired(account):
    position = reserve(account)
    reservations_expire(now=timezone.now() + timedelta(seconds=121))
    return position


def _rejected(account):
    return reserve(account, quantity="1", price="50000")  # 50000 > max_position_pct 0.20 x 100000


def _closed(account):
    position = reserve(account)
    fill(position, "ex-open", "0.3", "50000")
    close(position, "close-all", "50000")
    return position


@pytest.mark.parametrize(
    ("make", "status"),
    [(_cancelled, "cancelled"), (_expired, "expired"), (_rejected, "rejected"), (_closed, "closed")],
    ids=["cancelled", "expired", "rejected", "closed"],
)
@pytest.mark.django_db
def test_a_position_whose_reservation_is_gone_cannot_be_filled(account, make, status):
    position = make(account)
    position.refresh_from_db()
    assert position.status == status
    before, counters, fills = snapshot(position), exposures(account), Fill.objects.count()

    with pytest.raises(IllegalTransition) as refused:
        fill(position, "ex-late", "0.1", "50000")

    assert refused.value.get_codes() == "illegal_transition"
    assert snapshot(position) == before
    assert exposures(account) == counters
    assert Fill.objects.count() == fills
    assert counter_drift() == []


@pytest.mark.django_db
def test_an_open_position_whose_unfilled_rest_was_released_cannot_be_filled_further(account):
    position = reserve(account, quantity="0.3")
    fill(position, "ex-1", "0.1", "50000")
    position_cancel(position_id=position.pk, instance_id=account.pk, now=timezone.now())

    with pytest.raises(IllegalTransition):
        fill(position, "ex-2", "0.1", "50000")

    position.refresh_from_db()
    assert (position.status, position.filled_quantity, position.notional) == ("open", Decimal("0.1"), Decimal(5000))
    assert counter_drift() == []


# ---------------------------------------------------------------------------------------------- close
@pytest.mark.django_db
def test_a_partial_then_a_final_close_write_trades_with_their_pnl_and_the_days_statistics(account):
    position = reserve(account, quantity="0.3", price="50000")
    fill(position, "ex-1", "0.3", "50000", fees="3")
    now = timezone.now()

    first = close(position, "c-1", "52000", quantity="0.1", fees="2", now=now)

    # (52000 - 50000) x 0.1 - 2
    assert (first.quantity, first.entry_price, first.exit_price, first.pnl, first.fees) == (
        Decimal("0.1"),
        Decimal("50000"),
        Decimal("52000"),
        Decimal("198"),
        Decimal("2"),
    )
    position.refresh_from_db()
    assert (position.status, position.closed_quantity, position.realized_pnl) == ("open", Decimal("0.1"), Decimal(198))
    assert position.notional == Decimal("10000")  # 0.2 open x 50000
    assert exposures(account) == (Decimal("10000"), 1, Decimal("10000"), 1, Decimal("10000"))
    assert counter_drift() == []

    last = close(position, "c-2", "49000", fees="1", now=now)  # everything still open: 0.2

    assert (last.quantity, last.pnl) == (Decimal("0.2"), Decimal("-201"))  # -1000 x 0.2 - 1
    position.refresh_from_db()
    assert (position.status, position.closed_quantity, position.closed_at) == ("closed", Decimal("0.3"), now)
    assert position.realized_pnl == Decimal("-3")
    assert position.exit_price == Decimal("50000")  # (0.1 x 52000 + 0.2 x 49000) / 0.3
    assert position.fees == Decimal("6")  # 3 on the fill, 2 + 1 on the closes
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    day = DailyStatistic.objects.get(instance=account, date=now.date())
    assert (day.trades, day.wins, day.losses) == (2, 1, 1)
    assert (day.realized_pnl, day.gross_profit, day.gross_loss) == (Decimal("-3"), Decimal("198"), Decimal("201"))
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_short_gains_when_the_price_falls(account):
    position = reserve(account, side="short", quantity="0.2", price="50000")
    fill(position, "ex-1", "0.2", "50000")

    trade = close(position, "c-1", "48000", fees="0.5")

    assert trade.pnl == Decimal("399.5")  # (50000 - 48000) x 0.2 - 0.5
    position.refresh_from_db()
    assert (position.status, position.realized_pnl) == ("closed", Decimal("399.5"))
    assert counter_drift() == []


@pytest.mark.django_db
def test_the_pnl_of_a_close_is_on_the_money_grid_and_the_totals_are_its_sum(account):
    """(exit - entry) x quantity has up to 16 decimals: the trade, the position and the day agree on the 8-decimal
    value, and the answer to the close is the one a replay gets."""
    position = reserve(account, quantity="0.12345678", price="50000")
    fill(position, "ex-1", "0.12345678", "50000.5")

    first = close(position, "c-1", "50001.23456789", quantity="0.02345678")
    second = close(position, "c-2", "50001.23456789")

    # 0.73456789 x 0.02345678 = 0.0172305973907942; 0.73456789 x 0.1 = 0.073456789: half-even to 8 decimals.
    assert first.pnl == Decimal("0.01723060")
    assert second.pnl == Decimal("0.07345679")
    assert Trade.objects.get(pk=first.pk).pnl == first.pnl
    assert close(position, "c-1", "50001.23456789", quantity="0.02345678").pnl == first.pnl
    position.refresh_from_db()
    assert position.realized_pnl == first.pnl + second.pnl
    day = DailyStatistic.objects.get(instance=account)
    assert (day.realized_pnl, day.gross_profit, day.wins) == (first.pnl + second.pnl, first.pnl + second.pnl, 2)
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_replayed_close_returns_the_same_trade_and_changes_nothing(account):
    position = reserve(account)
    fill(position, "ex-1", "0.3", "50000")
    trade = close(position, "c-1", "51000", quantity="0.1", fees="1")
    before, counters = snapshot(position), exposures(account)
    day = DailyStatistic.objects.values().get(instance=account)

    replayed = close(position, "c-1", "51000", quantity="0.1", fees="1")

    assert (replayed.pk, replayed.pnl) == (trade.pk, Decimal("99"))
    assert Trade.objects.count() == 1
    assert snapshot(position) == before
    assert exposures(account) == counters
    assert DailyStatistic.objects.values().get(instance=account) == day
    assert counter_drift() == []


@pytest.mark.parametrize(
    ("exit_price", "quantity", "fees"),
    [("51000.5", "0.1", "1"), ("51000", "0.2", "1"), ("51000", "0.1", "2")],
    ids=["exit_price", "quantity", "fees"],
)
@pytest.mark.django_db
def test_the_same_client_close_id_with_a_different_close_is_a_conflict(account, exit_price, quantity, fees):
    position = reserve(account)
    fill(position, "ex-1", "0.3", "50000")
    close(position, "c-1", "51000", quantity="0.1", fees="1")
    before, counters = snapshot(position), exposures(account)

    with pytest.raises(IdempotencyConflict):
        close(position, "c-1", exit_price, quantity=quantity, fees=fees)

    assert snapshot(position) == before
    assert exposures(account) == counters
    assert Trade.objects.count() == 1
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_close_is_accepted_while_the_account_and_the_portfolio_are_halted(account):
    position = reserve(account)
    fill(position, "ex-1", "0.3", "50000")
    now = timezone.now()
    trading_halt(instance_id=None, mode="halted", reason="desk halt", actor=None, now=now)
    trading_halt(instance_id=account.pk, mode="halted", reason="account halt", actor=None, now=now)

    trade = close(position, "c-1", "50500")

    assert trade.pnl == Decimal("150")
    position.refresh_from_db()
    assert position.status == "closed"
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    assert counter_drift() == []


@pytest.mark.parametrize(
    "make", [_cancelled, _expired, _rejected, reserve], ids=["cancelled", "expired", "rejected", "approved-unfilled"]
)
@pytest.mark.django_db
def test_a_position_with_nothing_open_cannot_be_closed(account, make):
    position = make(account)
    before, counters = snapshot(position), exposures(account)

    with pytest.raises(IllegalTransition):
        close(position, "c-1", "50000")

    assert snapshot(position) == before
    assert exposures(account) == counters
    assert (Trade.objects.count(), DailyStatistic.objects.filter(trades__gt=0).count()) == (0, 0)
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_closed_position_cannot_be_closed_again_under_a_new_id(account):
    position = _closed(account)

    with pytest.raises(IllegalTransition):
        close(position, "c-again", "50000")

    assert Trade.objects.count() == 1
    assert counter_drift() == []


@pytest.mark.django_db
def test_closing_more_than_is_open_is_refused(account):
    position = reserve(account, quantity="0.3")
    fill(position, "ex-1", "0.2", "50000")
    close(position, "c-1", "50000", quantity="0.1")
    before, counters = snapshot(position), exposures(account)

    with pytest.raises(QuantityExceeded):
        close(position, "c-2", "50000", quantity="0.10000001")

    assert snapshot(position) == before
    assert exposures(account) == counters
    assert Trade.objects.count() == 1
    assert counter_drift() == []


@pytest.mark.django_db
def test_closing_everything_filled_releases_the_unfilled_rest(account):
    position = reserve(account, quantity="0.3", price="50000")
    fill(position, "ex-1", "0.1", "50000")
    assert exposures(account)[0] == Decimal("15000")  # 5000 filled + 10000 still reserved

    close(position, "c-1", "50000")

    position.refresh_from_db()
    assert (position.status, position.notional) == ("closed", Decimal("15000"))  # the stored n; it holds nothing
    assert position.unfilled_released_at is not None
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    assert counter_drift() == []


# ---------------------------------------------------------------------------------------------- cancel
@pytest.mark.django_db
def test_cancelling_an_approved_reservation_releases_it(account):
    keep = reserve(account, quantity="0.1", price="50000")
    position = reserve(account, quantity="0.3", price="50000")
    assert exposures(account) == (Decimal(20000), 2, Decimal(20000), 2, Decimal(20000))

    cancelled = position_cancel(position_id=position.pk, instance_id=account.pk, now=timezone.now())

    assert cancelled.status == "cancelled"
    assert cancelled.unfilled_released_at is not None
    assert exposures(account) == (keep.notional, 1, keep.notional, 1, keep.notional)
    assert counter_drift() == []


@pytest.mark.django_db
def test_cancelling_a_pending_position_releases_it():
    account = funded_account("200000")
    position = reserve(account, quantity="0.6", price="50000")  # 30000 >= the approval threshold 25000
    assert position.status == "pending_approval"

    position_cancel(position_id=position.pk, instance_id=None, now=timezone.now())  # an operator: no instance

    position.refresh_from_db()
    assert position.status == "cancelled"
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    assert counter_drift() == []


@pytest.mark.django_db
def test_cancelling_an_open_position_releases_only_its_unfilled_rest(account):
    position = reserve(account, quantity="0.3", price="50000")
    fill(position, "ex-1", "0.1", "51000")

    cancelled = position_cancel(position_id=position.pk, instance_id=account.pk, now=timezone.now())

    assert (cancelled.status, cancelled.notional) == ("open", Decimal("5100"))
    assert exposures(account) == (Decimal(5100), 1, Decimal(5100), 1, Decimal(5100))
    assert counter_drift() == []


@pytest.mark.parametrize("filled", [None, "0.1"], ids=["approved", "open"])
@pytest.mark.django_db
def test_cancelling_twice_changes_nothing(account, filled):
    position = reserve(account)
    if filled:
        fill(position, "ex-1", filled, "50000")
    position_cancel(position_id=position.pk, instance_id=account.pk, now=timezone.now())
    before, counters = snapshot(position), exposures(account)

    again = position_cancel(position_id=position.pk, instance_id=account.pk, now=timezone.now())

    assert again.status == before["status"]
    assert snapshot(position) == before
    assert exposures(account) == counters
    assert counter_drift() == []


@pytest.mark.parametrize("make", [_closed, _rejected, _expired], ids=["closed", "rejected", "expired"])
@pytest.mark.django_db
def test_a_closed_rejected_or_expired_position_cannot_be_cancelled(account, make):
    position = make(account)
    before, counters = snapshot(position), exposures(account)

    with pytest.raises(IllegalTransition):
        position_cancel(position_id=position.pk, instance_id=account.pk, now=timezone.now())

    assert snapshot(position) == before
    assert exposures(account) == counters
    assert counter_drift() == []


# ---------------------------------------------------------------------------------------------- expiry
@pytest.mark.django_db
def test_expiry_releases_what_passed_its_deadline_and_leaves_fresh_reservations():
    account = funded_account("200000")
    start = timezone.now()
    approved_old = reserve(account, quantity="0.1", now=start)  # reservation_ttl 120 s
    pending_old = reserve(account, quantity="0.6", now=start)  # approval_ttl 15 min
    open_old = reserve(account, quantity="0.3", now=start)
    fill(open_old, "ex-1", "0.1", "50000")
    assert (approved_old.status, pending_old.status) == ("approved", "pending_approval")
    later = start + timedelta(minutes=10)
    approved_fresh = reserve(account, quantity="0.2", now=later)

    expired = reservations_expire(now=later)  # 10 min: past 120 s, not past 15 min

    assert expired == 2
    statuses = dict(Position.objects.values_list("pk", "status"))
    assert statuses == {
        approved_old.pk: "expired",
        pending_old.pk: "pending_approval",
        open_old.pk: "open",
        approved_fresh.pk: "approved",
    }
    open_old.refresh_from_db()
    assert (open_old.notional, open_old.unfilled_released_at) == (Decimal(5000), later)
    # pending 30000 + open 5000 + fresh 10000
    assert exposures(account) == (Decimal(45000), 3, Decimal(45000), 3, Decimal(45000))
    assert counter_drift() == []

    assert reservations_expire(now=start + timedelta(minutes=15, seconds=1)) == 2  # the pending and the fresh one
    assert Position.objects.get(pk=pending_old.pk).status == "expired"
    assert Position.objects.get(pk=approved_fresh.pk).status == "expired"
    assert reservations_expire(now=start + timedelta(minutes=15, seconds=1)) == 0  # idempotent
    assert exposures(account) == (Decimal(5000), 1, Decimal(5000), 1, Decimal(5000))
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_reservation_exactly_at_its_deadline_is_not_expired_yet(account):
    position = reserve(account)

    assert reservations_expire(now=position.reservation_expires_at) == 0

    position.refresh_from_db()
    assert position.status == "approved"
    assert counter_drift() == []
