"""factory-boy factories for every trading model (accounts rows come from tests/accounts/factories.py).

They write rows only: an instance's `exposure` / `position_count` counters do not follow. Tests of counters go
through the risk services. Traits give the states a position is found in: `open`, `closed`, `rejected`,
`pending`; the default is `approved` (exposure reserved, nothing filled).
"""

import datetime
from decimal import ROUND_UP, Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from tests.accounts.factories import TradingInstanceFactory
from trading.models import DailyStatistic, Fill, Position, PositionStatus, Side, Trade

Q8 = Decimal("0.00000001")


def notional(quantity: Decimal, price: Decimal) -> Decimal:
    """quantity * price rounded up to 8 decimals, as the risk check computes n."""
    return (quantity * price).quantize(Q8, rounding=ROUND_UP)


class PositionFactory(DjangoModelFactory):
    class Meta:
        model = Position

    class Params:
        open = factory.Trait(
            status=PositionStatus.OPEN,
            entry_price=factory.SelfAttribute("requested_price"),
            filled_quantity=factory.SelfAttribute("quantity"),
            open_cost=factory.LazyAttribute(lambda p: notional(p.quantity, p.requested_price)),
            opened_at=factory.LazyFunction(timezone.now),
        )
        closed = factory.Trait(
            status=PositionStatus.CLOSED,
            entry_price=factory.SelfAttribute("requested_price"),
            exit_price=factory.LazyAttribute(lambda p: p.requested_price * Decimal("1.01")),
            filled_quantity=factory.SelfAttribute("quantity"),
            closed_quantity=factory.SelfAttribute("quantity"),
            opened_at=factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(hours=1)),
            closed_at=factory.LazyFunction(timezone.now),
        )
        rejected = factory.Trait(
            status=PositionStatus.REJECTED,
            reasons=factory.LazyAttribute(
                lambda p: [
                    {
                        "code": "max_position_size",
                        "message": "too large",
                        "limit": "1000",
                        "value": str(p.notional),
                        "scope": "account",
                    }
                ]
            ),
            decision_reason="too large",
            approved_at=None,
        )
        pending = factory.Trait(
            status=PositionStatus.PENDING_APPROVAL,
            decided_at=None,
            approved_at=None,
            reservation_expires_at=factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(minutes=15)),
        )

    instance = factory.SubFactory(TradingInstanceFactory)
    symbol = "BTC-USD"
    side = Side.LONG
    quantity = Decimal("0.50000000")
    requested_price = Decimal("60000.00000000")
    notional = factory.LazyAttribute(lambda p: notional(p.quantity, p.requested_price))
    status = PositionStatus.APPROVED
    client_order_id = factory.Sequence(lambda n: f"order-{n}")
    request_fingerprint = factory.Sequence(lambda n: f"{n:064x}")
    decided_at = factory.LazyFunction(timezone.now)
    approved_at = factory.LazyFunction(timezone.now)
    reservation_expires_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(seconds=120))


class FillFactory(DjangoModelFactory):
    class Meta:
        model = Fill

    position = factory.SubFactory(PositionFactory, open=True)
    instance = factory.SelfAttribute("position.instance")
    exchange_order_id = factory.Sequence(lambda n: f"ex-{n}")
    quantity = factory.SelfAttribute("position.filled_quantity")
    price = factory.LazyAttribute(lambda f: f.position.entry_price or f.position.requested_price)
    fees = Decimal("1.50000000")
    filled_at = factory.LazyFunction(timezone.now)


class TradeFactory(DjangoModelFactory):
    class Meta:
        model = Trade

    position = factory.SubFactory(PositionFactory, closed=True)
    instance = factory.SelfAttribute("position.instance")
    symbol = factory.SelfAttribute("position.symbol")
    side = factory.SelfAttribute("position.side")
    quantity = factory.SelfAttribute("position.closed_quantity")
    entry_price = factory.SelfAttribute("position.entry_price")
    exit_price = factory.SelfAttribute("position.exit_price")
    fees = Decimal("1.00000000")
    pnl = factory.LazyAttribute(lambda t: ((t.exit_price - t.entry_price) * t.quantity - t.fees).quantize(Q8))
    client_close_id = factory.Sequence(lambda n: f"close-{n}")
    closed_at = factory.LazyFunction(timezone.now)


class DailyStatisticFactory(DjangoModelFactory):
    class Meta:
        model = DailyStatistic

    instance = factory.SubFactory(TradingInstanceFactory)
    date = factory.Sequence(lambda n: datetime.date(2026, 1, 1) + datetime.timedelta(days=n))
    start_equity = Decimal("100000")
    end_equity = Decimal("100500")
    realized_pnl = Decimal("500")
    trades = 3
    wins = 2
    losses = 1
    gross_profit = Decimal("800")
    gross_loss = Decimal("300")
    max_drawdown = Decimal("0.01")
