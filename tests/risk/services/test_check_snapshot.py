"""A check decided on a snapshot: the one reserving statement re-verifies it under the locks, and a snapshot that no
longer holds writes nothing and goes to the locked path, which decides on what is true now.

- Through `position_check`, with real threads on real PostgreSQL: another transaction holds the portfolio row
  while the check reads its snapshot and then waits in its reserving statement; that transaction changes what the
  decision rests on (a halt, tighter limits, a lower equity, a deactivation, the headroom taken by another
  reservation) and commits. The check must answer as the changed state says, and reserve nothing it forbids.
- The reserving statement alone (`position_reserve_verified`): a reservation landing exactly on a ceiling or one
  position below a count limit is made; one unit over, one position more, a stale equity report, a rolled day, an
  earlier position with the client_order_id or any changed input writes nothing.
- What the statement writes is what the locked path writes for the same request.
"""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from nija.metrics import RISK_CHECK_PATHS
from risk import locks, selectors
from risk.engine.bounds import CounterBounds
from risk.errors import AccountInactive
from risk.models import Portfolio, RiskLimits
from risk.services.activation import trading_instance_activation_set
from risk.services.check import CheckInput, position_check
from risk.services.equity import equity_report
from risk.services.exposure import position_reserve_verified
from risk.services.trading_state import trading_halt
from tests.risk.conftest import counter_drift, funded_account
from tests.risk.threads import lock_waiters
from trading.models import Position

N = Decimal("5000")  # 0.1 BTC at 50,000


@pytest.fixture(autouse=True)
def long_lock_waits(settings) -> None:
    """The check waits on the row this test holds while it applies a change; on a loaded machine that may take
    longer than the 2 s default (the lock timeout has its own tests)."""
    settings.RISK_LOCK_TIMEOUT_MS = 30_000
    settings.RISK_STATEMENT_TIMEOUT_MS = 30_000


def order(account, **fields) -> CheckInput:
    return CheckInput(
        account_id=account.pk,
        symbol="BTC-USD",
        side="long",
        quantity=Decimal("0.1"),
        price=Decimal("50000"),
        **fields,
    )


def path_count(path: str) -> float:
    return RISK_CHECK_PATHS.labels(path)._value.get()


# ------------------------------------------------------------------ a change lands between snapshot and reservation
def check_across(change: Callable[[], object], account, request: CheckInput):
    """Run `request` in a thread while this thread holds the portfolio row: once the check waits in its reserving
    statement (its snapshot already read), apply `change` in the holding transaction and commit. The check's answer
    (or the exception it raised)."""
    answer: list = []

    def run() -> None:
        try:
            answer.append(position_check(request=request, user_id=account.user_id))
        except Exception as exc:  # noqa: BLE001 - handed to the test, which asserts on it
            answer.append(exc)
        finally:
            connection.close()

    with transaction.atomic():
        locks.lock_portfolio()
        checker = threading.Thread(target=run)
        checker.start()
        deadline = time.monotonic() + 30
        while not lock_waiters("risk_check_reserve"):
            assert not answer, f"the check answered before it waited: {answer}"
            assert time.monotonic() < deadline, "the check never reached its reserving statement"
            time.sleep(0.01)
        change()
    checker.join(timeout=60)
    assert answer, "the check did not answer"
    return answer[0]


def _halt() -> None:
    trading_halt(instance_id=None, mode="halted", reason="desk halt", actor=None, now=timezone.now())


def _tighter_limits(account) -> Callable[[], None]:
    return lambda: RiskLimits.objects.filter(instance=account).update(max_account_exposure_pct=Decimal("0.09"))


def _lower_equity(account) -> Callable[[], None]:
    """One unit of equity less: the account's ceiling (10 % of it) falls just under the 10,000 the check needs."""
    return lambda: equity_report(instance_id=account.pk, equity=Decimal("99999"), cash_balance=None, now=timezone.now())


