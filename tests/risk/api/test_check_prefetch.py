"""A warm bot's check reads its two cache entries, the bot's limits and the mark it prices at, in the token's one
round trip (accounts.token_gate, nija.cache.prefetched_reads), and decides exactly as if it had read them itself.

Which commands reached Redis is read from Redis's own command statistics (the suite's Redis serves this process
alone); what the check decided, from its answer and the rows it wrote.
"""

import json
import socket
import time
import urllib.request
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.models import TokenKind, UserPermission
from accounts.services import user_permission_update
from tests.accounts.factories import OperatorFactory, issue_token
from tests.risk.conftest import bot_client, funded_account
from tests.servers import server_env, web_server
from trading.market import market_price_set
from trading.models import Position

pytestmark = pytest.mark.django_db

CHECK_URL = "/api/risk/check-position"
BODY = {"symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"}


def _check(client: APIClient, account_id: int, *, padding: str = "", **fields: object):
    body = json.dumps({"account_id": account_id, **BODY, **fields}) + padding
    return client.post(CHECK_URL, body, content_type="application/json")


def _calls(redis_client, command: str) -> int:
    return redis_client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


@pytest.fixture
def warm(relaxed_rate_limits, redis_client):
    """A funded bot whose token this process has resolved and remembered (its third request on takes the gate)."""
    funded_account("10000000")  # the portfolio's ceilings far away
    account = funded_account("100000")
    client = bot_client(account)
    for _ in range(2):
        assert _check(client, account.pk, dry_run=True).status_code == 200
    return client, account


def test_a_warm_check_reads_the_limits_and_the_mark_in_the_tokens_round_trip(warm, redis_client):
    client, account = warm
    market_price_set(symbol="BTC-USD", price=Decimal("60000"))
    redis_client.config_resetstat()

    response = _check(client, account.pk)

    assert response.status_code == 200, response.content
    assert response.json()["notional"] == "6000.00000000"  # 0.1 x max(50000, the mark 60000)
    assert _calls(redis_client, "evalsha") == 1  # the gate
    assert _calls(redis_client, "mget") == 1  # inside it: the limits and the mark
    assert _calls(redis_client, "get") == 1  # inside it: the token's entry; no GET of its own


def test_the_mark_read_ahead_is_the_one_in_redis_at_each_check(warm):
    client, account = warm
    notionals = []
    for mark in ("60000", "65000", None, "55000"):
        if mark is None:
            market_price_set(symbol="BTC-USD", price=Decimal("1"))  # below the bot's price: the price counts
        else:
            market_price_set(symbol="BTC-USD", price=Decimal(mark))
        notionals.append(_check(client, account.pk, dry_run=True).json()["notional"])

    assert notionals == ["6000.00000000", "6500.00000000", "5000.00000000", "5500.00000000"]


@pytest.mark.django_db(transaction=True)  # the edit commits, so the limits' cache entry is rewritten as in production
def test_a_limit_edit_is_seen_by_the_next_warm_check(warm):
    client, account = warm
    assert _check(client, account.pk, dry_run=True).json()["decision"] == "approved"

    permission = UserPermission.objects.get(user=account.user)
    user_permission_update(
        permission=permission, actor=OperatorFactory(), reason="tighter", max_position_size=Decimal("4000")
    )
    body = _check(client, account.pk, dry_run=True).json()

    assert body["decision"] == "rejected"
    assert [reason["code"] for reason in body["reasons"]] == ["max_position_size"]


