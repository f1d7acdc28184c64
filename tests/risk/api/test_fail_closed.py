"""The risk gate fails closed: when it cannot read its state it answers 503 with a reason and approves nothing.

Redis stopped (the suite's own test server, shut down for real and restarted), PostgreSQL unreachable (the
connection pointed at a closed port, as tests/monitoring/test_health.py does), a row lock held by another
connection past RISK_LOCK_TIMEOUT_MS, and an equity report older than equity_max_age. Every case asserts the
error's shape and code and that no position was written and no counter moved. Transactional tests: the
faults involve other connections (a lock holder, a connection to a closed port), which must see committed rows.
"""

import copy
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import psycopg2.errors
import pytest
from django.conf import settings
from django.db import OperationalError, connections
from django.utils import timezone
from redis import RedisError

from accounts.models import TradingInstance
from nija.cache import raw_client
from risk.errors import StaleState
from risk.models import Portfolio, SymbolExposure
from risk.services.approval import position_approve
from risk.services.check import CheckInput, position_check
from tests.accounts.factories import OperatorFactory
from tests.risk.conftest import bot_client, counter_drift, funded_account
from tests.risk.threads import rows_locked, run_in_thread
from trading.market import market_price_set
from trading.models import Position

pytestmark = pytest.mark.django_db(transaction=True)

CHECK_URL = "/api/risk/check-position"
BODY = {"symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"}


def post_check(client, account, **fields):
    return client.post(CHECK_URL, {"account_id": account.pk, **BODY, **fields}, format="json")


def assert_unavailable(response, *codes: str) -> None:
    """503, the house error shape, one of `codes`."""
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) <= {"code", "message", "fields"}
    assert body["error"]["code"] in codes
    assert body["error"]["message"]


def assert_nothing_reserved(*accounts: TradingInstance, positions: int = 0) -> None:
    """No position beyond the `positions` written before the fault, and every counter still equal to the sums."""
    assert Position.objects.count() == positions
    assert counter_drift() == []
    for account in accounts:
        account.refresh_from_db()
        assert Position.objects.filter(instance=account, status="approved").count() == account.position_count


# ---------------------------------------------------------------------------------------------- Redis
def _test_redis_port() -> int:
    """The port of the suite's own Redis (never the development server's, which this module must not stop)."""
    port = int(raw_client().connection_pool.connection_kwargs["port"])
    assert port != settings.REDIS_PORT, "the cache points at the development Redis: refusing to stop it"
    return port


def _redis_shutdown(port: int) -> None:
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "shutdown", "nosave"],
        check=False,
        capture_output=True,
        timeout=10,
    )


def _redis_start(port: int) -> None:
    env = {**os.environ, "TEST_REDIS_PORT": str(port)}
    env.pop("TEST_REDIS_URL", None)
    subprocess.run(
        ["scripts/services.sh", "start", "test-redis"],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    )
    for _ in range(50):  # the pool's connections died with the server: the next command reconnects
        try:
            raw_client().ping()
            return
        except RedisError:
            time.sleep(0.1)
    raise AssertionError(f"the test Redis on port {port} did not come back")


@contextmanager
def redis_stopped() -> Iterator[None]:
    """The suite's own test Redis, shut down (nosave) inside the block and started again after it, even on failure."""
    port = _test_redis_port()
    _redis_shutdown(port)
    try:
        with pytest.raises(RedisError):
            raw_client().ping()
        yield
    finally:
        _redis_start(port)


@pytest.fixture
def account(redis_client):
    return funded_account("100000")


def test_redis_stopped_the_checks_limiter_answers_503_first(account):
    client = bot_client(account)
    with redis_stopped():
        response = post_check(client, account)

    assert_unavailable(response, "rate_limiter_unavailable")
    assert_nothing_reserved(account)
    # and once Redis is back, the same request is approved: the 503 was the outage
    assert post_check(client, account).json()["decision"] == "approved"


def test_redis_stopped_the_check_itself_answers_503_and_approves_nothing(account, settings):
    """The limiter told to let checks through without Redis, so the view runs: the check's own reads (the mark,
    the cached permission) must refuse on their own, not read "Redis down" as "nothing stored"."""
    settings.RATE_LIMIT_FAIL_CLOSED_SCOPES = []
    client = bot_client(account)
    assert post_check(client, account).json()["decision"] == "approved"  # token and permission cached

    with redis_stopped():
        response = post_check(client, account, client_order_id="after-the-outage")

    assert_unavailable(response, "risk_state_unavailable")
    assert_nothing_reserved(account, positions=1)


def test_redis_stopped_a_check_never_falls_back_to_the_bots_price_when_a_mark_is_stored(account):
    """Below the API's limiter: the service itself must not read "Redis down" as "no mark" (it would reserve
    0.1 x 50,000 instead of 0.1 x the 60,000 mark)."""
    market_price_set(symbol="BTC-USD", price=Decimal("60000"))
    request = CheckInput(
        account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal("0.1"), price=Decimal("50000")
    )
    with redis_stopped(), pytest.raises(RedisError):
        position_check(request=request, user_id=account.user_id, now=timezone.now())

    assert_nothing_reserved(account)


