"""Time-ordered state follows the portfolio lock, never request arrival: the UTC day never rolls back, an equity
report's time and "first report of the day" never go back, and a check, a fill, a close or an approval that waited
for the lock acts at the time it got it (PostgreSQL's clock, the same for every web host)."""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import TradingInstance
from risk import locks
from risk.models import Portfolio
from risk.services.approval import position_approve
from risk.services.check import CheckInput, position_check
from risk.services.equity import equity_report
from tests.accounts.factories import OperatorFactory
from tests.risk.conftest import bot_client, counter_drift, equity_drift, funded_account
from tests.risk.services.scenario import close, fill, reserve
from tests.risk.test_admin import POSITIONS_URL, admin_as
from tests.risk.threads import rows_locked, run_in_thread
from trading.models import DailyStatistic, Fill, Position, Trade

MIDNIGHT = datetime(2031, 3, 5, 0, 0, tzinfo=UTC)
JUST_BEFORE = MIDNIGHT - timedelta(milliseconds=10)  # 23:59:59.99 the day before


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark from another test."""


def check(account: TradingInstance, *, at: datetime | None):
    return position_check(
        request=CheckInput(
            account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal("0.01"), price=Decimal("50000")
        ),
        user_id=account.user_id,
        now=at,
    )


def report(account: TradingInstance, equity: str, *, at: datetime) -> None:
    equity_report(instance_id=account.pk, equity=Decimal(equity), cash_balance=None, now=at)


def approve(position: Position) -> Position:
    return position_approve(position_id=position.pk, actor=OperatorFactory(), reason="ok")


def day_state(account: TradingInstance) -> tuple:
    account.refresh_from_db()
    portfolio = Portfolio.objects.get()
    return (
        portfolio.day_start_date,
        portfolio.day_start_equity,
        account.day_start_date,
        account.day_start_equity,
        account.equity_reported_at,
    )


@pytest.mark.django_db
def test_a_check_stamped_before_midnight_that_gets_the_lock_after_the_roll_does_not_roll_the_day_back():
    account = funded_account("100000")
    report(account, "100000", at=JUST_BEFORE - timedelta(minutes=1))
    report(account, "104000", at=JUST_BEFORE - timedelta(seconds=1))  # yesterday's gain
    check(account, at=MIDNIGHT)  # rolls: today starts at 104000
    report(account, "101000", at=MIDNIGHT + timedelta(seconds=1))  # first report of the day: starts at 101000
    rolled = day_state(account)

    outcome = check(account, at=JUST_BEFORE)  # stamped before the roll, locked after it

    assert rolled[:4] == (MIDNIGHT.date(), Decimal("101000"), MIDNIGHT.date(), Decimal("101000"))
    assert day_state(account) == rolled
    assert Position.objects.get(pk=outcome.position_id).decided_at == MIDNIGHT  # clamped to the day it acted in
    assert equity_drift() == []


@pytest.mark.django_db
def test_an_equity_report_stamped_before_the_previous_one_is_not_the_first_of_a_new_day():
    account = funded_account("100000")
    report(account, "100000", at=JUST_BEFORE - timedelta(minutes=1))
    report(account, "99000", at=MIDNIGHT + timedelta(seconds=1))  # today's first report: starts at 99000
    after_first = day_state(account)

    report(account, "98000", at=JUST_BEFORE)  # from a host whose clock is behind, or that waited for the lock

    account.refresh_from_db()
    assert after_first[:4] == (MIDNIGHT.date(), Decimal("99000"), MIDNIGHT.date(), Decimal("99000"))
    assert day_state(account) == after_first  # no new "first report of the day", no time going back
    assert account.equity == Decimal("98000")
    assert account.equity_reported_at == MIDNIGHT + timedelta(seconds=1)
    assert equity_drift() == []


@pytest.mark.django_db
def test_a_fill_and_a_close_stamped_before_midnight_that_get_the_lock_after_the_roll_belong_to_the_new_day():
    account = funded_account("100000")
    report(account, "100000", at=JUST_BEFORE - timedelta(minutes=1))
    position = reserve(account, quantity="0.2", price="50000", now=JUST_BEFORE - timedelta(seconds=30))
    fill(position, "ex-1", "0.1", "50000", now=JUST_BEFORE - timedelta(seconds=20))
    check(account, at=MIDNIGHT)  # rolls the day

    fill(position, "ex-2", "0.1", "50000", now=JUST_BEFORE)  # stamped before the roll, locked after it
    trade = close(position, "c-1", "51000", now=JUST_BEFORE)

    assert Fill.objects.get(exchange_order_id="ex-2").filled_at == MIDNIGHT
    assert trade.closed_at == MIDNIGHT
    days = DailyStatistic.objects.filter(instance=account, date__gte=JUST_BEFORE.date())
    trades_by_day = dict(days.values_list("date", "trades"))
    assert trades_by_day == {JUST_BEFORE.date(): 0, MIDNIGHT.date(): 1}  # today's P&L, never yesterday's


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("request_kind", ["fill", "close", "approval in admin"])
def test_a_lifecycle_or_admin_decision_that_waited_for_the_portfolio_lock_acts_at_the_time_it_got_it(
    request_kind, relaxed_rate_limits
):
    account = funded_account("1000000")
    client = bot_client(account)
    position = reserve(account, quantity="0.6", price="50000")  # n = 30000: pending approval
    if request_kind != "approval in admin":
        position = approve(position)
    if request_kind == "close":
        fill(position, "ex-1", "0.6", "50000")
    admin, _ = admin_as("approver")
    calls = {
        "fill": lambda: client.post(
            f"/api/positions/{position.pk}/fill",
            {"exchange_order_id": "ex-1", "quantity": "0.6", "price": "50000"},
            format="json",
        ),
        "close": lambda: client.post(
            f"/api/positions/{position.pk}/close", {"client_close_id": "c-1", "exit_price": "51000"}, format="json"
        ),
        "approval in admin": lambda: admin.post(
            POSITIONS_URL, {"action": "approve", "_selected_action": [position.pk], "reason": "ok", "index": 0}
        ),
    }
    answers: list = []
    released_at: list[datetime] = []

    with rows_locked(locks.lock_portfolio):
        waiting = threading.Thread(target=lambda: answers.append(run_in_thread(calls[request_kind])))
        waiting.start()
        time.sleep(0.5)  # the request is in, waiting for the lock
        released_at.append(timezone.now())
    waiting.join(timeout=30)

    assert answers[0].status_code in (200, 302), answers[0].content
    acted_at = {
        "fill": lambda: Fill.objects.get(position=position).filled_at,
        "close": lambda: Trade.objects.get(position=position).closed_at,
        "approval in admin": lambda: Position.objects.get(pk=position.pk).decided_at,
    }[request_kind]()
    assert acted_at >= released_at[0]
    assert counter_drift() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("request_kind", ["check", "equity report"])
def test_a_request_that_waited_for_the_portfolio_lock_acts_at_the_time_it_got_it(request_kind):
    account = funded_account("100000")
    client = bot_client(account)
    calls = {
        "check": lambda: client.post(
            "/api/risk/check-position",
            {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": "0.01", "price": "50000"},
            format="json",
        ),
        "equity report": lambda: client.post(
            f"/api/accounts/{account.pk}/metrics", {"equity": "100000"}, format="json"
        ),
    }
    answers: list = []
    released_at: list[datetime] = []

    with rows_locked(locks.lock_portfolio):
        waiting = threading.Thread(target=lambda: answers.append(run_in_thread(calls[request_kind])))
        waiting.start()
        time.sleep(0.5)  # the request is in, waiting for the lock
        released_at.append(timezone.now())
    waiting.join(timeout=30)

    assert answers[0].status_code == 200, answers[0].content
    if request_kind == "check":
        acted_at = Position.objects.get(pk=answers[0].json()["position_id"]).decided_at
    else:
        acted_at = TradingInstance.objects.get(pk=account.pk).equity_reported_at
    assert acted_at >= released_at[0]
    assert counter_drift() == []


@pytest.mark.django_db(transaction=True)
def test_the_locked_clock_is_read_after_the_lock_is_granted():
    before = timezone.now()
    with rows_locked(locks.lock_portfolio):
        result: list = []
        waiting = threading.Thread(target=lambda: result.append(run_in_thread(locks.lock_portfolio)))
        waiting.start()
        time.sleep(0.3)
        released_at = timezone.now()
    waiting.join(timeout=30)

    assert result[0].locked_at >= released_at > before


@pytest.mark.django_db
def test_a_check_reads_its_clock_and_its_users_flag_without_another_round_trip():
    """The check's read returns the clock and the user's is_active with the rows: a reserving check is two
    statements (the unlocked read, the one statement that locks, re-verifies and reserves), a rejected one too (the
    read, the insert), and the locked path (an explicit time) is the lock-and-read function and the insert."""
    account = funded_account("100000")
    check(account, at=None)  # warm: the permission cache, the day rolled
    big = CheckInput(
        account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal("100"), price=Decimal("50000")
    )

    with CaptureQueriesContext(connection) as approved:
        assert check(account, at=None).decision == "approved"
    with CaptureQueriesContext(connection) as rejected:
        assert position_check(request=big, user_id=account.user_id).decision == "rejected"

    with CaptureQueriesContext(connection) as locked:
        assert check(account, at=timezone.now()).decision == "approved"

    def statements(captured) -> list[str]:
        return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]

    assert len(statements(approved)) == 2
    assert "SELECT risk_read_check_scope(" in statements(approved)[0]
    assert "SELECT risk_check_reserve(" in statements(approved)[1]
    assert "SELECT risk_read_check_scope(" in statements(rejected)[0]
    assert "; INSERT INTO trading_position" in statements(rejected)[1]  # after its lock and statement timeouts
    assert len(statements(rejected)) == 2
    assert "SELECT risk_lock_check_scope(" in statements(locked)[0]
    assert "INSERT INTO trading_position" in statements(locked)[1]  # with the counters' UPDATEs
    assert len(statements(locked)) == 2