def _deactivation(account) -> Callable[[], None]:
    return lambda: trading_instance_activation_set(instance_id=account.pk, active=False, actor=None, reason="t")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("make_change", "expected"),
    [
        (lambda account: _halt, ("rejected", ["trading_halted"])),
        (_tighter_limits, ("rejected", ["account_exposure"])),
        (_lower_equity, ("rejected", ["account_exposure"])),  # 5,000 over 10 % of 40,000
        (_deactivation, AccountInactive),
    ],
    ids=["halt", "tighter limits", "lower equity", "deactivation"],
)
def test_a_change_committed_while_the_check_waits_decides_it(redis_client, make_change, expected):
    """The account may hold 10 % of its equity, 10,000: 5,000 is held, the check asks for 5,000 more (exactly on
    the ceiling, so its snapshot approves it)."""
    account = funded_account("100000")
    RiskLimits.objects.create(instance=account, max_account_exposure_pct=Decimal("0.10"))
    assert position_check(request=order(account), user_id=account.user_id).decision == "approved"
    fallback_before = path_count("fallback")

    answer = check_across(make_change(account), account, order(account))

    if isinstance(expected, type):
        assert isinstance(answer, expected)
    else:
        assert (answer.decision, [reason["code"] for reason in answer.reasons]) == expected
    assert path_count("fallback") == fallback_before + 1  # the snapshot no longer held: the locked path answered
    assert Position.objects.filter(status="approved").count() <= 1  # the first one (a halt cancels it)
    assert Portfolio.objects.get().exposure <= N
    assert counter_drift() == []


@pytest.mark.django_db(transaction=True)
def test_headroom_taken_while_the_check_waits_rejects_it_and_reserves_once(redis_client):
    """The account may hold 10,000 (10 % of 100,000): one 5,000 is held, a second one arrives while the check
    waits. The check's snapshot saw room for its 5,000; under the lock there is none."""
    account = funded_account("100000")
    RiskLimits.objects.create(instance=account, max_account_exposure_pct=Decimal("0.10"))
    assert position_check(request=order(account), user_id=account.user_id).decision == "approved"
    other = order(account)

    def another_reservation() -> None:
        # The locked path, in the transaction that holds the portfolio row.
        assert position_check(request=other, user_id=account.user_id, now=timezone.now()).decision == "approved"

    answer = check_across(another_reservation, account, order(account))

    assert (answer.decision, [reason["code"] for reason in answer.reasons]) == ("rejected", ["account_exposure"])
    account.refresh_from_db()
    assert account.exposure == 2 * N
    assert counter_drift() == []


@pytest.mark.django_db(transaction=True)
def test_a_check_that_waited_on_an_unrelated_change_is_reserved_by_its_one_statement(redis_client):
    """Counters moved within the bounds (another account's reservation) do not send a check to the locked path."""
    account, neighbour = funded_account("100000"), funded_account("100000")
    position_check(request=order(account, dry_run=True), user_id=account.user_id)
    snapshot_before = path_count("snapshot")

    answer = check_across(
        lambda: position_check(request=order(neighbour), user_id=neighbour.user_id, now=timezone.now()),
        account,
        order(account),
    )

    assert answer.decision == "approved"
    assert path_count("snapshot") == snapshot_before + 1
    assert answer.metrics["account_exposure"] == N
    assert Portfolio.objects.get().exposure == 2 * N
    assert counter_drift() == []


# ------------------------------------------------------------------------------------- the reserving statement
def _position(account, *, client_order_id: str | None = None) -> Position:
    now = timezone.now()
    return Position(
        instance_id=account.pk,
        symbol="BTC-USD",
        side="long",
        quantity=Decimal("0.1"),
        requested_price=Decimal("50000"),
        notional=N,
        checked_notional=N,
        check_decision="approved",
        status="approved",
        reasons=[],
        client_order_id=client_order_id,
        request_fingerprint="f" * 64,
        decided_at=now,
        created_at=now,
        updated_at=now,
    )


def _bounds(**changes) -> CounterBounds:
    roomy = {
        "notional": N,
        "account_exposure_cap": Decimal("1000000"),
        "portfolio_exposure_cap": Decimal("1000000"),
        "symbol_exposure_cap": Decimal("1000000"),
        "group_exposure_cap": None,
        "account_positions_limit": 100,
        "portfolio_positions_limit": 100,
    }
    return CounterBounds(**roomy | changes)


