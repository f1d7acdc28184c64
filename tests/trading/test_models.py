"""Database invariants of the trading models: each constraint rejects what it should (and writes nothing),
accepts its edge values, and trading history is never cascaded away (PROTECT)."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from accounts.models import TradingInstance, User
from tests.accounts.factories import OperatorFactory, TradingInstanceFactory
from tests.trading.factories import (
    DailyStatisticFactory,
    FillFactory,
    PositionFactory,
    TradeFactory,
)
from trading.models import DailyStatistic, Fill, Position, PositionStatus, Trade

pytestmark = pytest.mark.django_db


def assert_rejected(factory, model, constraint: str, **fields) -> None:
    """Saving a row built with `fields` (saved parents passed in) fails on `constraint`; nothing is written."""
    before = model.objects.count()
    row = factory.build(**fields)
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        row.save()
    assert model.objects.count() == before


@pytest.fixture
def instance() -> TradingInstance:
    return TradingInstanceFactory()


@pytest.mark.parametrize(
    ("constraint", "fields"),
    [
        ("position_quantity_gt_0", {"quantity": Decimal("0")}),
        ("position_requested_price_gt_0", {"requested_price": Decimal("0")}),
        ("position_notional_gte_0", {"notional": Decimal("-0.00000001")}),
        # filled < 0 also breaks closed <= filled: PostgreSQL reports either.
        ("position_(filled|closed)_quantity_range", {"filled_quantity": Decimal("-0.00000001")}),
        ("position_filled_quantity_range", {"quantity": Decimal("1"), "filled_quantity": Decimal("1.00000001")}),
        ("position_closed_quantity_range", {"closed_quantity": Decimal("-0.00000001")}),
        (
            "position_closed_quantity_range",
            {"filled_quantity": Decimal("0.1"), "closed_quantity": Decimal("0.10000001")},
        ),
        ("position_entry_price_gt_0", {"entry_price": Decimal("0")}),
        ("position_exit_price_gt_0", {"exit_price": Decimal("-5")}),
        ("position_status_valid", {"status": "filled"}),
        ("position_side_valid", {"side": "flat"}),
        ("position_symbol_canonical", {"symbol": "btc-usd"}),
        ("position_symbol_canonical", {"symbol": "BTC-EUR"}),
        ("position_symbol_canonical", {"symbol": "BTCUSD"}),
        ("position_open_or_closed_is_filled", {"status": PositionStatus.OPEN}),
        ("position_open_or_closed_is_filled", {"status": PositionStatus.CLOSED, "entry_price": Decimal("1")}),
        ("position_client_order_id_not_empty", {"client_order_id": ""}),
        ("position_reasons_is_array", {"reasons": {"code": "x"}}),
    ],
)
def test_position_constraints_reject(instance, constraint, fields):
    assert_rejected(PositionFactory, Position, constraint, instance=instance, **fields)


def test_position_accepts_edge_values(instance):
    position = PositionFactory(
        instance=instance,
        quantity=Decimal("0.00000001"),
        requested_price=Decimal("0.00000001"),
        notional=Decimal("0"),
        filled_quantity=Decimal("0.00000001"),
        closed_quantity=Decimal("0.00000001"),
        entry_price=Decimal("0.00000001"),
        status=PositionStatus.CLOSED,
        symbol="1INCH-USD",
        reasons=[],
    )
    position.refresh_from_db()
    assert position.quantity == Decimal("0.00000001")
    assert position.filled_quantity == position.closed_quantity == position.quantity


def test_client_order_id_is_unique_per_instance(instance):
    PositionFactory(instance=instance, client_order_id="abc")
    assert_rejected(
        PositionFactory,
        Position,
        "position_client_order_id_unique_per_instance",
        instance=instance,
        client_order_id="abc",
    )
    assert Position.objects.filter(client_order_id="abc").count() == 1


def test_client_order_id_may_repeat_across_instances_and_be_null(instance):
    PositionFactory(instance=instance, client_order_id="abc")
    PositionFactory(client_order_id="abc")
    PositionFactory(instance=instance, client_order_id=None)
    PositionFactory(instance=instance, client_order_id=None)
    assert Position.objects.filter(client_order_id="abc").count() == 2
    assert Position.objects.filter(instance=instance, client_order_id__isnull=True).count() == 2


@pytest.mark.parametrize(
    ("constraint", "fields"),
    [
        ("fill_quantity_gt_0", {"quantity": Decimal("0")}),
        ("fill_price_gt_0", {"price": Decimal("0")}),
        ("fill_price_gt_0", {"price": Decimal("-1")}),
        ("fill_exchange_order_id_not_empty", {"exchange_order_id": ""}),
    ],
)
def test_fill_constraints_reject(constraint, fields):
    position = PositionFactory(open=True)
    assert_rejected(FillFactory, Fill, constraint, position=position, instance=position.instance, **fields)


def test_fill_fees_may_be_zero_or_a_rebate():
    assert FillFactory(fees=Decimal("0")).fees == Decimal("0")
    rebate = FillFactory(fees=Decimal("-0.25"))
    rebate.refresh_from_db()
    assert rebate.fees == Decimal("-0.25")


def test_fill_exchange_order_id_unique_per_instance():
    fill = FillFactory(exchange_order_id="EX-1")
    assert_rejected(
        FillFactory,
        Fill,
        "fill_exchange_order_id_unique_per_instance",
        position=fill.position,
        instance=fill.instance,
        exchange_order_id="EX-1",
    )
    FillFactory(exchange_order_id="EX-1")  # another instance: accepted
    assert Fill.objects.filter(exchange_order_id="EX-1").count() == 2


@pytest.mark.parametrize(
    ("constraint", "fields"),
    [
        ("trade_quantity_gt_0", {"quantity": Decimal("0")}),
        ("trade_entry_price_gt_0", {"entry_price": Decimal("0")}),
        ("trade_exit_price_gt_0", {"exit_price": Decimal("0")}),
        ("trade_side_valid", {"side": "up"}),
        ("trade_symbol_canonical", {"symbol": "ETH/USD"}),
        ("trade_client_close_id_not_empty", {"client_close_id": ""}),
    ],
)
def test_trade_constraints_reject(constraint, fields):
    position = PositionFactory(closed=True)
    assert_rejected(TradeFactory, Trade, constraint, position=position, instance=position.instance, **fields)


def test_trade_client_close_id_unique_per_instance():
    trade = TradeFactory(client_close_id="close-1")
    assert_rejected(
        TradeFactory,
        Trade,
        "trade_client_close_id_unique",
        position=trade.position,
        instance=trade.instance,
        client_close_id="close-1",
    )
    TradeFactory(client_close_id="close-1")
    assert Trade.objects.filter(client_close_id="close-1").count() == 2


@pytest.mark.parametrize(
    ("constraint", "fields"),
    [
        ("dailystatistic_start_equity_gte_0", {"start_equity": Decimal("-1")}),
        ("dailystatistic_end_equity_gte_0", {"end_equity": Decimal("-0.00000001")}),
        ("dailystatistic_wins_losses_within_trades", {"trades": 2, "wins": 2, "losses": 1}),
        ("dailystatistic_gross_amounts_gte_0", {"gross_profit": Decimal("-1")}),
        ("dailystatistic_gross_amounts_gte_0", {"gross_loss": Decimal("-1")}),
        ("dailystatistic_max_drawdown_fraction", {"max_drawdown": Decimal("1.00000001")}),
        ("dailystatistic_max_drawdown_fraction", {"max_drawdown": Decimal("-0.01")}),
    ],
)
def test_daily_statistic_constraints_reject(instance, constraint, fields):
    assert_rejected(DailyStatisticFactory, DailyStatistic, constraint, instance=instance, **fields)


def test_one_daily_statistic_per_instance_and_date(instance):
    statistic = DailyStatisticFactory(instance=instance)
    assert_rejected(
        DailyStatisticFactory,
        DailyStatistic,
        "dailystatistic_unique_per_instance_date",
        instance=instance,
        date=statistic.date,
    )
    DailyStatisticFactory(date=statistic.date)  # another instance, same date: accepted
    assert DailyStatistic.objects.filter(date=statistic.date).count() == 2


def test_instance_with_positions_cannot_be_deleted():
    position = PositionFactory()
    with pytest.raises(ProtectedError), transaction.atomic():
        position.instance.delete()
    assert TradingInstance.objects.filter(pk=position.instance_id).exists()
    assert Position.objects.filter(pk=position.pk).exists()


def test_user_with_trading_history_cannot_be_deleted():
    trade = TradeFactory()
    user = trade.instance.user
    with pytest.raises(ProtectedError), transaction.atomic():
        user.delete()
    assert User.objects.filter(pk=user.pk).exists()
    assert Trade.objects.filter(pk=trade.pk).count() == 1
    assert Position.objects.filter(pk=trade.position_id).count() == 1


@pytest.mark.parametrize("child_factory", [FillFactory, TradeFactory])
def test_position_with_fills_or_trades_cannot_be_deleted(child_factory):
    child = child_factory()
    with pytest.raises(ProtectedError), transaction.atomic():
        child.position.delete()
    assert Position.objects.filter(pk=child.position_id).exists()
    assert type(child).objects.filter(pk=child.pk).exists()


def test_instance_with_fills_trades_or_statistics_cannot_be_deleted():
    statistic = DailyStatisticFactory()
    with pytest.raises(ProtectedError), transaction.atomic():
        statistic.instance.delete()
    assert DailyStatistic.objects.filter(pk=statistic.pk).exists()


def test_operator_who_decided_a_position_cannot_be_deleted():
    operator = OperatorFactory()
    position = PositionFactory(decided_by=operator)
    with pytest.raises(ProtectedError), transaction.atomic():
        operator.delete()
    assert Position.objects.get(pk=position.pk).decided_by_id == operator.pk


def test_instance_without_history_can_still_be_deleted():
    instance = TradingInstanceFactory()
    instance.delete()
    assert not TradingInstance.objects.filter(pk=instance.pk).exists()
