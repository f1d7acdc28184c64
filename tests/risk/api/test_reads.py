"""The read endpoints: GET /api/positions, /api/positions/{id}, /api/risk/events, /api/risk/status.

Operators see everything; a bot only its own account (another account's id or position answers 404); bad query
values and unknown parameters answer 400 in the house error shape."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import TokenKind
from risk.models import Portfolio, RiskEvent, RiskLimits, TradingState
from tests.accounts.factories import TradingInstanceFactory, issue_token
from tests.risk.conftest import bot_client, operator_client
from tests.trading.factories import PositionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def book():
    """Two accounts: A holds an approved, a pending and a rejected position; B one open position."""
    a, b = TradingInstanceFactory(), TradingInstanceFactory()
    positions = {
        "a_approved": PositionFactory(instance=a),
        "a_pending": PositionFactory(instance=a, pending=True, symbol="ETH-USD"),
        "a_rejected": PositionFactory(instance=a, rejected=True),
        "b_open": PositionFactory(instance=b, open=True, symbol="SOL-USD"),
    }
    return a, b, positions


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# ---------------------------------------------------------------------------------------------- positions
def test_operator_lists_every_position_newest_first_in_the_list_shape(book):
    _, _, positions = book
    client, _ = operator_client("viewer")

    response = client.get("/api/positions")

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (4, None, None)
    assert ids(response) == sorted((p.pk for p in positions.values()), reverse=True)


def test_a_position_renders_every_field_as_the_write_endpoints_do(book):
    a, _, positions = book
    position = positions["a_approved"]
    client, _ = operator_client()

    body = client.get(f"/api/positions/{position.pk}").json()

    assert body == {
        "id": position.pk,
        "account_id": a.pk,
        "symbol": "BTC-USD",
        "side": "long",
        "status": "approved",
        "quantity": "0.50000000",
        "filled_quantity": "0.00000000",
        "closed_quantity": "0.00000000",
        "requested_price": "60000.00000000",
        "entry_price": None,
        "exit_price": None,
        "open_cost": "0.00000000",
        "notional": "30000.00000000",
        "realized_pnl": "0.00000000",
        "fees": "0.00000000",
        "reasons": [],
        "client_order_id": position.client_order_id,
        "reservation_expires_at": body["reservation_expires_at"],
        "unfilled_released_at": None,
        "decided_at": body["decided_at"],
        "decision_reason": "",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert datetime.datetime.fromisoformat(body["reservation_expires_at"]) == position.reservation_expires_at


def test_operator_filters_by_status_and_account(book):
    a, b, positions = book
    client, _ = operator_client()

    by_status = client.get("/api/positions", {"status": "pending_approval,open"})
    by_account = client.get("/api/positions", {"account_id": a.pk, "status": "approved"})
    unknown_account = client.get("/api/positions", {"account_id": b.pk + 1000})

    assert ids(by_status) == [positions["b_open"].pk, positions["a_pending"].pk]
    assert ids(by_account) == [positions["a_approved"].pk]
    assert unknown_account.status_code == 200
    assert unknown_account.json()["count"] == 0


def test_pages_are_capped_and_linked(book):
    client, _ = operator_client()

    first = client.get("/api/positions", {"page_size": 3}).json()
    second = client.get("/api/positions", {"page_size": 3, "page": 2}).json()

    assert (first["count"], len(first["results"]), first["previous"]) == (4, 3, None)
    assert first["next"].endswith("/api/positions?page=2&page_size=3")
    assert (len(second["results"]), second["next"]) == (1, None)


def test_a_bot_lists_only_its_own_positions(book):
    a, b, positions = book
    client = bot_client(a)

    everything = client.get("/api/positions")
    own = client.get("/api/positions", {"account_id": a.pk, "status": "rejected"})
    another = client.get("/api/positions", {"account_id": b.pk})

    assert ids(everything) == [positions["a_rejected"].pk, positions["a_pending"].pk, positions["a_approved"].pk]
    assert ids(own) == [positions["a_rejected"].pk]
    assert error(another) == (404, "account_not_found")


def test_a_bot_reads_its_own_position_and_never_another(book):
    a, _, positions = book
    client = bot_client(a)

    own = client.get(f"/api/positions/{positions['a_pending'].pk}")
    another = client.get(f"/api/positions/{positions['b_open'].pk}")
    unknown = client.get(f"/api/positions/{positions['b_open'].pk + 1000}")

    assert (own.status_code, own.json()["status"]) == (200, "pending_approval")
    assert error(another) == (404, "position_not_found")
    assert another.json() == unknown.json()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": "open,"}, "status"),
        ({"account_id": "abc"}, "account_id"),
        ({"account_id": "0"}, "account_id"),
        ({"account_id": "-3"}, "account_id"),
        ({"account_id": str(2**63)}, "account_id"),
        ({"statu": "open"}, "statu"),
    ],
)
def test_bad_position_filters_are_400_in_the_house_shape(book, params, field):
    client, _ = operator_client()

    response = client.get("/api/positions", params)

    assert error(response) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == [field]


def test_who_may_read_positions(book):
    _, _, positions = book
    feed = APIClient()
    feed.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(TokenKind.FEED)}")

    assert error(APIClient().get("/api/positions")) == (401, "not_authenticated")
    assert error(feed.get("/api/positions")) == (403, "permission_denied")
    assert error(feed.get(f"/api/positions/{positions['b_open'].pk}")) == (403, "permission_denied")


# ---------------------------------------------------------------------------------------------- events
def make_event(minutes_ago: float, *, severity="info", type="limit_breach", instance=None) -> RiskEvent:
    event = RiskEvent.objects.create(type=type, severity=severity, instance=instance, message=f"{type} {minutes_ago}")
    RiskEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - datetime.timedelta(minutes=minutes_ago))
    event.refresh_from_db()
    return event


@pytest.fixture
def events():
    account = TradingInstanceFactory()
    return account, {
        "old_info": make_event(300),
        "warning": make_event(120, severity="warning", instance=account),
        "critical": make_event(60, severity="critical", type="emergency_drawdown", instance=account),
        "new_info": make_event(1),
    }


def test_events_newest_first_with_every_field(events):
    account, made = events
    client, _ = operator_client("viewer")

    body = client.get("/api/risk/events").json()

    assert (body["count"], body["next"], body["previous"]) == (4, None, None)
    assert [row["id"] for row in body["results"]] == [
        made["new_info"].pk,
        made["critical"].pk,
        made["warning"].pk,
        made["old_info"].pk,
    ]
    critical = made["critical"]
    assert body["results"][1] == {
        "id": critical.pk,
        "type": "emergency_drawdown",
        "severity": "critical",
        "account_id": account.pk,
        "message": "emergency_drawdown 60",
        "details": {},
        "correlation_id": "",
        "created_at": critical.created_at.isoformat(),
    }


def test_event_filters(events):
    account, made = events
    client, _ = operator_client()
    now = timezone.now()

    def listed(**params) -> list[int]:
        return [row["id"] for row in client.get("/api/risk/events", params).json()["results"]]

    assert listed(severity="critical") == [made["critical"].pk]
    assert listed(type="limit_breach") == [made["new_info"].pk, made["warning"].pk, made["old_info"].pk]
    assert listed(account_id=account.pk) == [made["critical"].pk, made["warning"].pk]
    assert listed(account_id=account.pk + 1000) == []
    since = (now - datetime.timedelta(minutes=121)).isoformat()
    until = made["new_info"].created_at.isoformat()  # exclusive
    assert listed(since=since, until=until) == [made["critical"].pk, made["warning"].pk]
    assert listed(since=made["warning"].created_at.isoformat()) == [
        made["new_info"].pk,
        made["critical"].pk,
        made["warning"].pk,
    ]
    assert listed(limit=2) == [made["new_info"].pk, made["critical"].pk]


def test_event_limit_defaults_to_100_and_allows_1000():
    RiskEvent.objects.bulk_create(RiskEvent(type="t", severity="info", message=str(n)) for n in range(1001))
    client, _ = operator_client()

    assert client.get("/api/risk/events").json()["count"] == 100
    assert client.get("/api/risk/events", {"limit": 1000}).json()["count"] == 1000


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"severity": "fatal"}, "severity"),
        ({"account_id": "x"}, "account_id"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-01T00:00:00Z"}, "until"),
        ({"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "until"),
        ({"type": "x" * 65}, "type"),
        ({"level": "critical"}, "level"),
    ],
)
def test_bad_event_filters_are_400(params, field):
    client, _ = operator_client()

    response = client.get("/api/risk/events", params)

    assert error(response) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == [field]


def test_events_and_status_are_for_operators_only():
    account = TradingInstanceFactory()
    bot = bot_client(account)

    assert error(bot.get("/api/risk/events")) == (403, "permission_denied")
    assert error(bot.get("/api/risk/status")) == (403, "permission_denied")
    assert error(APIClient().get("/api/risk/status")) == (401, "not_authenticated")


# ---------------------------------------------------------------------------------------------- status
def test_status_shows_limits_states_accounts_counters_and_recent_critical_events():
    halted, reducing, active = TradingInstanceFactory(), TradingInstanceFactory(), TradingInstanceFactory()
    TradingInstanceFactory(is_active=False)
    client, operator = operator_client()
    RiskLimits.objects.create(instance=halted, max_position_pct=Decimal("0.05"), max_total_positions=7)
    TradingState.objects.create(instance=halted, state="halted", reason="drawdown", changed_by=operator)
    TradingState.objects.create(instance=reducing, state="reducing", reason="review")
    TradingState.objects.create(instance=active, state="active", reason="resumed")
    Portfolio.objects.filter(pk=1).update(
        equity=Decimal("1000000"), day_start_equity=Decimal("1010000"), exposure=Decimal("250000.5"), position_count=12
    )
    recent = make_event(30, severity="critical", type="emergency_drawdown", instance=halted)
    make_event(25 * 60, severity="critical")  # older than 24 h
    make_event(5, severity="warning")

    body = client.get("/api/risk/status").json()

    assert body["limits"]["default"] == {
        "max_portfolio_exposure_pct": "0.800000",
        "max_daily_loss_pct": "0.050000",
        "max_total_positions": 50,
        "max_account_exposure_pct": "0.900000",
        "max_position_pct": "0.200000",
        "max_symbol_exposure_pct": "0.300000",
        "max_drawdown_pct": "0.200000",
        "emergency_daily_loss_pct": "0.080000",
        "emergency_drawdown_pct": "0.250000",
        "approval_threshold": "25000.00000000",
        "reservation_ttl_seconds": 120,
        "approval_ttl_seconds": 900,
        "max_equity_increase_pct": "0.500000",
        "equity_max_age_seconds": 900,
        "heartbeat_timeout_seconds": 120,
    }
    assert body["limits"]["overrides"] == [
        {"account_id": halted.pk, "max_total_positions": 7, "max_position_pct": "0.050000"}
    ]
    assert body["states"]["portfolio"]["state"] == "active"
    assert [(s["account_id"], s["state"], s["reason"]) for s in body["states"]["accounts"]] == [
        (halted.pk, "halted", "drawdown"),
        (reducing.pk, "reducing", "review"),
    ]
    assert body["states"]["accounts"][0]["changed_by"] == operator.username
    assert body["accounts"] == {"total": 4, "active": 3}
    assert body["portfolio"] == {
        "equity": "1000000.00000000",
        "day_start_equity": "1010000.00000000",
        "daily_pnl": "-10000.00000000",
        "exposure": "250000.50000000",
        "position_count": 12,
        "counters_verified_at": None,
    }
    assert [event["id"] for event in body["critical_events"]] == [recent.pk]


def test_status_costs_a_fixed_number_of_queries(django_assert_max_num_queries):
    client, _ = operator_client()
    for _ in range(30):
        TradingState.objects.create(instance=TradingInstanceFactory(), state="halted", reason="x")
    client.get("/api/risk/status")  # warm the token cache

    with django_assert_max_num_queries(7):
        response = client.get("/api/risk/status")

    assert len(response.json()["states"]["accounts"]) == 30
