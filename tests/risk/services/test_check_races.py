"""Races of the check's two paths (decide on a snapshot and reserve in one statement; the locked path), on real
PostgreSQL with real threads, each run on both paths where both apply (`locked`: an explicit `now`).

- A rejection and a reservation with one client_order_id, while another transaction holds the account row as every
  locking service does (FOR NO KEY UPDATE): one position, the other request a replay or a 409, no deadlock.
- A rejected check whose INSERT waits on a row (a plain FOR UPDATE on the account, as a shell could hold) fails
  closed within the lock timeout; so does a reservation.
- Every check is counted by the path that answered it, refusals included.
- Checks mixed with fills, closes, cancels, equity reports and halts: no counter drift, no ceiling passed, nothing
  approved in a halted account, one position per client_order_id.
- One client_order_id from many threads at once: one position, no database error.
"""

import threading
import time
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import TradingInstance
from nija.metrics import RISK_CHECK_PATHS
from risk import locks
from risk.errors import AccountInactive, IdempotencyConflict, StaleState
from risk.services.check import CheckInput, CheckOutcome, position_check
from tests.risk.conftest import counter_drift, deactivate_outside_the_gate, funded_account
from tests.risk.threads import lock_waiters
from trading.models import Position

pytestmark = pytest.mark.django_db(transaction=True)


def order(account, quantity: str = "0.1", **fields) -> CheckInput:
    return CheckInput(
        account_id=account.pk,
        symbol="BTC-USD",
        side="long",
        quantity=Decimal(quantity),
        price=Decimal("50000"),
        **fields,
    )


