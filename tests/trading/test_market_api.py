"""GET/PUT /api/market/{symbol} and trading.market, against real PostgreSQL (tokens) and real Redis (prices)."""

import json
import pickle
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import TokenKind
from tests.accounts.factories import OperatorFactory, UserFactory, issue_token
from trading.market import MarketPrice, market_price_get, market_price_set
from trading.roles import market_price_permission_grant

URL = "/api/market/BTC-USD"
KEY = "nija:market:BTC-USD"


def _bearer(raw_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    return client


@pytest.fixture
def market_price_permission(db) -> None:
    """The rows trading.roles grants (permission, risk_admin grant): a transactional test's flush removes them."""
    market_price_permission_grant(django_apps)


@pytest.fixture
def feed(db, redis_client) -> APIClient:
    return _bearer(issue_token(TokenKind.FEED))


@pytest.fixture
def bot(db, redis_client) -> APIClient:
    return _bearer(issue_token(TokenKind.BOT))


def _put(client: APIClient, body, symbol: str = "BTC-USD"):
    return client.put(f"/api/market/{symbol}", data=json.dumps(body), content_type="application/json")


# ---------------------------------------------------------------------------------------------- writes


def test_a_feed_token_writes_the_price_as_json_strings_with_the_ttl(feed, redis_client, settings):
    before = timezone.now()
    response = _put(feed, {"price": "64250.5", "bid": "64250.25", "ask": "64250.75"})

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("symbol", "price", "bid", "ask")} == {
        "symbol": "BTC-USD",
        "price": "64250.50000000",
        "bid": "64250.25000000",
        "ask": "64250.75000000",
    }
    stored = json.loads(redis_client.get(KEY))
    assert stored["price"] == "64250.50000000"
    assert stored["bid"] == "64250.25000000"
    assert before <= datetime.fromisoformat(stored["timestamp"]) <= timezone.now()
    assert settings.MARKET_PRICE_TTL * 1000 - 1000 < redis_client.pttl(KEY) <= settings.MARKET_PRICE_TTL * 1000


def test_any_authenticated_token_reads_it_back(feed, bot):
    _put(feed, {"price": "3000.1"})

    response = bot.get(URL)

    assert response.status_code == 200
    assert response.json()["price"] == "3000.10000000"
    assert response.json()["bid"] is None
    assert response.json()["ask"] is None


def test_json_numbers_are_read_as_decimal_never_float(feed, redis_client):
    response = feed.put(URL, data='{"price": 1234567890.12345678}', content_type="application/json")

    assert response.status_code == 200
    assert json.loads(redis_client.get(KEY))["price"] == "1234567890.12345678"


def test_a_lower_case_symbol_is_stored_under_its_canonical_form(feed, redis_client):
    assert _put(feed, {"price": "1.5"}, symbol="eth-usd").status_code == 200
    assert redis_client.exists("nija:market:ETH-USD") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"price": "NaN"}, "price"),
        ({"price": "Infinity"}, "price"),
        ({"price": "-Infinity"}, "price"),
        ({"price": "0"}, "price"),
        ({"price": "-1"}, "price"),
        ({"price": "1e30"}, "price"),
        ({"price": "10000000000"}, "price"),
        ({"price": "0.123456789"}, "price"),
        ({"price": "abc"}, "price"),
        ({"price": ""}, "price"),
        ({"price": None}, "price"),
        ({"price": True}, "price"),
        ({}, "price"),
        ({"price": "100", "bid": "0"}, "bid"),
        ({"price": "100", "ask": "NaN"}, "ask"),
        ({"price": "100", "bid": "101", "ask": "100.5"}, "bid"),
    ],
)
def test_invalid_prices_are_a_400_naming_the_field_and_nothing_is_written(feed, redis_client, body, field):
    response = _put(feed, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]
    assert redis_client.exists(KEY) == 0


@pytest.mark.parametrize("raw", ['{"price": NaN}', '{"price": Infinity}', '{"price": 1e30}', "{"])
def test_non_standard_or_absurd_json_numbers_are_a_400(feed, redis_client, raw):
    response = feed.put(URL, data=raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"malformed_request", "validation_error"}
    assert redis_client.exists(KEY) == 0


@pytest.mark.parametrize("symbol", ["BTCUSD", "BTC-EUR", "B-USD", "BTC-USD-X", "USD-USD", "BTC%20USD"])
def test_a_symbol_that_is_not_canonical_base_usd_is_a_400(feed, redis_client, symbol):
    response = _put(feed, {"price": "1"}, symbol=symbol)

    assert response.status_code == 400
    assert "symbol" in response.json()["error"]["fields"]
    assert list(redis_client.scan_iter(match="nija:market:*")) == []


