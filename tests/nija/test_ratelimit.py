"""The sliding-window limiter and the API throttle, against the suite's real Redis."""

import socket
import threading
import time
from collections import Counter

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import AnonymousUser, Group
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from accounts.models import SubscriptionTier, TokenKind
from nija import ratelimit
from nija.api.throttling import request_identity, request_tier
from nija.ratelimit import SLIDING_WINDOW, rate_limit_check, rate_limit_hit
from tests.accounts.factories import OperatorFactory, UserFactory, issue_token
from trading.roles import market_price_permission_grant

THREADS = 16
CALLS_PER_THREAD = 20
LIMIT = 50


def _dead_redis_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def dead_redis(settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": _dead_redis_url()}}


def _hammer(call) -> list:
    """THREADS threads x CALLS_PER_THREAD calls of `call()`, released together; every result."""
    barrier = threading.Barrier(THREADS)
    results: list = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        mine = [call() for _ in range(CALLS_PER_THREAD)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# ---------------------------------------------------------------------------------------------- the limiter


@pytest.mark.slow
def test_16_threads_x_20_calls_against_50_allow_exactly_50_every_round(redis_client):
    for round_number in range(20):
        identifier = f"race:{round_number}"

        results = _hammer(lambda identifier=identifier: rate_limit_check(identifier, LIMIT, 60))

        assert len(results) == THREADS * CALLS_PER_THREAD
        allowed = [remaining for ok, remaining in results if ok]
        assert len(allowed) == LIMIT, f"round {round_number}"
        assert sorted(allowed) == list(range(LIMIT))  # each remaining count handed out exactly once
        assert redis_client.zcard(f"nija:rate:{identifier}") == LIMIT


def test_after_the_window_slides_a_slot_frees_when_the_oldest_entry_leaves(redis_client):
    window_ms = 1500
    first = rate_limit_hit("slide", 3, window_ms)
    time.sleep(0.6)
    assert rate_limit_hit("slide", 3, window_ms).allowed
    assert rate_limit_hit("slide", 3, window_ms).allowed

    denied = rate_limit_hit("slide", 3, window_ms)
    assert (first.allowed, first.remaining) == (True, 2)
    assert (denied.allowed, denied.remaining) == (False, 0)
    # The first entry leaves 1500 ms after it was made, ~600 ms ago.
    assert 800 <= denied.retry_after_ms <= 920

    time.sleep((denied.retry_after_ms - 150) / 1000)
    assert not rate_limit_hit("slide", 3, window_ms).allowed  # 150 ms early: still full

    time.sleep(0.2)
    reopened = rate_limit_hit("slide", 3, window_ms)
    assert (reopened.allowed, reopened.remaining) == (True, 0)
    # Only one slot freed: the other two entries are still inside the window.
    after = rate_limit_hit("slide", 3, window_ms)
    assert not after.allowed
    assert 350 <= after.retry_after_ms <= 650


def test_denied_calls_add_nothing_and_the_key_expires_with_its_window(redis_client):
    for _ in range(10):
        rate_limit_hit("bounded", 2, 1000)

    assert redis_client.zcard("nija:rate:bounded") == 2
    assert 0 < redis_client.pttl("nija:rate:bounded") <= 1000
    time.sleep(1.05)
    assert redis_client.exists("nija:rate:bounded") == 0


def test_members_are_unique_in_a_tight_loop(redis_client):
    decisions = [rate_limit_hit("tight", 1000, 60_000) for _ in range(500)]
    assert all(decision.allowed for decision in decisions)
    assert redis_client.zcard("nija:rate:tight") == 500


def test_a_limit_of_zero_denies_with_a_full_window_retry(redis_client):
    decision = rate_limit_hit("closed", 0, 2000)
    assert (decision.allowed, decision.remaining, decision.retry_after_ms) == (False, 0, 2000)
    assert decision.retry_after_seconds == 2
    assert redis_client.exists("nija:rate:closed") == 0


def test_the_script_is_reloaded_after_a_script_flush(redis_client):
    rate_limit_hit("reload", 5, 1000)
    redis_client.script_flush()
    assert redis_client.script_exists(SLIDING_WINDOW.sha) == [False]

    assert rate_limit_hit("reload", 5, 1000).remaining == 3
    assert redis_client.script_exists(SLIDING_WINDOW.sha) == [True]


def test_the_function_form_fails_open_logged_and_counted(dead_redis, caplog):
    before = ratelimit.fail_open_count()

    assert rate_limit_check("anyone", 5, 60) == (True, 5)

    assert ratelimit.fail_open_count() == before + 1
    assert "rate_limiter_unavailable_fail_open" in caplog.text


# ---------------------------------------------------------------------------------------------- the throttle

SMALL_LIMITS = {
    "default": {"anonymous": (2, 60), "free": (3, 60), "pro": (5, 60), "operator": (4, 60)},
    "market_write": {"free": (2, 60)},
}


@pytest.fixture
def small_limits(settings, redis_client):
    settings.RATE_LIMITS = SMALL_LIMITS
    settings.RATE_LIMIT_FAIL_CLOSED_SCOPES = ["market_write"]
    return redis_client


def _get_market(client: APIClient):
    return client.get("/api/market/BTC-USD")


def _get_market_with(client: APIClient, raw_token: str):
    return client.get("/api/market/BTC-USD", HTTP_AUTHORIZATION=f"Bearer {raw_token}")


def _drf_request(**meta):
    request = Request(APIRequestFactory().get("/api/x", **meta))
    request.user = AnonymousUser()
    return request


@pytest.mark.django_db
def test_under_the_limit_every_response_carries_limit_and_remaining(small_limits):
    client = APIClient()
    client.force_authenticate(UserFactory(subscription_tier=SubscriptionTier.FREE))

    responses = [_get_market(client) for _ in range(3)]

    assert [r.status_code for r in responses] == [404, 404, 404]  # no price yet: the view ran
    assert [r["X-RateLimit-Limit"] for r in responses] == ["3", "3", "3"]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0"]


@pytest.mark.django_db
def test_over_the_limit_429_with_retry_after_from_the_oldest_entry(small_limits):
    user = UserFactory(subscription_tier=SubscriptionTier.FREE)
    client = APIClient()
    client.force_authenticate(user)
    for _ in range(3):
        _get_market(client)

    response = _get_market(client)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert response["X-RateLimit-Limit"] == "3"
    assert response["X-RateLimit-Remaining"] == "0"
    assert response["Retry-After"] in {"59", "60"}
    assert small_limits.zcard(f"nija:rate:default:user:{user.pk}") == 3


@pytest.mark.django_db
def test_the_retry_after_shrinks_as_the_oldest_entry_ages(settings, redis_client):
    settings.RATE_LIMITS = {"default": {"free": (1, 3)}}
    client = APIClient()
    client.force_authenticate(UserFactory(subscription_tier=SubscriptionTier.FREE))
    _get_market(client)
    time.sleep(1.2)

    response = _get_market(client)

    assert response.status_code == 429
    assert response["Retry-After"] == "2"  # 1.8 s left, rounded up


@pytest.mark.django_db
def test_the_limit_follows_the_subscription_tier_and_operators_have_their_own(small_limits):
    free, pro, operator = APIClient(), APIClient(), APIClient()
    free.force_authenticate(UserFactory(subscription_tier=SubscriptionTier.FREE))
    pro.force_authenticate(UserFactory(subscription_tier=SubscriptionTier.PRO))
    operator.force_login(OperatorFactory(subscription_tier=SubscriptionTier.FREE))

    assert _get_market(free)["X-RateLimit-Limit"] == "3"
    assert _get_market(pro)["X-RateLimit-Limit"] == "5"
    assert _get_market(operator)["X-RateLimit-Limit"] == "4"


@pytest.mark.django_db
def test_a_tier_missing_from_a_scope_uses_its_free_row(small_limits):
    client = APIClient()
    client.force_authenticate(UserFactory(subscription_tier=SubscriptionTier.ENTERPRISE))
    assert _get_market(client)["X-RateLimit-Limit"] == "3"


@pytest.mark.django_db
def test_each_token_has_its_own_window_even_for_one_user(small_limits):
    user = UserFactory(subscription_tier=SubscriptionTier.FREE)
    first = issue_token(TokenKind.BOT, user=user)
    second = issue_token(TokenKind.BOT, user=user)
    client = APIClient()

    for _ in range(3):
        assert _get_market_with(client, first).status_code == 404
    assert _get_market_with(client, first).status_code == 429

    response = _get_market_with(client, second)
    assert response.status_code == 404
    assert response["X-RateLimit-Remaining"] == "2"


@pytest.fixture
def market_writer(db) -> object:
    """A staff user allowed to move the mark (risk_admin, which trading.roles grants the permission)."""
    market_price_permission_grant(django_apps)
    operator = OperatorFactory(subscription_tier=SubscriptionTier.FREE)
    operator.groups.add(Group.objects.get(name="risk_admin"))
    return operator


@pytest.mark.django_db
def test_scopes_count_separately(small_limits, market_writer):
    operator = market_writer
    client = APIClient()
    client.force_login(operator)
    body = {"price": "100"}

    writes = [client.put("/api/market/BTC-USD", body, format="json") for _ in range(3)]

    assert [w.status_code for w in writes] == [200, 200, 429]
    assert writes[0]["X-RateLimit-Limit"] == "2"  # market_write's free row (no operator row there)
    assert _get_market(client)["X-RateLimit-Remaining"] == "3"  # the default scope's operator row, untouched


def test_identity_and_tier_of_an_anonymous_request_is_its_address():
    request = _drf_request(REMOTE_ADDR="203.0.113.7")
    assert request_identity(request) == "ip:203.0.113.7"
    assert request_tier(request) == "anonymous"


@pytest.mark.django_db
def test_16_threads_x_20_requests_through_the_api_let_exactly_the_limit_through(settings, redis_client):
    settings.RATE_LIMITS = {"default": {"free": (LIMIT, 60)}}
    user = UserFactory(subscription_tier=SubscriptionTier.FREE)

    def call() -> int:
        client = APIClient()
        client.force_authenticate(user)
        return _get_market(client).status_code

    statuses = Counter(_hammer(call))

    assert statuses == Counter({404: LIMIT, 429: THREADS * CALLS_PER_THREAD - LIMIT})


@pytest.mark.django_db
def test_redis_down_a_fail_closed_scope_answers_503(small_limits, market_writer, dead_redis):
    client = APIClient()
    client.force_login(market_writer)

    response = client.put("/api/market/BTC-USD", {"price": "100"}, format="json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "rate_limiter_unavailable"
    assert response["Retry-After"] == "1"
    assert "X-RateLimit-Limit" not in response


@pytest.mark.django_db
def test_redis_down_other_scopes_fail_open_logged_and_counted(small_limits, dead_redis, caplog):
    client = APIClient()
    client.force_authenticate(UserFactory(subscription_tier=SubscriptionTier.FREE))
    before = ratelimit.fail_open_count()

    statuses = [_get_market(client).status_code for _ in range(5)]  # over the limit of 3, yet let through

    assert statuses == [404] * 5  # the view ran; no price is readable without Redis
    assert ratelimit.fail_open_count() == before + 5
    assert caplog.text.count("rate_limiter_unavailable_fail_open") == 5


@pytest.mark.django_db
def test_health_shows_the_fail_open_count_of_this_process(redis_client, settings, api_client):
    before = api_client.get("/api/health").json()["rate_limiter"]["fail_open_this_process"]
    assert before == ratelimit.fail_open_count()
    working_caches = settings.CACHES
    settings.CACHES = {"default": {**working_caches["default"], "LOCATION": _dead_redis_url()}}

    assert [rate_limit_check("health-probe", 1, 60) for _ in range(3)] == [(True, 1)] * 3  # let through, counted

    settings.CACHES = working_caches
    response = api_client.get("/api/health")
    assert response.json()["rate_limiter"] == {"fail_open_this_process": before + 3}