def in_thread(call, answers: list, key: str) -> threading.Thread:
    def run() -> None:
        started = time.monotonic()
        try:
            answers.append((key, call(), time.monotonic() - started))
        except Exception as exc:  # noqa: BLE001 - handed to the test
            answers.append((key, exc, time.monotonic() - started))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until(predicate, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition never reached"
        time.sleep(0.01)


def first_check_of_the_day(account) -> None:
    """The day's first check rolls the day on the locked path; later ones may take the snapshot path."""
    position_check(request=order(account, quantity="0.0001", dry_run=False), user_id=account.user_id)


@pytest.mark.parametrize("path", ["snapshot", "locked"])
def test_same_client_order_id_rejection_racing_a_reservation_answers_once_without_a_database_error(
    redis_client, settings, path
):
    """Two requests with one client_order_id, one approvable (5,000), one rejected (50,000 > max_position_size).
    Another transaction holds the account row (as any locked service does for a moment) while the approvable
    one waits in its reserving statement and the rejected one's INSERT runs. Expected: one position, the other
    request answered by its replay or a 409, no database error. With the account row locked FOR UPDATE this
    deadlocked (the rejection's foreign key check waited on the account, the reservation on the rejection)."""
    settings.RISK_LOCK_TIMEOUT_MS = settings.RISK_STATEMENT_TIMEOUT_MS = 30_000
    account = funded_account("100000", permission={"max_position_size": Decimal("6000")})
    first_check_of_the_day(account)
    now = (lambda: timezone.now()) if path == "locked" else (lambda: None)
    funded_account_ready = funded_account("100000")
    first_check_of_the_day(funded_account_ready)
    approvable = order(account, client_order_id="dup-1")
    too_big = order(account, quantity="1", client_order_id="dup-1")
    answers: list = []

    with transaction.atomic():
        locks.lock_account(account.pk)  # as every locking service holds it
        a = in_thread(
            lambda: position_check(request=approvable, user_id=account.user_id, now=now()), answers, "approvable"
        )
        wait_until(lambda: lock_waiters("risk_check_reserve" if path == "snapshot" else "risk_lock_check_scope") == 1)
        r = in_thread(lambda: position_check(request=too_big, user_id=account.user_id, now=now()), answers, "too big")
        if path == "snapshot":  # the rejection is recorded at once: its INSERT does not wait on the account row
            wait_until(lambda: Position.objects.filter(instance=account, client_order_id="dup-1").exists())
        else:
            wait_until(lambda: lock_waiters("risk_lock_check_scope") == 2)
    released = time.monotonic()
    neighbour = funded_account_ready
    n = in_thread(lambda: position_check(request=order(neighbour), user_id=neighbour.user_id), answers, "neighbour")
    a.join(60)
    r.join(60)
    n.join(60)
    elapsed = time.monotonic() - released
    neighbour_wait = next(seconds for key, _, seconds in answers if key == "neighbour")
    answers = [answer for answer in answers if answer[0] != "neighbour"]

    errors = [
        (key, type(answer).__name__, str(answer)[:80])
        for key, answer, _ in answers
        if isinstance(answer, DatabaseError)
    ]
    assert errors == [], f"503s after {elapsed:.2f}s (other account waited {neighbour_wait:.2f}s): {errors}"
    assert neighbour_wait < 0.9  # no deadlock held the portfolio row for deadlock_timeout (1 s)
    kinds = sorted(type(answer).__name__ for _, answer, _ in answers)
    assert kinds in (["CheckOutcome", "IdempotencyConflict"], ["CheckOutcome", "CheckOutcome"])
    assert Position.objects.filter(instance=account, client_order_id="dup-1").count() == 1
    assert counter_drift() == []


@pytest.mark.parametrize("path", ["snapshot", "locked"])
def test_a_rejected_check_waiting_on_a_held_account_row_fails_closed_within_the_lock_timeout(
    redis_client, settings, path
):
    """RISK_LOCK_TIMEOUT_MS bounds every wait of the gate (fail closed: 503). A rejected check takes no lock of its
    own, but its foreign key to the account takes FOR KEY SHARE on the account row, which waits behind a plain FOR
    UPDATE (no service takes one; a shell could): the INSERT runs with the lock timeout, so it answers."""
    settings.RISK_LOCK_TIMEOUT_MS = 300
    settings.RISK_STATEMENT_TIMEOUT_MS = 600
    account = funded_account("100000", permission={"max_position_size": Decimal("6000")})
    first_check_of_the_day(account)
    too_big = order(account, quantity="1")
    now = (lambda: timezone.now()) if path == "locked" else (lambda: None)
    answers: list = []

    with transaction.atomic():
        TradingInstance.objects.select_for_update().get(pk=account.pk)
        thread = in_thread(lambda: position_check(request=too_big, user_id=account.user_id, now=now()), answers, "r")
        thread.join(3)  # ten times the lock timeout
        answered_in_time = list(answers)
    thread.join(30)

    assert answered_in_time, f"no answer after 3 s with a 300 ms lock timeout; later: {answers}"
    assert isinstance(answered_in_time[0][1], DatabaseError), answered_in_time  # the API answers it 503
    assert not Position.objects.filter(instance=account, quantity=1).exists()


@pytest.mark.parametrize("path", ["snapshot", "locked"])
@pytest.mark.parametrize("refusal", ["inactive", "stale", "conflict"])
def test_every_check_is_counted_by_path_refusals_included(redis_client, path, refusal):
    """nija_risk_check_paths_total counts every check by the path that answered it, its refusals (403, 409, 503)
    included."""
    account = funded_account("100000")
    first_check_of_the_day(account)
    request = order(account, client_order_id="c-1")
    if refusal == "inactive":
        deactivate_outside_the_gate(account, "account")
        expected = AccountInactive
    elif refusal == "stale":
        TradingInstance.objects.filter(pk=account.pk).update(
            equity_reported_at=timezone.now() - timezone.timedelta(days=1)
        )
        expected = StaleState
    else:
        position_check(request=request, user_id=account.user_id)
        request = order(account, quantity="0.2", client_order_id="c-1")
        expected = IdempotencyConflict
    before = sum(RISK_CHECK_PATHS.labels(p)._value.get() for p in ("snapshot", "fallback", "locked"))

    with pytest.raises(expected):
        position_check(request=request, user_id=account.user_id, now=timezone.now() if path == "locked" else None)

    assert sum(RISK_CHECK_PATHS.labels(p)._value.get() for p in ("snapshot", "fallback", "locked")) == before + 1


def test_a_reservation_waiting_on_a_held_account_row_fails_closed_within_the_lock_timeout(redis_client, settings):
    """The reserving statement's lock_timeout (set by the first statement of its multi-statement query) applies."""
    settings.RISK_LOCK_TIMEOUT_MS = 300
    settings.RISK_STATEMENT_TIMEOUT_MS = 600
    account = funded_account("100000")
    first_check_of_the_day(account)
    answers: list = []
    with transaction.atomic():
        locks.lock_account(account.pk)
        thread = in_thread(lambda: position_check(request=order(account), user_id=account.user_id), answers, "a")
        thread.join(3)
        answered_in_time = list(answers)
    thread.join(30)
    assert answered_in_time, "no answer within 3 s"
    assert isinstance(answered_in_time[0][1], DatabaseError), answered_in_time
    assert "lock timeout" in str(answered_in_time[0][1])
    assert Position.objects.filter(instance=account).count() == 1  # only the first check's
    assert counter_drift() == []


def test_checks_mixed_with_fills_closes_cancels_equity_reports_and_halts_keep_counters_and_caps(redis_client, settings):
    """8 threads a round, 16 rounds: 5 snapshot-path checks (two of them one retry pair sharing a client_order_id),
    an equity report (same equity, new time: every snapshot before it no longer holds), a fill/close/cancel of a
    held position, and a halt or resume of account B. Every round: no counter drift, no account above its 10,000
    ceiling (plus what this test's fills of released positions added without a check), nothing approved or pending
    in B once its halt committed."""
    import random

    from risk.models import RiskLimits
    from risk.services.equity import equity_report
    from risk.services.lifecycle import CloseInput, FillInput, position_cancel, position_close, position_fill
    from risk.services.trading_state import trading_halt, trading_resume
    from tests.accounts.factories import OperatorFactory
    from tests.risk.threads import Crowd

    settings.RISK_LOCK_TIMEOUT_MS = settings.RISK_STATEMENT_TIMEOUT_MS = 30_000
    rng = random.Random(4)
    a, b = funded_account("100000"), funded_account("100000")
    for account in (a, b):
        RiskLimits.objects.create(instance=account, max_account_exposure_pct=Decimal("0.10"))
        first_check_of_the_day(account)
    operator = OperatorFactory()
    cap = Decimal("10000")

    def check(account, quantity="0.04", coid=None):
        request = order(account, quantity=quantity, client_order_id=coid)
        return lambda: position_check(request=request, user_id=account.user_id)

    # A fill of a position whose unfilled rest was released (a cancel of the rest, b's halt) adds exposure without a
    # check, by design (the exchange filled it; a fill_after_release warning says so): the ceiling holds for what
    # the checks reserved, plus what such fills added. Counted for every fill of this test whose position is
    # released after its round (the release may have come after the fill: then the bound is merely looser).
    unchecked = {a.pk: Decimal(0), b.pk: Decimal(0)}
    issued_fill: dict = {}

    def lifecycle(round_no):
        issued_fill.clear()
        held = list(
            Position.objects.filter(status__in=["approved", "open"], filled_quantity__lt=1).values_list(
                "pk", "instance_id", "status", "quantity", "filled_quantity"
            )
        )
        if not held:
            return lambda: None
        pk, instance_id, status, quantity, filled = rng.choice(held)
        kind = round_no % 3
        if kind == 0 and filled < quantity:
            fill = FillInput(
                exchange_order_id=f"x-{round_no}", quantity=(quantity - filled) / 2, price=Decimal("50000")
            )
            issued_fill.update(pk=pk, instance_id=instance_id, amount=fill.quantity * fill.price)
            return lambda: position_fill(position_id=pk, instance_id=instance_id, fill=fill)
        if kind == 1 and status == "open":
            close = CloseInput(client_close_id=f"c-{round_no}", exit_price=Decimal("49000"))
            return lambda: position_close(position_id=pk, instance_id=instance_id, close=close)
        return lambda: position_cancel(position_id=pk, instance_id=instance_id)

    halted = False
    paths_before = [RISK_CHECK_PATHS.labels(p)._value.get() for p in ("snapshot", "fallback")]
    decisions: dict = {}
    with Crowd(8) as crowd:
        for round_no in range(16):
            state_change = (
                (lambda: trading_resume(instance_id=b.pk, reason="r", actor=operator, now=timezone.now()))
                if halted
                else (lambda: trading_halt(instance_id=b.pk, mode="halted", reason="h", actor=None, now=timezone.now()))
            )
            coid = f"pair-{round_no}"
            calls = [
                check(a),
                check(b),
                check(a, "0.06"),
                check(b, "0.02", coid),
                check(b, "0.02", coid),
                lambda: equity_report(
                    instance_id=a.pk, equity=Decimal("100000"), cash_balance=None, now=timezone.now()
                ),
                lifecycle(round_no),
                state_change,
            ]
            order_of_calls = list(range(8))
            rng.shuffle(order_of_calls)
            results = crowd.run([calls[i] for i in order_of_calls])
            halted = not halted
            for r in results:
                key = r.decision if isinstance(r, CheckOutcome) else type(r).__name__
                decisions[key] = decisions.get(key, 0) + 1
            unexpected = [
                r for r in results if isinstance(r, Exception) and type(r).__name__ not in {"IllegalTransition"}
            ]
            assert unexpected == [], f"round {round_no}: {unexpected}"
            assert counter_drift() == [], f"round {round_no}"
            filled = issued_fill and not isinstance(results[order_of_calls.index(6)], Exception)
            if filled and Position.objects.filter(pk=issued_fill["pk"], unfilled_released_at__isnull=False).exists():
                unchecked[issued_fill["instance_id"]] += issued_fill["amount"]
            for account in (a, b):
                account.refresh_from_db()
                ceiling = cap + unchecked[account.pk]
                assert account.exposure <= ceiling, f"round {round_no}: account {account.pk} holds {account.exposure}"
            if halted:
                assert not Position.objects.filter(instance=b, status__in=["approved", "pending_approval"]).exists()
            pair = list(Position.objects.filter(client_order_id=coid).values_list("pk", flat=True))
            assert len(pair) == 1
    paths = [
        RISK_CHECK_PATHS.labels(p)._value.get() - before
        for p, before in zip(("snapshot", "fallback"), paths_before, strict=True)
    ]
    assert paths[0] > 0, (paths, decisions)  # both paths were taken
    assert paths[1] > 0, (paths, decisions)


@pytest.mark.parametrize("bodies", ["same rejected body", "approvable and rejected bodies"])
def test_one_client_order_id_sent_by_many_threads_at_once_yields_one_position_and_no_database_error(
    redis_client, settings, bodies
):
    """No lock holder arranged: threads released together, 4 accounts x 2 requests with one client_order_id each,
    30 rounds. Expected: one position per client_order_id, every other answer a replay or a 409."""
    from tests.risk.threads import Crowd

    settings.RISK_LOCK_TIMEOUT_MS = settings.RISK_STATEMENT_TIMEOUT_MS = 30_000
    accounts = [funded_account("100000", permission={"max_position_size": Decimal("6000")}) for _ in range(4)]
    for account in accounts:
        first_check_of_the_day(account)
    errors: list = []
    with Crowd(8) as crowd:
        for round_no in range(30):
            calls = []
            for index, account in enumerate(accounts):
                coid = f"r{round_no}-a{index}"
                first = "1" if bodies == "same rejected body" else "0.001"
                for quantity in (first, "1"):
                    request = order(account, quantity=quantity, client_order_id=coid)
                    calls.append(
                        lambda request=request, account=account: position_check(
                            request=request, user_id=account.user_id
                        )
                    )
            results = crowd.run(calls)
            errors += [
                f"round {round_no}: {type(r).__name__}: {str(r)[:60]}" for r in results if isinstance(r, DatabaseError)
            ]
            assert all(isinstance(r, CheckOutcome | IdempotencyConflict | DatabaseError) for r in results), results
            for index in range(len(accounts)):
                assert Position.objects.filter(client_order_id=f"r{round_no}-a{index}").count() == 1
    assert errors == []
    assert counter_drift() == []
