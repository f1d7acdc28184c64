"""Fill, close, cancel and expiry after the check (risk.services.lifecycle): exact Decimals, counters equal to the
sum over positions after every scenario, idempotent replays, and 409s that write nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from risk.errors import IdempotencyConflict, IllegalTransition, QuantityExceeded
from risk.models import RiskEvent
from risk.services.lifecycle import position_cancel, reservations_expire
from risk.services.trading_state import trading_halt
from tests.risk.conftest import books_drift, counter_drift, funded_account
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
def test_partial_fills_add_their_exact_cost_and_the_unfilled_rest_keeps_its_share_of_n(account):
    position = reserve(account, quantity="0.3", price="50000")
    assert (position.status, position.notional) == ("approved", Decimal("15000.00000000"))

    fill(position, "ex-1", "0.1", "49000", fees="1.5")
    position.refresh_from_db()
    # 0.1 x 49000 filled + the unfilled 0.2 of 0.3 keeps its share of the checked 15000.
    assert (position.status, position.filled_quantity, position.entry_price) == ("open", Decimal("0.1"), Decimal(49000))
    assert (position.open_cost, position.open_entry_fees, position.notional) == (Decimal(4900), Decimal("1.5"), 14900)
    assert position.opened_at is not None
    assert exposures(account) == (Decimal("14900"), 1, Decimal("14900"), 1, Decimal("14900"))

    fill(position, "ex-2", "0.15", "51000.12345678", fees="2.25")
    position.refresh_from_db()
    # 0.15 x 51000.12345678 = 7650.018518517, rounded up: 7650.01851852; the entry price shown is the open cost
    # over the open quantity, 12550.01851852 / 0.25; the unfilled 0.05 still holds 0.05/0.3 of 15000.
    assert position.open_cost == Decimal("12550.01851852")
    assert position.entry_price == Decimal("50200.07407408")
    assert position.notional == Decimal("12550.01851852") + Decimal("2500")
    assert (position.fees, position.open_entry_fees) == (Decimal("3.75"), Decimal("3.75"))
    assert exposures(account)[0] == Decimal("15050.01851852")

    fill(position, "ex-3", "0.05", "50000")
    position.refresh_from_db()
    # 15050.01851852 / 0.3 = 50166.728395066.. -> half-even 50166.72839507 (shown, never booked).
    assert (position.filled_quantity, position.entry_price) == (Decimal("0.3"), Decimal("50166.72839507"))
    assert position.notional == position.open_cost == Decimal("15050.01851852")
    assert exposures(account) == (position.notional, 1, position.notional, 1, position.notional)
    assert list(Fill.objects.filter(position=position).order_by("pk").values_list("exchange_order_id", "quantity")) == [
        ("ex-1", Decimal("0.1")),
        ("ex-2", Decimal("0.15")),
        ("ex-3", Decimal("0.05")),
    ]
    assert counter_drift() == []
    assert books_drift() == []


@pytest.mark.django_db
def test_a_fill_after_a_partial_close_averages_only_with_what_is_still_open(account):
    """Check 12 @ 100, fill 10 @ 100, close 9 @ 110, fill 2 @ 200: open are 1 @ 100 and 2 @ 200, costing 500 (an
    average over all 12 filled would say 3 x 116.67 = 350); closing those 3 @ 200 books +100, the cash P&L."""
    position = reserve(account, quantity="12", price="100")
    fill(position, "ex-1", "10", "100")
    nine = close(position, "c-1", "110", quantity="9")
    fill(position, "ex-2", "2", "200")

    position.refresh_from_db()
    assert nine.pnl == Decimal(90)
    assert (position.open_cost, position.notional, position.entry_price) == (500, 500, Decimal("166.66666667"))
    assert exposures(account) == (Decimal(500), 1, Decimal(500), 1, Decimal(500))

    rest = close(position, "c-2", "200")

    position.refresh_from_db()
    assert (rest.quantity, rest.pnl, rest.entry_price) == (Decimal(3), Decimal(100), Decimal("166.66666667"))
    assert (position.status, position.realized_pnl, position.open_cost) == ("closed", Decimal(190), 0)
    assert position.realized_pnl == -1000 + 990 - 400 + 600  # the cash it made
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    assert counter_drift() == []
    assert books_drift() == []


@pytest.mark.parametrize(
    ("side", "pnls", "realized"),
    [
        # long: proceeds - cost share - fees - entry-fee share
        ("long", ["3.56666668", "-2.43333334", "-1.43333334"], "-0.30000000"),
        # short: cost share - proceeds - fees - entry-fee share
        ("short", ["-5.10000000", "0.90000000", "-0.10000000"], "-4.30000000"),
    ],
)
@pytest.mark.django_db
def test_entry_and_close_fees_are_in_realized_pnl_and_the_closes_add_up_to_the_cash_pnl(account, side, pnls, realized):
    """Fills 1 @ 100 and 2 @ 101 (cost 302, entry fees 2), closed a third at a time @ 105, 99, 100 with fees of
    0.1 each. A close takes its share of cost and entry fees rounded toward zero (100.66666666, 0.66666666), the
    last takes the remainder, so the three add up to the cash exactly: -302 - 2 + 304 - 0.3 for the long."""
    position = reserve(account, side=side, quantity="3", price="101")
    fill(position, "ex-1", "1", "100", fees="1")
    fill(position, "ex-2", "2", "101", fees="1")

    trades = [
        close(position, f"c-{n}", price, quantity="1", fees="0.1") for n, price in enumerate(["105", "99", "100"])
    ]

    assert [trade.pnl for trade in trades] == [Decimal(pnl) for pnl in pnls]
    position.refresh_from_db()
    cash = (304 - 302 if side == "long" else 302 - 304) - 2 - Decimal("0.3")
    assert position.realized_pnl == sum(trade.pnl for trade in trades) == Decimal(realized) == cash
    assert (position.status, position.open_cost, position.open_entry_fees) == ("closed", 0, 0)
    assert DailyStatistic.objects.get(instance=account).realized_pnl == cash
    assert counter_drift() == []
    assert books_drift() == []


@pytest.mark.django_db
def test_a_fill_above_the_checked_price_raises_the_held_notional(account):
    position = reserve(account, quantity="0.2", price="50000")

    fill(position, "ex-1", "0.2", "50500.5")

    position.refresh_from_db()
    assert position.notional == Decimal("10100.10000000")
    assert exposures(account) == (Decimal("10100.1"), 1, Decimal("10100.1"), 1, Decimal("10100.1"))
    assert counter_drift() == []
    assert books_drift() == []


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
    assert books_drift() == []


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
    assert books_drift() == []


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
    assert books_drift() == []


@pytest.mark.django_db
def test_an_over_fill_is_refused_and_writes_nothing(account):
    position = reserve(account, quantity="0.3")
    fill(position, "ex-1", "0.25", "50000")
    before, counters = snapshot(position), exposures(account)

    with pytest.raises(QuantityExceeded) as refused:
        fill(position, "ex-2", "0.05000001", "50000")

    assert refused.value.code == "quantity_exceeded"
    assert snapshot(position) == before
    assert exposures(account) == counters
    assert Fill.objects.count() == 1
    assert counter_drift() == []
    assert books_drift() == []


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


def _pending_cancelled(account):
    position = reserve(account, quantity="0.6")  # 30000 >= the approval threshold 25000
    return position_cancel(position_id=position.pk, instance_id=account.pk, now=timezone.now())


def _pending_expired(account):
    position = reserve(account, quantity="0.6")
    reservations_expire(now=timezone.now() + timedelta(minutes=16))
    return position


def _pending(account):
    return reserve(account, quantity="0.6")


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (_rejected, "rejected"),
        (_pending, "pending_approval"),
        (_pending_cancelled, "cancelled"),
        (_pending_expired, "expired"),
    ],
    ids=["rejected", "pending", "pending-cancelled", "pending-expired"],
)
@pytest.mark.django_db
def test_a_position_never_approved_cannot_be_filled(make, status):
    account = funded_account("200000")
    position = make(account)
    position.refresh_from_db()
    assert position.status == status
    before, counters, fills = snapshot(position), exposures(account), Fill.objects.count()

    with pytest.raises(IllegalTransition) as refused:
        fill(position, "ex-late", "0.1", "50000")

    assert refused.value.code == "illegal_transition"
    assert snapshot(position) == before
    assert exposures(account) == counters
    assert Fill.objects.count() == fills
    assert counter_drift() == []
    assert books_drift() == []


def _halted(account):
    position = reserve(account)
    trading_halt(instance_id=None, mode="halted", reason="desk halt", actor=None, now=timezone.now())
    return position


def _open_rest_cancelled(account):
    position = reserve(account)
    fill(position, "ex-open", "0.1", "50000")
    return position_cancel(position_id=position.pk, instance_id=account.pk, now=timezone.now())


def _filled_part_closed_rest_cancelled(account):
    position = _open_rest_cancelled(account)
    close(position, "close-filled", "50000")
    return position


@pytest.mark.parametrize(
    ("make", "status", "open_before"),
    [
        (_cancelled, "cancelled", "0"),
        (_expired, "expired", "0"),
        (_halted, "cancelled", "0"),
        (_open_rest_cancelled, "open", "0.1"),
        (_filled_part_closed_rest_cancelled, "closed", "0"),
    ],
    ids=["cancelled", "expired", "halted", "open-rest-released", "closed-after-release"],
)
@pytest.mark.django_db
def test_a_fill_after_the_rest_was_released_is_recorded_unchecked_and_raises_a_warning(
    account, make, status, open_before
):
    """The exchange filled the order anyway: the fill is recorded (a 409 would leave a real position nobody counts),
    its cost is added to every counter without a check (the portfolio may even be halted) and a warning says so."""
    position = make(account)
    position.refresh_from_db()
    assert (position.status, position.filled_quantity - position.closed_quantity) == (status, Decimal(open_before))
    held_before = exposures(account)
    trading_halt(instance_id=None, mode="halted", reason="no new risk", actor=None, now=timezone.now())

    fill(position, "ex-late", "0.2", "50500")

    position.refresh_from_db()
    assert position.status == "open"
    assert position.unfilled_released_at is not None  # the rest stays released: nothing more is reserved
    added = position.notional - (Decimal(5000) if open_before != "0" else 0)
    assert added == Decimal("10100")  # 0.2 x 50500
    assert exposures(account) == (
        held_before[0] + added,
        1,
        held_before[2] + added,
        1,
        held_before[4] + added,
    )
    warning = RiskEvent.objects.get(type="fill_after_release")
    assert (warning.severity, warning.instance_id) == ("warning", account.pk)
    assert warning.details == {
        "position_id": position.pk,
        "exchange_order_id": "ex-late",
        "quantity": "0.2",
        "price": "50500",
        "exposure_added": "10100.00000000",
    }
    assert counter_drift() == []
    assert books_drift() == []


@pytest.mark.django_db
def test_a_fill_beyond_the_checked_quantity_is_refused_even_after_a_release(account):
    position = _open_rest_cancelled(account)  # 0.1 of 0.3 filled, the rest released
    before, counters = snapshot(position), exposures(account)

    with pytest.raises(QuantityExceeded):
        fill(position, "ex-2", "0.20000001", "50000")

    assert snapshot(position) == before
    assert exposures(account) == counters
    assert not RiskEvent.objects.filter(type="fill_after_release").exists()
    assert counter_drift() == []
    assert books_drift() == []


# ---------------------------------------------------------------------------------------------- close
@pytest.mark.django_db
def test_a_partial_then_a_final_close_write_trades_with_their_pnl_and_the_days_statistics(account):
    position = reserve(account, quantity="0.3", price="50000")
    fill(position, "ex-1", "0.3", "50000", fees="3")
    now = timezone.now()

    first = close(position, "c-1", "52000", quantity="0.1", fees="2", now=now)

    # (52000 - 50000) x 0.1 - 2, less a third of the entry fees 3
    assert (first.quantity, first.entry_price, first.exit_price, first.pnl, first.fees) == (
        Decimal("0.1"),
        Decimal("50000"),
        Decimal("52000"),
        Decimal("197"),
        Decimal("2"),
    )
    position.refresh_from_db()
    assert (position.status, position.closed_quantity, position.realized_pnl) == ("open", Decimal("0.1"), Decimal(197))
    assert (position.open_cost, position.open_entry_fees) == (Decimal(10000), Decimal(2))
    assert position.notional == Decimal("10000")  # 0.2 open x 50000
    assert exposures(account) == (Decimal("10000"), 1, Decimal("10000"), 1, Decimal("10000"))
    assert counter_drift() == []
    assert books_drift() == []

    last = close(position, "c-2", "49000", fees="1", now=now)  # everything still open: 0.2

    assert (last.quantity, last.pnl) == (Decimal("0.2"), Decimal("-203"))  # -1000 x 0.2 - 1 - the entry fees left
    position.refresh_from_db()
    assert (position.status, position.closed_quantity, position.closed_at) == ("closed", Decimal("0.3"), now)
    assert position.realized_pnl == Decimal("-6") == -15000 + 5200 + 9800 - 6  # the cash P&L, every fee included
    assert position.exit_price == Decimal("50000")  # (0.1 x 52000 + 0.2 x 49000) / 0.3
    assert position.fees == Decimal("6")  # 3 on the fill, 2 + 1 on the closes
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    day = DailyStatistic.objects.get(instance=account, date=now.date())
    assert (day.trades, day.wins, day.losses) == (2, 1, 1)
    assert (day.realized_pnl, day.gross_profit, day.gross_loss) == (Decimal("-6"), Decimal("197"), Decimal("203"))
    assert counter_drift() == []
    assert books_drift() == []


@pytest.mark.django_db
def test_a_short_gains_when_the_price_falls(account):
    position = reserve(account, side="short", quantity="0.2", price="50000")
    fill(position, "ex-1", "0.2", "50000")

    trade = close(position, "c-1", "48000", fees="0.5")

    assert trade.pnl == Decimal("399.5")  # (50000 - 48000) x 0.2 - 0.5
    position.refresh_from_db()
    assert (position.status, position.realized_pnl) == ("closed", Decimal("399.5"))
    assert counter_drift() == []
    assert books_drift() == []


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
    assert books_drift() == []


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
    assert books_drift() == []


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
    assert books_drift() == []


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
    assert books_drift() == []


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
    assert books_drift() == []


@pytest.mark.django_db
def test_a_closed_position_cannot_be_closed_again_under_a_new_id(account):
    position = _closed(account)

    with pytest.raises(IllegalTransition):
        close(position, "c-again", "50000")

    assert Trade.objects.count() == 1
    assert counter_drift() == []
    assert books_drift() == []


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
    assert books_drift() == []


@pytest.mark.django_db
def test_closing_everything_filled_keeps_the_live_orders_rest_reserved_and_its_later_fill_is_recorded(account):
    """Check 0.3, fill 0.12, close: the order's unfilled 0.18 may still be live at the exchange, so it stays
    reserved (and counted) until it is filled, cancelled or expires; when it fills, the fill is recorded."""
    position = reserve(account, quantity="0.3", price="50000")
    fill(position, "ex-1", "0.12", "50000")

    close(position, "c-1", "50000")

    position.refresh_from_db()
    assert (position.status, position.unfilled_released_at, position.notional) == ("open", None, Decimal(9000))
    assert exposures(account) == (Decimal(9000), 1, Decimal(9000), 1, Decimal(9000))  # 0.18 / 0.3 of 15000
    assert counter_drift() == []
    assert books_drift() == []

    fill(position, "ex-2", "0.18", "50100")

    position.refresh_from_db()
    assert (position.status, position.filled_quantity, position.notional) == ("open", Decimal("0.3"), Decimal(9018))
    assert not RiskEvent.objects.filter(type="fill_after_release").exists()  # nothing had been released
    close(position, "c-2", "50100")
    position.refresh_from_db()
    assert position.status == "closed"
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    assert counter_drift() == []
    assert books_drift() == []


@pytest.mark.parametrize(
    "release",
    [
        lambda position, now: position_cancel(position_id=position.pk, instance_id=position.instance_id, now=now),
        lambda position, now: reservations_expire(now=now + timedelta(seconds=121)),
        lambda position, now: trading_halt(instance_id=None, mode="halted", reason="drill", actor=None, now=now),
    ],
    ids=["cancel", "expiry", "halt"],
)
@pytest.mark.django_db
def test_releasing_the_rest_of_a_position_whose_filled_part_is_closed_closes_it(account, release):
    """Nothing open and nothing reserved: the position closes and leaves position_count (never open at notional 0)."""
    position = reserve(account, quantity="0.3", price="50000")
    fill(position, "ex-1", "0.1", "50000")
    close(position, "c-1", "50500")
    now = timezone.now()

    release(position, now)

    position.refresh_from_db()
    assert (position.status, position.unfilled_released_at is not None) == ("closed", True)
    assert position.closed_at is not None
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    assert not Position.objects.filter(status="open").exists()
    assert counter_drift() == []
    assert books_drift() == []


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
    assert books_drift() == []


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
    assert books_drift() == []


@pytest.mark.django_db
def test_cancelling_an_open_position_releases_only_its_unfilled_rest(account):
    position = reserve(account, quantity="0.3", price="50000")
    fill(position, "ex-1", "0.1", "51000")

    cancelled = position_cancel(position_id=position.pk, instance_id=account.pk, now=timezone.now())

    assert (cancelled.status, cancelled.notional) == ("open", Decimal("5100"))
    assert exposures(account) == (Decimal(5100), 1, Decimal(5100), 1, Decimal(5100))
    assert counter_drift() == []
    assert books_drift() == []


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
    assert books_drift() == []


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
    assert books_drift() == []


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
    assert books_drift() == []

    assert reservations_expire(now=start + timedelta(minutes=15, seconds=1)) == 2  # the pending and the fresh one
    assert Position.objects.get(pk=pending_old.pk).status == "expired"
    assert Position.objects.get(pk=approved_fresh.pk).status == "expired"
    assert reservations_expire(now=start + timedelta(minutes=15, seconds=1)) == 0  # idempotent
    assert exposures(account) == (Decimal(5000), 1, Decimal(5000), 1, Decimal(5000))
    assert counter_drift() == []
    assert books_drift() == []


@pytest.mark.django_db
def test_a_reservation_exactly_at_its_deadline_is_not_expired_yet(account):
    position = reserve(account)

    assert reservations_expire(now=position.reservation_expires_at) == 0

    position.refresh_from_db()
    assert position.status == "approved"
    assert counter_drift() == []
    assert books_drift() == []
