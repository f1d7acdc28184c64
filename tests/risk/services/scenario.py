"""Scenario helpers for the lifecycle, approval, trading-state and equity tests: every step goes through the risk
services (never a factory that would leave the counters behind), with exact Decimal inputs."""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from accounts.models import TradingInstance
from risk.models import Portfolio, SymbolExposure
from risk.services.check import CheckInput, position_check
from risk.services.lifecycle import CloseInput, FillInput, position_close, position_fill
from trading.models import Position, Trade


def reserve(
    account: TradingInstance,
    *,
    symbol: str = "BTC-USD",
    side: str = "long",
    quantity: str = "0.3",
    price: str = "50000",
    client_order_id: str | None = None,
    now: datetime | None = None,
) -> Position:
    """Run a (non dry-run) check and return the position it recorded, whatever the decision."""
    outcome = position_check(
        request=CheckInput(
            account_id=account.pk,
            symbol=symbol,
            side=side,
            quantity=Decimal(quantity),
            price=Decimal(price),
            client_order_id=client_order_id,
        ),
        user_id=account.user_id,
        now=now or timezone.now(),
    )
    return Position.objects.get(pk=outcome.position_id)


def fill(
    position: Position, exchange_order_id: str, quantity: str, price: str, fees: str = "0", *, now=None
) -> Position:
    return position_fill(
        position_id=position.pk,
        instance_id=position.instance_id,
        fill=FillInput(
            exchange_order_id=exchange_order_id, quantity=Decimal(quantity), price=Decimal(price), fees=Decimal(fees)
        ),
        now=now or timezone.now(),
    )


def close(
    position: Position,
    client_close_id: str,
    exit_price: str,
    *,
    quantity: str | None = None,
    fees: str = "0",
    now: datetime | None = None,
) -> Trade:
    return position_close(
        position_id=position.pk,
        instance_id=position.instance_id,
        close=CloseInput(
            client_close_id=client_close_id,
            exit_price=Decimal(exit_price),
            fees=Decimal(fees),
            quantity=None if quantity is None else Decimal(quantity),
        ),
        now=now or timezone.now(),
    )


def exposures(account: TradingInstance, symbol: str = "BTC-USD") -> tuple[Decimal, int, Decimal, int, Decimal]:
    """(account exposure, account position count, portfolio exposure, portfolio count, symbol exposure), fresh."""
    account.refresh_from_db()
    portfolio = Portfolio.objects.get()
    symbol_row = SymbolExposure.objects.filter(pk=symbol).first()
    return (
        account.exposure,
        account.position_count,
        portfolio.exposure,
        portfolio.position_count,
        symbol_row.exposure if symbol_row is not None else Decimal(0),
    )


def snapshot(position: Position) -> dict:
    """Every column of the position as stored (to show that a replay or a refused transition changed nothing)."""
    stored = Position.objects.get(pk=position.pk)
    return {field.attname: getattr(stored, field.attname) for field in Position._meta.concrete_fields}
