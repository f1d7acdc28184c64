"""Readers, servers and checks shared by the stream tests (tests/monitoring/test_stream*.py).

The events process is the Procfile's uvicorn with `make run`'s settings (nija.settings.local: persistent database
connections, as in production), pointed at the test database and at a Redis the test names.
"""

import json
from dataclasses import dataclass
from decimal import Decimal

from django.test import Client
from rest_framework.test import APIClient

from accounts.models import TokenKind, TradingInstance
from tests.accounts.factories import OperatorFactory, issue_token
from tests.monitoring.sse import SseStream
from tests.risk.conftest import funded_account
from tests.servers import LiveProcess, events_server, server_env

CHECK_URL = "/api/risk/check-position"


@dataclass(frozen=True)
class Desk:
    """An operator (token and session cookie), two bots with their accounts, and a price feed."""

    operator_token: str
    operator_session: str
    account: TradingInstance
    bot_token: str
    other_account: TradingInstance
    other_bot_token: str
    feed_token: str


def make_desk() -> Desk:
    operator = OperatorFactory()
    browser = Client()
    browser.force_login(operator)
    funded_account("10000000")  # portfolio ceilings far away: the desk's bots are refused by their own limits
    account, other_account = funded_account("100000"), funded_account("100000")
    return Desk(
        operator_token=issue_token(TokenKind.OPERATOR, user=operator),
        operator_session=browser.cookies["sessionid"].value,
        account=account,
        bot_token=issue_token(TokenKind.BOT, instance=account),
        other_account=other_account,
        other_bot_token=issue_token(TokenKind.BOT, instance=other_account),
        feed_token=issue_token(TokenKind.FEED),
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session(cookie: str) -> dict[str, str]:
    return {"Cookie": f"sessionid={cookie}"}


def start_events_process(redis_url: str | None = None, **env: str) -> LiveProcess:
    return events_server(server_env(redis_url=redis_url, settings_module="nija.settings.local", **env)).start()


def open_stream(process: LiveProcess, channels: list[str], headers: dict[str, str]) -> SseStream:
    """A stream that answered 200 and sent its opening event."""
    stream = SseStream(process.base_url, channels=channels, headers=headers)
    assert (stream.status, stream.content_type) == (200, "text/event-stream"), stream.response.read()[:500]
    assert stream.next_event().event == "stream-open"
    return stream


def rejected_check(account: TradingInstance, token: str) -> dict:
    """A check the bot's own limits refuse (95,000 notional against 100,000 of equity), through the API."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": "1", "price": "95000"}
    response = client.post(CHECK_URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    decision = response.json()
    assert decision["decision"] == "rejected"
    assert Decimal(decision["notional"]) == Decimal("95000")
    return decision
