"""Check-and-reserve is one atomic step: simultaneous checks can never together pass a limit.

Transactional tests (every check commits for real, as in production) against real PostgreSQL: 64 threads call
`position_check` at the same instant (released by a barrier), in at least 20 rounds, against an account or a
portfolio whose limits admit exactly K more positions. Every round must approve exactly K, reject the rest for
the one rule that binds, and leave every counter equal to the sum over the positions it counts. The same
`client_order_id` sent by 20 threads at once yields one position, and every other answer is its replay.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from accounts.models import TokenKind
from nija.cache import raw_client
from risk.errors import IdempotencyConflict
from risk.models import Portfolio, RiskLimits
from risk.services.check import CheckInput, CheckOutcome, position_check
from risk.services.lifecycle import position_cancel
from tests.accounts.factories import issue_token
from tests.risk.conftest import books_drift, counter_drift, funded_account
from tests.risk.threads import Crowd, raised
from trading.market import market_price_set
from trading.models import Position

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 64
ROUNDS = 20
REPLAY_THREADS = 20
# K for each round: the single-slot edge, small and large K, and K = 0 (nothing fits: all 64 rejected).
K_BY_ROUND = [10, 1, 7, 3, 12, 5, 0, 9, 2, 11, 6, 4, 8, 10, 1, 13, 7, 2, 5, 3]
assert len(K_BY_ROUND) == ROUNDS


# ---------------------------------------------------------------------------------------------- helpers
@pytest.fixture
def crowd() -> Iterator[Crowd]:
    with Crowd(THREADS) as threads:
        yield threads


@pytest.fixture
def roomy_portfolio() -> None:
    """Portfolio-wide limits that never bind, so the account's own limit is the only one in play."""
    RiskLimits.objects.filter(instance__isnull=True).update(
        max_total_positions=1_000_000,
        max_portfolio_exposure_pct=Decimal("10"),
        max_symbol_exposure_pct=Decimal("10"),
    )


@pytest.fixture(autouse=True)
def redis_pool_fits_the_crowd() -> Iterator[None]:
    """The cache's Redis pool holds at most REDIS_MAX_CONNECTIONS (50) connections per process and raises past
    that. These tests run 64 checks in one process (production spreads them over workers with fewer threads
    each), so for them the pool gets room for every thread."""
    pool = raw_client().connection_pool
    before = pool.max_connections
    pool.max_connections = max(before, 2 * THREADS)
    yield
    pool.max_connections = before


@pytest.fixture(autouse=True)
def long_lock_waits(settings) -> None:
    """64 checks queue on the portfolio row; on a loaded machine the last may wait past the 2 s default. The
    lock timeout has its own tests (tests/risk/api/test_fail_closed.py); here every check must get its answer."""
    settings.RISK_LOCK_TIMEOUT_MS = 30_000
    settings.RISK_STATEMENT_TIMEOUT_MS = 30_000


def check(account, *, quantity: str = "1", price: str = "100", symbol: str = "BTC-USD", **fields) -> CheckInput:
    return CheckInput(
        account_id=account.pk,
        symbol=symbol,
        side="long",
        quantity=Decimal(quantity),
        price=Decimal(price),
        **fields,
    )


_PATH = {"explicit_time": False}


@pytest.fixture(autouse=True, params=["snapshot", "locked"])
def check_path(request) -> str:
    """Every test runs on both paths of a check: `snapshot` (no time given, as the API calls it: decided on an
    unlocked read, reserved by the one statement that re-verifies it) and `locked` (an explicit time: the rows
    locked first, the path a snapshot that no longer holds falls back to)."""
    _PATH["explicit_time"] = request.param == "locked"
    return request.param


def calling(account, request: CheckInput) -> Callable[[], CheckOutcome]:
    user_id = account.user_id
    explicit_time = _PATH["explicit_time"]
    return lambda: position_check(request=request, user_id=user_id, now=timezone.now() if explicit_time else None)


def reserve(account, request: CheckInput) -> None:
    """One sequential check that must be approved (the positions already held before a round)."""
    assert calling(account, request)().decision == "approved"


def decisions(results: list) -> Counter:
    return Counter(result.decision for result in results)


def rejection_codes(results: list) -> set[tuple[str, ...]]:
    return {tuple(reason["code"] for reason in r.reasons) for r in results if r.decision == "rejected"}


def assert_exactly(results: list, *, approved: int, rejected_for: str) -> None:
    """No call failed, `approved` were approved, every other one was rejected for `rejected_for` alone, and each
    answer names its own recorded position."""
    assert raised(results) == []
    assert decisions(results) == Counter({"approved": approved, "rejected": len(results) - approved}) - Counter()
    if approved < len(results):
        assert rejection_codes(results) == {(rejected_for,)}
    assert len({result.position_id for result in results}) == len(results)
    assert not any(result.replayed for result in results)