def _reserve(account, *, snapshot=None, bounds=None, fresh_until=None, client_order_id=None):
    """The reservation made (None: the statement wrote nothing; it still says how long it held the rows)."""
    snapshot = snapshot or selectors.read_check_scope(instance_id=account.pk, symbol="BTC-USD", client_order_id=None)
    reservation = position_reserve_verified(
        snapshot=snapshot,
        bounds=bounds or _bounds(),
        position=_position(account, client_order_id=client_order_id),
        fresh_until=fresh_until or timezone.now() + timedelta(minutes=5),
        ttl=timedelta(seconds=60),
    )
    assert reservation.held_seconds > 0
    return reservation if reservation.position_id is not None else None


def _held(account) -> tuple[Decimal, int, int]:
    account.refresh_from_db()
    return account.exposure, account.position_count, Position.objects.filter(instance=account).count()


@pytest.mark.django_db
def test_a_reservation_exactly_on_every_ceiling_and_one_below_every_count_is_made(redis_client):
    account = funded_account("100000")
    _reserve(account)  # 5,000 held, one position
    portfolio = Portfolio.objects.get()
    exact = _bounds(
        account_exposure_cap=N + N,
        portfolio_exposure_cap=portfolio.exposure + N,
        symbol_exposure_cap=N + N,
        account_positions_limit=2,
        portfolio_positions_limit=portfolio.position_count + 1,
    )

    reserved = _reserve(account, bounds=exact)

    assert reserved is not None
    assert reserved.account_exposure == 2 * N
    assert _held(account) == (2 * N, 2, 2)
    position = Position.objects.get(pk=reserved.position_id)
    assert position.decided_at == position.approved_at == position.created_at == reserved.clock
    assert position.reservation_expires_at == reserved.clock + timedelta(seconds=60)
    assert counter_drift() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "over",
    [
        {"account_exposure_cap": N + N - Decimal("0.00000001")},
        {"portfolio_exposure_cap": N + N - Decimal("0.00000001")},
        {"symbol_exposure_cap": N + N - Decimal("0.00000001")},
        {"group_exposure_cap": Decimal("1000000")},  # bounds for a group the symbol is not in
        {"account_positions_limit": 1},
        {"portfolio_positions_limit": 1},
    ],
    ids=["account", "portfolio", "symbol", "group", "account count", "portfolio count"],
)
def test_one_unit_or_one_position_over_a_bound_writes_nothing(redis_client, over):
    account = funded_account("100000")
    _reserve(account)
    before = _held(account)

    assert _reserve(account, bounds=_bounds(**over)) is None
    assert _held(account) == before


@pytest.mark.django_db
def test_a_stale_report_a_rolled_day_an_earlier_order_or_a_changed_input_writes_nothing(redis_client):
    account = funded_account("100000")
    old = selectors.read_check_scope(instance_id=account.pk, symbol="BTC-USD", client_order_id=None)

    assert _reserve(account, fresh_until=timezone.now() - timedelta(seconds=1)) is None
    Portfolio.objects.update(day_start_date=timezone.now().date() - timedelta(days=1))
    assert _reserve(account) is None
    Portfolio.objects.update(day_start_date=timezone.now().date())
    assert _reserve(account, client_order_id="ord-1") is not None
    assert _reserve(account, client_order_id="ord-1") is None  # the earlier position is the locked path's to replay
    equity_report(instance_id=account.pk, equity=Decimal("100001"), cash_balance=None, now=timezone.now())
    assert _reserve(account, snapshot=old) is None

    assert _held(account) == (N, 1, 1)


@pytest.mark.django_db
def test_the_statement_writes_the_position_the_locked_path_writes(redis_client):
    account = funded_account("100000")
    fields = {"client_order_id": "same-fields"}
    snapshot_answer = position_check(request=order(account, **fields), user_id=account.user_id)
    other = funded_account("100000")
    locked_answer = position_check(request=order(other, **fields), user_id=other.user_id, now=timezone.now())

    def columns(position_id: int) -> dict:
        row = Position.objects.filter(pk=position_id).values().get()
        return {k: v for k, v in row.items() if k not in {"id", "instance_id"} and not k.endswith("_at")}

    assert columns(snapshot_answer.position_id) == columns(locked_answer.position_id)
    assert snapshot_answer.metrics == locked_answer.metrics
