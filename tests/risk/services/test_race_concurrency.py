"""Races the kill switch and the UTC day must win: real threads released together against real PostgreSQL
(transactional tests, every call commits as in production).

- A halt against a burst of checks: nothing is approved after the halt commits, and what was approved before it
  is cancelled by its sweep.
- Approvals against a halt: an approval either committed before the halt (and the halt cancels it) or sees the
  halt (and rejects, or finds the position already cancelled).
- Day rolls racing at midnight: checks stamped just after and just before midnight, released together, leave the
  new day in place, rolled to the equity of the moment, and nothing acts in the old day once the new one began.

The lock order is the time order: each check and approval acts at the clock read once it holds the portfolio lock,
so "before the halt" and "after the halt" can be read off the positions' `decided_at`.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import TradingInstance
from nija.cache import raw_client
from risk.errors import IllegalTransition
from risk.models import Portfolio, RiskLimits
from risk.services.approval import position_approve
from risk.services.check import CheckInput, position_check
from risk.services.equity import equity_report
from risk.services.trading_state import StateChange, trading_halt, trading_resume
from tests.accounts.factories import OperatorFactory
from tests.risk.conftest import counter_drift, equity_drift, funded_account
from tests.risk.threads import Crowd, raised
from trading.models import Position

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 32
ROUNDS = 10
ACCOUNTS = 8
APPROVAL_THREADS = 16  # an approval re-runs every rule: fewer per round, so the test stays short
APPROVAL_ROUNDS = 6


@pytest.fixture
def crowd() -> Iterator[Crowd]:
    with Crowd(THREADS) as threads:
        yield threads


@pytest.fixture(autouse=True)
def long_lock_waits(settings) -> None:
    """32 calls queue on the portfolio row; on a loaded machine the last may wait past the 2 s default."""
    settings.RISK_LOCK_TIMEOUT_MS = 30_000
    settings.RISK_STATEMENT_TIMEOUT_MS = 30_000


@pytest.fixture(autouse=True)
def _no_marks_and_room(redis_client) -> Iterator[None]:
    """No cached mark; the Redis pool holds every thread; portfolio limits that never bind."""
    pool = raw_client().connection_pool
    before = pool.max_connections
    pool.max_connections = max(before, 2 * THREADS)
    RiskLimits.objects.filter(instance__isnull=True).update(max_total_positions=1_000_000)
    yield
    pool.max_connections = before


def check_call(account: TradingInstance, *, quantity: str = "0.01", at: datetime | None = None):
    request = CheckInput(
        account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal(quantity), price=Decimal("50000")
    )
    return lambda: position_check(request=request, user_id=account.user_id, now=at)


def halt_call():
    return lambda: trading_halt(instance_id=None, mode="halted", reason="desk halt", actor=None, now=timezone.now())


def resume() -> None:
    trading_resume(instance_id=None, reason="next round", actor=OperatorFactory(), now=timezone.now())


def decided_at(position_ids) -> list[datetime]:
    return list(Position.objects.filter(pk__in=list(position_ids)).values_list("decided_at", flat=True))


def assert_nothing_reserved() -> None:
    assert not Position.objects.filter(status__in=["approved", "pending_approval"]).exists()
    portfolio = Portfolio.objects.get()
    assert (portfolio.exposure, portfolio.position_count) == (0, 0)
    assert counter_drift() == []


def test_a_halt_racing_a_burst_of_checks_lets_nothing_be_approved_after_it_commits(crowd):
    accounts = [funded_account("1000000") for _ in range(ACCOUNTS)]
    checks = [check_call(accounts[slot % ACCOUNTS]) for slot in range(THREADS - 1)]

    for round_no in range(ROUNDS):
        at = round_no * 7 % THREADS  # the halt's thread slot moves, so it lands early, late and in between
        results = crowd.run([*checks[:at], halt_call(), *checks[at:]])

        assert raised(results) == []
        change, checks_answered = results[at], results[:at] + results[at + 1 :]
        assert isinstance(change, StateChange)
        approved = {r.position_id for r in checks_answered if r.decision == "approved"}
        refused = {r.position_id for r in checks_answered if [x["code"] for x in r.reasons] == ["trading_halted"]}
        assert len(approved) + len(refused) == len(checks_answered)
        if approved and refused:
            assert max(decided_at(approved)) < min(decided_at(refused))  # the halt sits between them
        assert set(change.cancelled_position_ids) == approved  # what got in before the halt is swept
        assert set(Position.objects.filter(pk__in=approved).values_list("status", flat=True)) <= {"cancelled"}
        assert_nothing_reserved()
        resume()


def test_approvals_racing_a_halt_are_swept_or_refused_never_left_approved():
    accounts = [funded_account("1000000") for _ in range(ACCOUNTS)]
    approver = OperatorFactory()

    for round_no in range(APPROVAL_ROUNDS):
        pending = [check_call(accounts[slot % ACCOUNTS], quantity="0.6")() for slot in range(APPROVAL_THREADS - 1)]
        assert {outcome.decision for outcome in pending} == {"pending_approval"}  # 30000 >= the 25000 threshold
        approvals = [
            lambda pk=outcome.position_id: position_approve(position_id=pk, actor=approver, reason="ok")
            for outcome in pending
        ]

        at = round_no * 5 % APPROVAL_THREADS
        with Crowd(APPROVAL_THREADS) as crowd:
            results = crowd.run([*approvals[:at], halt_call(), *approvals[at:]])

        change, answers = results[at], results[:at] + results[at + 1 :]
        assert isinstance(change, StateChange)
        assert all(isinstance(a, Position | IllegalTransition) for a in answers), raised(answers)
        approved = {a.pk for a in answers if isinstance(a, Position) and a.status == "approved"}
        refused = {a.pk for a in answers if isinstance(a, Position) and a.status == "rejected"}
        for position in Position.objects.filter(pk__in=refused):
            assert [reason["code"] for reason in position.reasons] == ["trading_halted"]
        if approved and refused:
            assert max(decided_at(approved)) < min(decided_at(refused))
        assert approved <= set(change.cancelled_position_ids)
        assert_nothing_reserved()
        resume()


def test_day_rolls_racing_at_midnight_leave_the_new_day_rolled_once_to_the_equity_of_the_moment(crowd):
    accounts = [funded_account("100000") for _ in range(ACCOUNTS)]
    first_midnight = datetime(2031, 3, 5, tzinfo=UTC)

    for round_no in range(ROUNDS):
        midnight = first_midnight + timedelta(days=round_no)
        for index, account in enumerate(accounts):  # the old day: a first report, then a gain
            equity_report(
                instance_id=account.pk, equity=Decimal(100000), cash_balance=None, now=midnight - timedelta(hours=2)
            )
            equity_report(
                instance_id=account.pk,
                equity=Decimal(100000 + 1000 * index + round_no),
                cash_balance=None,
                now=midnight - timedelta(minutes=1),
            )
        after = [midnight + timedelta(microseconds=slot) for slot in range(THREADS // 2)]
        before = [midnight - timedelta(milliseconds=10) + timedelta(microseconds=slot) for slot in range(THREADS // 2)]
        calls = [check_call(accounts[slot % ACCOUNTS], at=at) for slot, at in enumerate(after + before)]
        first_position = Position.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

        results = crowd.run(calls)

        assert raised(results) == []
        assert {r.decision for r in results} == {"approved"}
        portfolio = Portfolio.objects.get()
        rows = list(TradingInstance.objects.filter(pk__in=[a.pk for a in accounts]).order_by("pk"))
        assert portfolio.day_start_date == midnight.date()
        assert {row.day_start_date for row in rows} == {midnight.date()}
        assert [row.day_start_equity for row in rows] == [row.equity for row in rows]  # rolled to the last equity
        assert portfolio.day_start_equity == portfolio.equity == sum(row.equity for row in rows)
        # Once the lock order reached the new day, nothing acted in the old one again.
        times = list(Position.objects.filter(pk__gt=first_position).order_by("pk").values_list("decided_at", flat=True))
        first_new = next(index for index, moment in enumerate(times) if moment >= midnight)
        assert all(moment >= midnight for moment in times[first_new:])
        assert equity_drift() == []
        assert counter_drift() == []