def test_a_bot_token_may_not_move_the_mark(bot, redis_client):
    response = _put(bot, {"price": "1"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert redis_client.exists(KEY) == 0


def test_a_bot_token_of_a_staff_user_may_not_either(db, redis_client):
    client = _bearer(issue_token(TokenKind.BOT, user=OperatorFactory()))
    assert _put(client, {"price": "1"}).status_code == 403
    assert redis_client.exists(KEY) == 0


@pytest.mark.parametrize("roles", [(), ("viewer",), ("approver",), ("viewer", "approver")])
def test_an_operator_token_without_write_market_price_may_not_move_the_mark(
    market_price_permission, redis_client, roles
):
    operator = OperatorFactory()
    operator.groups.add(*Group.objects.filter(name__in=roles))

    response = _put(_bearer(issue_token(TokenKind.OPERATOR, user=operator)), {"price": "2"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert redis_client.exists(KEY) == 0


def test_a_risk_admin_operator_token_writes(market_price_permission, redis_client):
    operator = OperatorFactory()
    operator.groups.add(Group.objects.get(name="risk_admin"))

    assert _put(_bearer(issue_token(TokenKind.OPERATOR, user=operator)), {"price": "2"}).status_code == 200
    assert redis_client.exists(KEY) == 1


def test_the_permission_alone_is_not_enough_without_staff(market_price_permission, redis_client, client):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="write_market_price"))
    client.force_login(user)

    assert _put(client, {"price": "2"}).status_code == 403
    assert redis_client.exists(KEY) == 0


def test_operator_sessions_need_the_permission_too(market_price_permission, client, redis_client):
    client.force_login(UserFactory())
    assert _put(client, {"price": "2"}).status_code == 403
    client.force_login(OperatorFactory())
    assert _put(client, {"price": "2"}).status_code == 403
    assert redis_client.exists(KEY) == 0

    operator = OperatorFactory()
    operator.groups.add(Group.objects.get(name="risk_admin"))
    client.force_login(operator)
    assert _put(client, {"price": "2"}).status_code == 200
    assert redis_client.exists(KEY) == 1


def test_the_migrations_grant_gives_write_market_price_to_risk_admin_only(market_price_permission):
    holders = Group.objects.filter(permissions__codename="write_market_price")

    assert list(holders.values_list("name", flat=True)) == ["risk_admin"]
    permission = Permission.objects.get(codename="write_market_price")
    assert (permission.content_type.app_label, permission.content_type.model) == ("trading", "position")


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "put"])
def test_without_credentials_it_is_a_401(redis_client, method):
    response = getattr(APIClient(), method)(URL, data={"price": "1"}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert redis_client.exists(KEY) == 0


def test_an_unknown_token_is_a_401(db, redis_client):
    assert _bearer("x" * 43).get(URL).status_code == 401


# ---------------------------------------------------------------------------------------------- reads


def test_no_price_reads_as_404_price_unavailable(bot):
    response = bot.get(URL)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "price_unavailable"


def test_a_price_older_than_its_ttl_reads_as_404(feed, bot, settings):
    settings.MARKET_PRICE_TTL = 1
    _put(feed, {"price": "5"})
    assert bot.get(URL).status_code == 200

    time.sleep(1.1)

    assert bot.get(URL).json()["error"]["code"] == "price_unavailable"


def test_a_stale_timestamp_reads_as_missing_even_while_redis_holds_the_key(redis_client, settings):
    settings.MARKET_PRICE_TTL = 60
    market_price_set(symbol="BTC-USD", price=Decimal("10"), now=timezone.now() - timedelta(seconds=61))

    assert redis_client.exists(KEY) == 1
    assert market_price_get("BTC-USD") is None


def test_market_price_get_returns_decimal_fields_and_an_aware_timestamp(redis_client):
    written_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    market_price_set(
        symbol="btc-usd", price=Decimal("100.5"), bid=Decimal("100.25"), ask=Decimal("100.75"), now=written_at
    )

    mark = market_price_get("BTC-USD", now=written_at + timedelta(seconds=30))

    assert mark == MarketPrice(
        symbol="BTC-USD", price=Decimal("100.5"), bid=Decimal("100.25"), ask=Decimal("100.75"), timestamp=written_at
    )
    assert market_price_get("BTC-USD", now=written_at + timedelta(seconds=61)) is None


@pytest.mark.parametrize(
    "stored",
    [
        b'{"symbol": "BTC-USD", "price": "NaN", "bid": null, "ask": null, "timestamp": "2030-01-01T00:00:00+00:00"}',
        b'{"symbol": "BTC-USD", "price": "1", "bid": null, "ask": null, "timestamp": "2030-01-01T00:00:00"}',
        b'{"symbol": "BTC-USD", "price": "1"}',
        b'"1"',
        pickle.dumps({"price": "1"}),
    ],
)
def test_a_corrupt_stored_value_reads_as_missing(redis_client, stored):
    redis_client.set(KEY, stored, ex=60)
    assert market_price_get("BTC-USD", now=datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)) is None


def test_redis_down_a_price_write_answers_503_saying_the_cache_is_unavailable(feed, settings):
    """market_price_set raised MarketPriceUnavailable(symbol): the symbol became the error's message ("BTC-USD")
    once the error was a DomainError, where the API had said what was wrong."""
    from tests.risk.api.test_fail_closed import redis_stopped

    settings.RATE_LIMIT_FAIL_CLOSED_SCOPES = []  # past the limiter: the write itself must refuse
    with redis_stopped():
        response = _put(feed, {"price": "64250.5"})

    assert (response.status_code, response.json()) == (
        503,
        {"error": {"code": "market_cache_unavailable", "message": "The price cache is unavailable."}},
    )


def test_one_output_serializer_renders_marks_from_many_threads_at_once():
    """trading.api renders every mark through one serializer instance made at import: threads rendering different
    marks at once each get their own mark back, in the API's format."""
    from concurrent.futures import ThreadPoolExecutor

    from trading.api import _render

    def mark(number: int) -> MarketPrice:
        price = Decimal(number) + Decimal("0.125")
        when = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=number)
        return MarketPrice(symbol=f"S{number}-USD", price=price, bid=None, ask=price + 1, timestamp=when)

    def expected(number: int) -> dict:
        when = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=number)
        return {
            "symbol": f"S{number}-USD",
            "price": f"{number}.12500000",
            "bid": None,
            "ask": f"{number + 1}.12500000",
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def render_many(start: int) -> list[bool]:
        return [dict(_render(mark(n)).data) == expected(n) for n in range(start, start + 300)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = [ok for chunk in pool.map(render_many, range(0, 16 * 300, 300)) for ok in chunk]

    assert len(results) == 16 * 300
    assert all(results)