# ---------------------------------------------------------------------------------------------- PostgreSQL
def _unreachable_postgresql_call(call):
    """`call()` in a fresh thread whose database connection points at a closed port (the rest of the process,
    this test's connection included, keeps the real database)."""
    databases = copy.deepcopy(connections.settings)
    databases["default"]["PORT"] = 1
    original = connections.settings
    connections.settings = databases
    try:
        return run_in_thread(call)
    finally:
        connections.settings = original


def test_postgresql_unreachable_after_warm_caches_answers_503_risk_state_unavailable(account):
    client = bot_client(account)
    assert post_check(client, account).json()["decision"] == "approved"  # token and permission now cached

    response = _unreachable_postgresql_call(lambda: post_check(client, account))

    assert_unavailable(response, "risk_state_unavailable")
    assert_nothing_reserved(account, positions=1)


def test_postgresql_unreachable_with_a_cold_token_cache_answers_503_and_approves_nothing(account, redis_client):
    client = bot_client(account)
    redis_client.flushdb()  # the token, the permission: nothing cached, so authentication needs PostgreSQL too

    response = _unreachable_postgresql_call(lambda: post_check(client, account))

    assert_unavailable(response, "risk_state_unavailable")
    assert_nothing_reserved(account)


# ---------------------------------------------------------------------------------------------- lock waits
def _lock_portfolio() -> None:
    list(Portfolio.objects.select_for_update().filter(pk=Portfolio.SINGLETON_ID))


def _lock_symbol() -> None:
    list(SymbolExposure.objects.select_for_update().filter(pk="BTC-USD"))


def _lock_account_of(account: TradingInstance):
    return lambda: list(TradingInstance.objects.select_for_update().filter(pk=account.pk))


@pytest.fixture
def short_lock_timeout(settings) -> None:
    """A lock wait gives up after 200 ms; statements may run far longer, so only the lock timeout can end it
    (and the holder keeps its lock until the answer is in: an answer at all means the wait gave up)."""
    settings.RISK_LOCK_TIMEOUT_MS = 200
    settings.RISK_STATEMENT_TIMEOUT_MS = 120_000


def test_a_lock_wait_past_the_timeout_answers_503_and_approves_nothing(account, short_lock_timeout):
    client = bot_client(account)

    with rows_locked(_lock_portfolio):
        response = post_check(client, account)

    assert_unavailable(response, "risk_state_unavailable")
    assert_nothing_reserved(account)
    # the lock released, the same check goes through
    assert post_check(client, account).json()["decision"] == "approved"


@pytest.mark.parametrize("held", ["portfolio", "symbol", "account"])
def test_every_row_of_the_lock_scope_is_waited_on_only_up_to_the_lock_timeout(account, short_lock_timeout, held):
    request = CheckInput(
        account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal("0.1"), price=Decimal("50000")
    )
    assert position_check(request=request, user_id=account.user_id, now=timezone.now()).decision == "approved"
    lock = {"portfolio": _lock_portfolio, "symbol": _lock_symbol, "account": _lock_account_of(account)}[held]

    with rows_locked(lock), pytest.raises(OperationalError) as raised:
        position_check(request=request, user_id=account.user_id, now=timezone.now())

    assert isinstance(raised.value.__cause__, psycopg2.errors.LockNotAvailable)
    assert_nothing_reserved(account, positions=1)


# ---------------------------------------------------------------------------------------------- stale equity
def test_equity_older_than_equity_max_age_answers_503_stale_state(account):
    client = bot_client(account)
    TradingInstance.objects.filter(pk=account.pk).update(
        equity_reported_at=timezone.now() - timedelta(minutes=15, seconds=1)  # the default equity_max_age: 15 min
    )

    response = post_check(client, account)

    assert_unavailable(response, "stale_state")
    assert_nothing_reserved(account)


def test_an_account_that_never_reported_equity_answers_503_stale_state(account):
    client = bot_client(account)
    TradingInstance.objects.filter(pk=account.pk).update(equity_reported_at=None)

    response = post_check(client, account)

    assert_unavailable(response, "stale_state")
    assert_nothing_reserved(account)


def test_equity_exactly_equity_max_age_old_is_still_fresh(account):
    now = timezone.now()
    TradingInstance.objects.filter(pk=account.pk).update(equity_reported_at=now - timedelta(minutes=15))
    request = CheckInput(
        account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal("0.1"), price=Decimal("50000")
    )

    assert position_check(request=request, user_id=account.user_id, now=now).decision == "approved"
    with pytest.raises(StaleState):
        position_check(request=request, user_id=account.user_id, now=now + timedelta(microseconds=1))
    assert_nothing_reserved(account, positions=1)


def test_redis_stopped_an_approval_fails_closed_instead_of_pricing_without_the_mark(redis_client):
    """Approval re-runs the rules at the current mark: with Redis down it must not fall back to the bot's price."""
    account = funded_account("200000")
    market_price_set(symbol="BTC-USD", price=Decimal("60000"))
    request = CheckInput(
        account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal("0.45"), price=Decimal("50000")
    )
    outcome = position_check(request=request, user_id=account.user_id, now=timezone.now())
    assert (outcome.decision, outcome.notional) == ("pending_approval", Decimal("27000.00000000"))

    with redis_stopped(), pytest.raises(RedisError):
        position_approve(position_id=outcome.position_id, actor=OperatorFactory(), reason="ok", now=timezone.now())

    position = Position.objects.get(pk=outcome.position_id)
    assert (position.status, position.notional) == ("pending_approval", Decimal("27000.00000000"))
