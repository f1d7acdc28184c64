"""A deactivated account's (or user's) bot over HTTP: fills and closes of what it holds are recorded, every other
call is a 403 `account_inactive` that writes nothing (not a 404, not a failed login), and operators cannot approve
its pending positions."""

from decimal import Decimal

import pytest

from accounts.models import TradingInstance
from tests.risk.conftest import bot_client, counter_drift, deactivate_outside_the_gate, funded_account, operator_client
from tests.risk.services.scenario import exposures, fill, reserve
from trading.models import Fill, Position, Trade

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark, token or rate-limit key from another test."""


def deactivate(account: TradingInstance, what: str, django_capture_on_commit_callbacks) -> None:
    """Outside the risk gate (no reservation is released): what the bot can still do is the point."""
    with django_capture_on_commit_callbacks(execute=True):
        deactivate_outside_the_gate(account, what)


@pytest.mark.parametrize("what", ["user", "account"])
def test_a_deactivated_accounts_bot_can_fill_and_close_what_it_holds_and_nothing_else(
    what, django_capture_on_commit_callbacks
):
    account = funded_account("100000")
    position = fill(reserve(account, quantity="0.3"), "ex-1", "0.1", "50000")
    pending = reserve(account, quantity="0.1")
    client = bot_client(account)
    assert client.get(f"/api/positions/{position.pk}").status_code == 200  # token resolution now cached
    deactivate(account, what, django_capture_on_commit_callbacks)
    check = {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": "0.01", "price": "50000"}
    stored = (Position.objects.count(), exposures(account))

    refused = [
        client.post("/api/risk/check-position", check, format="json"),
        client.post("/api/risk/check-position", check | {"dry_run": True}, format="json"),
        client.post("/api/risk/check-position", {"account_id": account.pk, "position_size": "10"}, format="json"),
        client.post(f"/api/accounts/{account.pk}/metrics", {"equity": "90000"}, format="json"),
        client.post(f"/api/positions/{pending.pk}/cancel"),
        client.get(f"/api/positions/{position.pk}"),
        client.get("/api/positions"),
        client.get("/api/market/BTC-USD"),
    ]

    for response in refused:
        assert (response.status_code, response.json()["error"]["code"]) == (403, "account_inactive")
    assert (Position.objects.count(), exposures(account)) == stored
    filled = client.post(
        f"/api/positions/{position.pk}/fill",
        {"exchange_order_id": "ex-2", "quantity": "0.1", "price": "50000"},
        format="json",
    )
    closed = client.post(
        f"/api/positions/{position.pk}/close", {"client_close_id": "c-1", "exit_price": "51000"}, format="json"
    )
    assert (filled.status_code, closed.status_code) == (200, 200), (filled.json(), closed.json())
    assert (Fill.objects.filter(position=position).count(), Trade.objects.get().quantity) == (2, Decimal("0.2"))
    assert counter_drift() == []


def test_an_operator_cannot_approve_a_pending_position_of_a_deactivated_user(django_capture_on_commit_callbacks):
    account = funded_account("200000")
    pending = reserve(account, quantity="0.6")
    deactivate(account, "user", django_capture_on_commit_callbacks)
    client, _ = operator_client("approver")

    response = client.post(f"/api/positions/{pending.pk}/approve", {"reason": "ok"}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (403, "account_inactive")
    assert Position.objects.get(pk=pending.pk).status == "pending_approval"