def test_a_long_body_is_not_read_ahead_and_decides_the_same(warm, redis_client):
    client, account = warm
    market_price_set(symbol="BTC-USD", price=Decimal("60000"))
    redis_client.config_resetstat()

    response = _check(client, account.pk, padding=" " * 5000)

    assert response.status_code == 200, response.content
    assert response.json()["notional"] == "6000.00000000"
    assert _calls(redis_client, "mget") == 0  # nothing read ahead: the body was not in before the round trip
    assert _calls(redis_client, "get") == 3  # the token's entry in the gate; the limits and the mark by the check
    assert Position.objects.filter(instance=account, status="approved").count() == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"symbol": "BTC-USD", "side": "long"',  # not JSON
        b'["BTC-USD"]',  # not an object
        b'{"symbol": 7, "side": "long", "quantity": "0.1", "price": "50000"}',  # not a string
        b'{"symbol": "no such symbol!", "side": "long", "quantity": "0.1", "price": "50000"}',
    ],
    ids=["malformed", "array", "number", "bad-symbol"],
)
def test_a_body_with_no_symbol_to_read_ahead_is_refused_as_before(warm, body):
    client, account = warm

    response = client.post(CHECK_URL, body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in {"malformed_request", "validation_error"}
    assert not Position.objects.filter(instance=account).exists()


def test_a_legacy_body_reads_the_limits_ahead_and_answers(warm, redis_client):
    client, account = warm
    redis_client.config_resetstat()

    response = client.post(
        CHECK_URL, {"account_id": account.pk, "position_size": "1000"}, format="json", HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["decision"] == "approved"
    assert _calls(redis_client, "get") == 1  # the token's entry; the limits came in the MGET
    assert _calls(redis_client, "mget") == 1


DEEP = b"[" * 1000 + b"]" * 1000  # 2,000 bytes (under risk.api.PREFETCH_BODY_MAX), nested past the recursion limit


def test_a_deeply_nested_short_body_is_a_400_for_a_warm_bot_as_for_a_cold_one(warm):
    """JSON nested past the parser's depth is a 400 malformed_request; the read-ahead's own parse of a short body
    (in authentication, for a warm token) must not turn it into a 500."""
    client, account = warm
    cold = bot_client(funded_account("100000"))  # its first request: resolved from PostgreSQL, nothing read ahead
    client.raise_request_exception = cold.raise_request_exception = False

    cold_response = cold.post(CHECK_URL, DEEP, content_type="application/json")
    warm_response = client.post(CHECK_URL, DEEP, content_type="application/json")

    assert cold_response.status_code == 400, cold_response.content
    assert warm_response.status_code == 400, warm_response.content
    assert warm_response.json()["error"]["code"] == "malformed_request"
    assert not Position.objects.filter(instance=account).exists()


# ---------------------------------------------------------------------------------------------- a held body
def _post(base_url: str, token: str, body: bytes) -> int:
    request = urllib.request.Request(  # noqa: S310 - a loopback http:// URL built here
        f"{base_url}{CHECK_URL}",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - same
        return response.status


def _response(sock: socket.socket) -> tuple[int, dict]:
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


@pytest.mark.django_db(transaction=True)  # the server and the edit share the committed rows
def test_a_trading_stop_committed_before_the_body_arrived_is_applied_to_the_check(redis_client):
    """A bot that sends a long body slowly (or holds it) is decided with the limits of the moment its whole body was
    in: an operator's `can_trade = False` committed after the token's round trip but before the body's end stops
    the check. (A body over PREFETCH_BODY_MAX is not read before that round trip, so nothing is read ahead for it.)
    Found by review: the limits were read ahead whatever the body, and this check was approved."""
    account = funded_account("100000")
    market_price_set(symbol="BTC-USD", price=Decimal("50000"))
    token = issue_token(TokenKind.BOT, instance=account)
    fields = {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"}
    server = web_server(server_env(MARKET_PRICE_TTL="3600"), threads=2).start()
    try:
        for _ in range(2):  # the token resolved and remembered by the server: the next request takes the gate
            assert _post(server.base_url, token, json.dumps({**fields, "dry_run": True}).encode()) == 200
        body = json.dumps({**fields, "client_order_id": "held"}).encode() + b" " * 3000  # valid JSON, 3 KB
        before = _calls(redis_client, "zadd")
        with socket.create_connection(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1])), timeout=10) as sock:
            sock.sendall(
                f"POST {CHECK_URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body[:40]
            )
            deadline = time.monotonic() + 10
            while _calls(redis_client, "zadd") == before:  # the token's round trip has run (it counts the request)
                assert time.monotonic() < deadline, server.log_tail()
                time.sleep(0.01)
            user_permission_update(
                permission=UserPermission.objects.get(user=account.user),
                actor=OperatorFactory(),
                reason="stop this bot",
                can_trade=False,
            )  # committed, `perm:` rewritten
            sock.sendall(body[40:])
            status, answer = _response(sock)
    finally:
        server.stop()

    assert status == 200, answer
    assert (answer["decision"], answer["allowed"]) == ("rejected", False), answer
    assert not Position.objects.filter(instance=account, status="approved").exists()
