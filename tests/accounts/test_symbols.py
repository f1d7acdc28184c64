"""Allowed symbols use the one canonical symbol definition (nija.symbols), the one trading and risk use."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

import nija.symbols
import trading.symbols
from accounts.models import AuditEntry, UserPermission, validate_symbol_list
from tests.accounts.factories import UserFactory, UserPermissionFactory


def test_trading_symbols_is_the_same_implementation():
    assert trading.symbols.canonical_symbol is nija.symbols.canonical_symbol
    assert trading.symbols.is_canonical_symbol is nija.symbols.is_canonical_symbol
    assert trading.symbols.SYMBOL_SQL_REGEX == nija.symbols.SYMBOL_SQL_REGEX


@pytest.mark.parametrize("symbols", [["BTC-USD"], ["1INCH-USD", "ETH-USD"], []])
def test_the_validator_accepts_canonical_symbols(symbols):
    validate_symbol_list(symbols)


@pytest.mark.parametrize(
    "symbols",
    [["BTC-EUR"], ["btc-usd"], ["BTC/USD"], ["ABCDEFGHIJK-USD"], ["USD-USD"], ["BTC-USD", "BTC-USD"], "BTC-USD"],
)
def test_the_validator_refuses_what_trading_would_refuse(symbols):
    with pytest.raises(ValidationError):
        validate_symbol_list(symbols)


@pytest.mark.django_db
def test_the_admin_form_canonicalizes_and_refuses_another_quote(client, redis_client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    permission = UserPermissionFactory()
    url = reverse("admin:accounts_userpermission_change", args=[permission.pk])
    form = {"can_trade": "on", "max_position_size": "10", "max_daily_loss": "10", "max_open_positions": "5"}

    refused = client.post(url, {**form, "allowed_symbols": '["BTC-EUR"]'})
    accepted = client.post(url, {**form, "allowed_symbols": '["eth/usd"]'})

    assert refused.status_code == 200
    assert "allowed_symbols" in refused.context["adminform"].form.errors
    assert accepted.status_code == 302
    assert UserPermission.objects.get(pk=permission.pk).allowed_symbols == ["ETH-USD"]
    assert [entry.after["allowed_symbols"] for entry in AuditEntry.objects.all()] == [["ETH-USD"]]