# ---------------------------------------------------------------------------------------------- account
def test_an_account_count_limit_admits_exactly_k_of_64_simultaneous_checks_every_round(crowd, roomy_portfolio):
    for round_no, k in enumerate(K_BY_ROUND):
        held = round_no % 3 + (k == 0)  # max_open_positions is at least 1
        account = funded_account("100000", permission={"max_open_positions": held + k})
        for _ in range(held):
            reserve(account, check(account))

        results = crowd.run([calling(account, check(account))] * THREADS)

        assert_exactly(results, approved=k, rejected_for="max_open_positions")
        account.refresh_from_db()
        assert (account.position_count, account.exposure) == (held + k, Decimal(100) * (held + k))
        statuses = Counter(Position.objects.filter(instance=account).values_list("status", flat=True))
        assert statuses == Counter({"approved": held + k, "rejected": THREADS - k}) - Counter()
        assert counter_drift() == []
        assert books_drift() == []


def test_an_account_exposure_limit_admits_exactly_k_of_64_simultaneous_checks_every_round(
    crowd, roomy_portfolio, redis_client
):
    # The fresh mark (900) is above the bot's price (800): every reservation is n = 900, so a check that missed
    # the mark would reserve 800 and let one more through.
    for round_no in range(ROUNDS):
        # Set every round: on a loaded machine the 20 rounds outlast MARKET_PRICE_TTL (60 s), and an expired mark
        # priced the last rounds at 800 (one more admitted).
        market_price_set(symbol="ETH-USD", price=Decimal("900"))
        fits = 10 + round_no % 5  # equity 1,000 x fits: 0.90 x equity admits exactly `fits` of 900, to the cent
        held = round_no % 4
        account = funded_account(Decimal(1000 * fits))
        for _ in range(held):
            reserve(account, check(account, symbol="ETH-USD", price="800"))

        results = crowd.run([calling(account, check(account, symbol="ETH-USD", price="800"))] * THREADS)

        assert raised(results) == []
        assert {result.notional for result in results} == {Decimal(900)}  # every check priced at the fresh mark
        assert_exactly(results, approved=fits - held, rejected_for="account_exposure")
        account.refresh_from_db()
        assert account.exposure == Decimal(900 * fits) == Decimal("0.90") * account.equity
        assert account.position_count == fits
        assert counter_drift() == []
        assert books_drift() == []


# ---------------------------------------------------------------------------------------------- portfolio
PORTFOLIO_ACCOUNTS = 8
ACCOUNT_EQUITY = Decimal("100000")
NOTIONAL = Decimal("4000")


