from decimal import Decimal

import pytest

from tests.risk.conftest import bot_client, counter_drift, funded_account
from trading.models import Position


@pytest.mark.django_db
def test_a_small_check_is_approved_and_reserves(relaxed_rate_limits):
    account = funded_account("100000")
    client = bot_client(account)

    response = client.post(
        "/api/risk/check-position",
        {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["decision"] == "approved"
    assert body["allowed"] is True
    assert body["notional"] == "5000.00000000"
    position = Position.objects.get(pk=body["position_id"])
    assert position.status == "approved"
    account.refresh_from_db()
    assert account.exposure == Decimal("5000")
    assert counter_drift() == []
