"""The operator admin for trading history: changelists cost a fixed number of queries whatever the row count,
filters and search work, and the pages are read-only (no add, change or delete)."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import TradingInstance
from tests.accounts.factories import TradingInstanceFactory
from tests.trading.factories import DailyStatisticFactory, FillFactory, PositionFactory, TradeFactory
from trading.models import Position, PositionStatus, Side, Trade

pytestmark = pytest.mark.django_db

# Pinned query counts of one changelist page: the user (the session itself comes from the Redis cache), the
# page's count, its rows with their instance (and user) joined, and for positions the symbol filter's values.
POSITION_CHANGELIST_QUERIES = 4
INSTANCE_CHANGELIST_QUERIES = 3


def make_positions(count: int, instances: int = 20) -> list[TradingInstance]:
    """`count` positions over `instances` instances, in a few symbols, statuses and sides."""
    owners = TradingInstanceFactory.create_batch(instances)
    symbols = ["BTC-USD", "ETH-USD", "SOL-USD"]
    statuses = [PositionStatus.APPROVED, PositionStatus.REJECTED, PositionStatus.CANCELLED]
    Position.objects.bulk_create(
        PositionFactory.build(
            instance=owners[index % instances],
            symbol=symbols[index % 3],
            status=statuses[index % 3],
            side=Side.SHORT if index % 2 else Side.LONG,
        )
        for index in range(count)
    )
    return owners


def changelist_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_position_changelist_queries_do_not_grow_with_rows(admin_client):
    url = reverse("admin:trading_position_changelist")
    make_positions(30, instances=5)
    small = changelist_queries(admin_client, url)
    make_positions(400)
    large = changelist_queries(admin_client, url)
    assert small == large == POSITION_CHANGELIST_QUERIES


def test_position_changelist_at_scale_with_filter_and_search(admin_client, django_assert_num_queries):
    make_positions(400)
    url = reverse("admin:trading_position_changelist")
    with django_assert_num_queries(POSITION_CHANGELIST_QUERIES):
        response = admin_client.get(url)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 50
    with django_assert_num_queries(POSITION_CHANGELIST_QUERIES):
        filtered = admin_client.get(url, {"status__exact": "rejected", "side__exact": "long", "q": "ETH"})
    rows = filtered.context["cl"].result_list
    assert {(p.status, p.side, p.symbol) for p in rows} == {("rejected", "long", "ETH-USD")}


def test_position_changelist_searches_instance_name_and_client_order_id(admin_client):
    owners = make_positions(40, instances=4)
    PositionFactory(instance=owners[0], client_order_id="needle-42")
    url = reverse("admin:trading_position_changelist")
    by_order = admin_client.get(url, {"q": "needle-42"}).context["cl"].result_list
    assert [p.client_order_id for p in by_order] == ["needle-42"]
    by_name = admin_client.get(url, {"q": owners[1].name}).context["cl"].result_list
    assert {p.instance_id for p in by_name} == {owners[1].pk}
    assert len(by_name) == 10


def test_instance_changelist_at_scale_has_bounded_queries(admin_client, django_assert_num_queries):
    TradingInstanceFactory.create_batch(5)
    url = reverse("admin:accounts_tradinginstance_changelist")
    small = changelist_queries(admin_client, url)
    TradingInstanceFactory.create_batch(300)
    with django_assert_num_queries(INSTANCE_CHANGELIST_QUERIES):
        response = admin_client.get(url)
    assert response.status_code == 200
    assert small == INSTANCE_CHANGELIST_QUERIES
    assert len(response.context["cl"].result_list) == 100


@pytest.mark.parametrize("model", ["fill", "trade", "dailystatistic"])
def test_other_changelists_have_bounded_queries(admin_client, model):
    url = reverse(f"admin:trading_{model}_changelist")
    FillFactory.create_batch(3)
    TradeFactory.create_batch(3)
    DailyStatisticFactory.create_batch(3)
    small = changelist_queries(admin_client, url)
    FillFactory.create_batch(40)
    TradeFactory.create_batch(40)
    DailyStatisticFactory.create_batch(40)
    assert changelist_queries(admin_client, url) == small


def test_trade_changelist_drills_down_by_closed_at(admin_client):
    TradeFactory(closed_at=datetime.datetime(2026, 3, 5, 12, tzinfo=datetime.UTC))
    TradeFactory(closed_at=datetime.datetime(2026, 4, 1, 12, tzinfo=datetime.UTC))
    url = reverse("admin:trading_trade_changelist")
    response = admin_client.get(url, {"closed_at__year": "2026", "closed_at__month": "3"})
    assert response.status_code == 200
    assert [t.closed_at.month for t in response.context["cl"].result_list] == [3]


def test_position_admin_is_read_only(admin_client):
    position = PositionFactory(pending=True)
    change_url = reverse("admin:trading_position_change", args=[position.pk])
    assert admin_client.get(reverse("admin:trading_position_add")).status_code == 403
    assert admin_client.get(reverse("admin:trading_position_delete", args=[position.pk])).status_code == 403
    page = admin_client.get(change_url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    response = admin_client.post(change_url, {"status": "approved", "notional": "1"})
    assert response.status_code == 403
    position.refresh_from_db()
    assert (position.status, position.notional) == (PositionStatus.PENDING_APPROVAL, Decimal("30000.00000000"))


def test_trade_admin_is_read_only(admin_client):
    trade = TradeFactory(closed_at=timezone.now())
    assert admin_client.get(reverse("admin:trading_trade_add")).status_code == 403
    assert admin_client.post(reverse("admin:trading_trade_delete", args=[trade.pk]), {"post": "yes"}).status_code == 403
    assert Trade.objects.filter(pk=trade.pk).exists()