@pytest.mark.parametrize(
    ("limit", "rejected_for", "rounds"),
    [("exposure", "portfolio_exposure", ROUNDS), ("count", "max_open_positions", 5)],  # count: a shorter extra
)
def test_a_portfolio_limit_admits_exactly_k_of_64_checks_across_8_accounts_every_round(
    crowd, limit, rejected_for, rounds
):
    accounts = [funded_account(ACCOUNT_EQUITY) for _ in range(PORTFOLIO_ACCOUNTS)]
    portfolio = Portfolio.objects.get()
    assert (portfolio.equity, portfolio.exposure) == (ACCOUNT_EQUITY * PORTFOLIO_ACCOUNTS, 0)
    request_of = {account.pk: check(account, price=str(NOTIONAL)) for account in accounts}
    calls = [calling(account, request_of[account.pk]) for account in accounts] * (THREADS // PORTFOLIO_ACCOUNTS)

    for round_no, k in enumerate(K_BY_ROUND[:rounds]):
        held = round_no % 3
        admitting(limit, positions=held + k, equity=portfolio.equity)
        for account in accounts[:held]:
            reserve(account, request_of[account.pk])

        results = crowd.run(calls)

        assert_exactly(results, approved=k, rejected_for=rejected_for)
        portfolio.refresh_from_db()
        assert (portfolio.position_count, portfolio.exposure) == (held + k, NOTIONAL * (held + k))
        assert counter_drift() == []
        assert books_drift() == []
        release_everything(now=timezone.now())


def admitting(limit: str, *, positions: int, equity: Decimal) -> None:
    """Set the portfolio default limits so that exactly `positions` positions of NOTIONAL fit in the portfolio
    (the account limits stay far away: 0.90 x 100,000 and 0.20 x 100,000 per account)."""
    if limit == "exposure":
        pct = NOTIONAL * positions / equity
        assert pct == pct.quantize(Decimal("0.000001"))  # the limit is stored exactly
        fields = {"max_portfolio_exposure_pct": pct, "max_total_positions": 1_000_000}
    else:
        fields = {"max_portfolio_exposure_pct": Decimal("10"), "max_total_positions": positions}
    RiskLimits.objects.filter(instance__isnull=True).update(max_symbol_exposure_pct=Decimal("10"), **fields)


def release_everything(*, now) -> None:
    """Cancel every held reservation through the service, so the next round starts from an empty portfolio."""
    for position_id in Position.objects.filter(status="approved").values_list("pk", flat=True):
        position_cancel(position_id=position_id, instance_id=None, now=now)
    portfolio = Portfolio.objects.get()
    assert (portfolio.position_count, portfolio.exposure) == (0, 0)


# ---------------------------------------------------------------------------------------------- idempotency
@pytest.fixture
def replay_crowd() -> Iterator[Crowd]:
    with Crowd(REPLAY_THREADS) as threads:
        yield threads


def test_one_client_order_id_sent_20_times_at_once_reserves_once_every_round(replay_crowd, roomy_portfolio):
    account = funded_account("100000", permission={"max_position_size": Decimal("10000")})
    expected_exposure = Decimal(0)
    for round_no in range(ROUNDS):
        # every fourth round the body is too large (max_position_size): the one recorded answer is a rejection
        quantity = "3" if round_no % 4 == 3 else "1"
        request = check(account, quantity=quantity, price="5000", client_order_id=f"order-{round_no}")

        results = replay_crowd.run([calling(account, request)] * REPLAY_THREADS)

        assert raised(results) == []
        originals = [result for result in results if not result.replayed]
        assert len(originals) == 1
        original = originals[0]
        answered = (original.position_id, original.decision, original.notional, original.reasons)
        assert [(r.position_id, r.decision, r.notional, r.reasons) for r in results] == [answered] * REPLAY_THREADS
        assert original.decision == ("rejected" if quantity == "3" else "approved")
        assert Position.objects.filter(instance=account, client_order_id=request.client_order_id).count() == 1
        expected_exposure += Decimal(5000) if original.decision == "approved" else 0
        account.refresh_from_db()
        assert account.exposure == expected_exposure
        assert counter_drift() == []
        assert books_drift() == []
    assert Position.objects.filter(instance=account).count() == ROUNDS


def test_one_client_order_id_with_two_bodies_at_once_records_one_and_refuses_the_other(replay_crowd, roomy_portfolio):
    account = funded_account("100000")
    for round_no in range(ROUNDS // 2):
        client_order_id = f"split-{round_no}"
        bodies = [check(account, quantity=q, client_order_id=client_order_id) for q in ("1", "2")]
        calls = [calling(account, bodies[slot % 2]) for slot in range(REPLAY_THREADS)]

        results = replay_crowd.run(calls)

        position = Position.objects.get(instance=account, client_order_id=client_order_id)
        winner = 0 if position.quantity == 1 else 1
        for slot, result in enumerate(results):
            if slot % 2 == winner:
                assert isinstance(result, CheckOutcome)
                assert result.position_id == position.pk
            else:
                assert isinstance(result, IdempotencyConflict)
        assert sum(isinstance(r, CheckOutcome) and not r.replayed for r in results) == 1
        assert counter_drift() == []
        assert books_drift() == []


# ---------------------------------------------------------------------------------------------- over HTTP
def test_over_real_http_64_simultaneous_requests_approve_exactly_k(crowd, live_server, relaxed_rate_limits):
    k = 10
    account = funded_account("100000", permission={"max_open_positions": k})
    headers = {"Authorization": f"Bearer {issue_token(TokenKind.BOT, instance=account)}"}
    body = {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": "1", "price": "100"}
    url = f"{live_server.url}/api/risk/check-position"
    # One kept-alive connection per thread, opened one by one beforehand (a dry run writes nothing): 64 connects
    # at once would overflow the test server's listen backlog, and the barrier is meant to race the checks.
    sessions = [requests.Session() for _ in range(THREADS)]
    for session in sessions:
        warm = session.post(url, json=body | {"dry_run": True}, headers=headers, timeout=30)
        assert warm.status_code == 200
        assert warm.json()["position_id"] is None
        assert warm.headers.get("Connection", "").lower() != "close"  # the connection stays open for the race

    def post(session: requests.Session) -> Callable[[], tuple[int, dict]]:
        def call() -> tuple[int, dict]:
            response = session.post(url, json=body, headers=headers, timeout=60)
            return response.status_code, response.json()

        return call

    try:
        results = crowd.run([post(session) for session in sessions])
    finally:
        for session in sessions:
            session.close()

    assert raised(results) == []
    assert Counter(status for status, _ in results) == Counter({200: THREADS})
    assert Counter(answer["decision"] for _, answer in results) == Counter({"approved": k, "rejected": THREADS - k})
    account.refresh_from_db()
    assert (account.position_count, account.exposure) == (k, Decimal(100 * k))
    assert Position.objects.filter(instance=account).count() == THREADS
    assert counter_drift() == []
    assert books_drift() == []
