"""The monitoring endpoints with real tokens: who may call each (operator, a bot on its own account, a bot on
another's: 404, a bot or a feed on operator routes: 403, nobody: 401), their shapes and figures, strict query
strings (an unknown parameter or a bad value is a 400 naming it), and 503 when nothing is cached yet."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import TokenKind
from accounts.services import audit_entry_create
from monitoring.models import MetricSnapshot
from monitoring.services import aggregation_run, analytics_run
from risk.models import RiskLimits
from risk.services.trading_state import trading_halt
from tests.accounts.factories import OperatorFactory, issue_token
from tests.monitoring.desk import marks, small_desk
from tests.risk.conftest import bot_client, operator_client
from tests.risk.services.test_equity import report

OPERATOR_ROUTES = [
    "/api/dashboard/overview",
    "/api/portfolio/metrics",
    "/api/portfolio/history",
    "/api/system/health",
    "/api/analytics/correlation",
    "/api/analytics/risk",
    "/api/audit",
]
NOT_AUTHENTICATED = {"error": {"code": "not_authenticated", "message": "Authentication credentials were not provided."}}
ACCOUNT_NOT_FOUND = {"error": {"code": "account_not_found", "message": "Unknown account."}}


@pytest.fixture(autouse=True)
def _clean_redis(redis_client) -> None:
    """No mark or snapshot from another test."""


@pytest.fixture
def desk():
    a, b = small_desk()
    marks(BTC="60000", ETH="2500")
    aggregation_run(now=timezone.now())
    analytics_run(now=timezone.now())
    return a, b


def feed_client():
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(TokenKind.FEED)}")
    return client


# ---------------------------------------------------------------------------------------------- authorization
@pytest.mark.django_db
@pytest.mark.parametrize("path", OPERATOR_ROUTES)
def test_operator_routes_answer_operators_refuse_bots_and_feeds_and_ask_for_credentials(path, desk, api_client):
    operator, _ = operator_client("viewer")
    a, _ = desk

    assert operator.get(path).status_code == 200
    for refused in (bot_client(a), feed_client()):
        response = refused.get(path)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    response = api_client.get(path)
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


@pytest.mark.django_db
def test_an_account_answers_its_operator_and_its_own_bot_and_not_another_bot(desk, api_client):
    a, b = desk
    operator, _ = operator_client("viewer")
    path = f"/api/accounts/{a.pk}"

    assert operator.get(path).status_code == 200
    assert bot_client(a).get(path).json()["id"] == a.pk
    other = bot_client(b).get(path)
    assert other.status_code == 404
    assert other.json() == ACCOUNT_NOT_FOUND
    assert operator.get("/api/accounts/999999999").json() == ACCOUNT_NOT_FOUND
    assert feed_client().get(path).status_code == 403
    assert api_client.get(path).status_code == 401


@pytest.mark.django_db
def test_the_account_list_shows_a_bot_only_its_own_account(desk, api_client):
    _, b = desk
    operator, _ = operator_client("viewer")

    assert operator.get("/api/accounts").json()["count"] == 2
    own = bot_client(b).get("/api/accounts").json()
    assert (own["count"], [row["id"] for row in own["results"]]) == (1, [b.pk])
    assert feed_client().get("/api/accounts").status_code == 403
    assert api_client.get("/api/accounts").status_code == 401


# ---------------------------------------------------------------------------------------------- snapshot reads
@pytest.mark.django_db
def test_overview_and_metrics_read_the_snapshot_and_say_how_old_it_is(desk):
    a, _ = desk
    operator, user = operator_client("risk_admin")
    trading_halt(instance_id=a.pk, mode="reducing", reason="test", actor=user, now=timezone.now())

    overview = operator.get("/api/dashboard/overview").json()
    metrics = operator.get("/api/portfolio/metrics").json()

    assert overview["snapshot"]["age_seconds"] >= 0
    assert overview["snapshot"]["stale"] is False
    assert overview["portfolio"]["market_exposure"] == "27000.00000000"
    assert overview["accounts"]["active"] == 2
    assert overview["trading_states"]["portfolio"]["state"] == "active"
    assert [(s["account_id"], s["state"]) for s in overview["trading_states"]["accounts"]] == [(a.pk, "reducing")]
    assert overview["risk_events"][0]["type"] == "trading_reducing"
    assert overview["health"]["status"] == "ok"
    assert set(overview) >= {"concentration", "limits", "largest_accounts", "counters", "emergency"}
    assert metrics["portfolio"] == overview["portfolio"]
    assert {row["limit"] for row in metrics["limits"]} >= {"portfolio_exposure", "max_open_positions"}


@pytest.mark.django_db
def test_without_a_snapshot_the_desk_endpoints_answer_503_and_aggregate_nothing():
    operator, _ = operator_client("viewer")

    for path in ("/api/dashboard/overview", "/api/portfolio/metrics"):
        response = operator.get(path)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "snapshot_unavailable"
    for path in ("/api/analytics/correlation", "/api/analytics/risk"):
        assert operator.get(path).json()["error"]["code"] == "analytics_unavailable"
    assert not MetricSnapshot.objects.exists()


# ---------------------------------------------------------------------------------------------- accounts
@pytest.mark.django_db
def test_account_figures_at_the_marks(desk):
    a, b = desk
    operator, _ = operator_client("viewer")

    detail = operator.get(f"/api/accounts/{a.pk}").json()

    assert (detail["equity"], detail["exposure"]) == ("100000.00000000", "22000.00000000")
    # 0.3 x 60,000 + (6,000 + 2 x (2,500 - 3,000)) + 1,000 = 24,000; unrealized 3,000 + 1,000.
    assert (detail["market_exposure"], detail["unrealized_pnl"]) == ("24000.00000000", "4000.00000000")
    assert detail["exposure_pct"] == "0.24000000"
    assert detail["position_count"] == 3
    assert detail["stale"] is False
    usage = {row["limit"]: row["usage"] for row in detail["limits"]}
    assert usage["account_exposure"] == "0.24444444"  # 22,000 / (0.90 x 100,000)
    assert usage["max_open_positions"] == "0.00300000"  # 3 / 1,000
    assert [row["symbol"] for row in detail["by_symbol"]] == ["BTC-USD", "ETH-USD", "SOL-USD"]
    trades = operator.get(f"/api/accounts/{b.pk}").json()["trades"]
    assert (trades["closed"], trades["win_rate"], trades["profit_factor"]) == (1, "1.00000000", None)


@pytest.mark.django_db
def test_accounts_sort_filter_and_paginate(desk):
    a, b = desk
    operator, user = operator_client("risk_admin")
    report(b, "45000")  # B: 10 % drawdown, a 5,000 daily loss
    trading_halt(instance_id=b.pk, mode="halted", reason="test", actor=user, now=timezone.now())

    by_drawdown = operator.get("/api/accounts?sort=-drawdown").json()
    by_pnl = operator.get("/api/accounts?sort=daily_pnl").json()
    halted = operator.get("/api/accounts?state=halted").json()
    page = operator.get("/api/accounts?sort=id&page_size=1&page=2").json()

    assert [row["id"] for row in by_drawdown["results"]] == [b.pk, a.pk]
    assert by_drawdown["results"][0]["drawdown"] == "0.10000000"
    assert [row["daily_pnl"] for row in by_pnl["results"]] == ["-5000.00000000", "0.00000000"]
    assert [row["id"] for row in halted["results"]] == [b.pk]
    assert (page["count"], [row["id"] for row in page["results"]]) == (2, [max(a.pk, b.pk)])
    assert operator.get("/api/accounts?stale=true").json()["count"] == 0


@pytest.mark.django_db
def test_accounts_holding_an_equity_increase_list_it_until_it_is_confirmed(desk):
    a, b = desk
    report(b, "90000")  # +80 % over 50,000: beyond max_equity_increase_pct (50 %), held
    report(b, "95000")  # a later held report replaces the figure
    operator, _ = operator_client("risk_admin")

    held = operator.get("/api/accounts?held=true").json()
    not_held = operator.get("/api/accounts?held=false").json()
    detail = operator.get(f"/api/accounts/{b.pk}").json()

    assert [row["id"] for row in held["results"]] == [b.pk]
    hold = held["results"][0]["equity_hold"]
    assert (hold["equity"], hold["accepted_equity"], hold["reports"]) == ("95000.00000000", "50000.00000000", 2)
    assert held["results"][0]["equity"] == "50000.00000000"  # not applied
    assert detail["equity_hold"] == hold
    assert [(row["id"], row["equity_hold"]) for row in not_held["results"]] == [(a.pk, None)]
    confirmed = operator.post(
        f"/api/accounts/{b.pk}/equity/confirm", {"reason": "deposit seen", "equity": "95000"}, format="json"
    )
    assert confirmed.status_code == 200, confirmed.json()
    assert operator.get("/api/accounts?held=true").json()["count"] == 0


@pytest.mark.django_db
def test_an_account_past_a_limit_shows_which_and_how_far(desk):
    _, b = desk
    RiskLimits.objects.create(instance=b, max_drawdown_pct=Decimal("0.10"))
    report(b, "45000")  # 10 % drawdown reaches the 10 % override; a 5,000 loss is twice the 2,500 (5 %) limit
    operator, _ = operator_client("viewer")

    limits = {row["limit"]: row for row in operator.get(f"/api/accounts/{b.pk}").json()["limits"]}

    assert (limits["drawdown_limit"]["usage"], limits["drawdown_limit"]["status"]) == ("1.00000000", "breached")
    assert (limits["daily_loss_limit"]["usage"], limits["daily_loss_limit"]["status"]) == ("2.00000000", "breached")
    assert (limits["emergency_drawdown"]["usage"], limits["emergency_drawdown"]["status"]) == ("0.40000000", "ok")
    aggregation_run(now=timezone.now())
    overview = operator.get("/api/dashboard/overview").json()
    (listed,) = overview["limits"]["accounts"]
    assert listed["account_id"] == b.pk
    assert [(row["limit"], row["status"]) for row in listed["limits"]] == [
        ("daily_loss_limit", "breached"),
        ("drawdown_limit", "breached"),
    ]
    assert overview["accounts"]["past_limit"] == 1
    assert overview["accounts"]["by_limit"]["drawdown_limit"] == {"near": 0, "breached": 1}


# ---------------------------------------------------------------------------------------------- history
@pytest.mark.django_db
def test_history_is_downsampled_to_at_most_500_points_each_the_last_of_its_bucket():
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(days=3)
    MetricSnapshot.objects.bulk_create(
        MetricSnapshot(
            minute=start + timedelta(minutes=n),
            taken_at=start + timedelta(minutes=n),
            equity=Decimal(1000 + n),
            day_start_equity=Decimal(1000),
            peak_equity=Decimal(5000),
            exposure=Decimal(10),
            market_exposure=Decimal(12),
            unrealized_pnl=Decimal(2),
            position_count=1,
            account_count=1,
            stale_account_count=0,
        )
        for n in range(3 * 24 * 60)  # 4,320 minutes
    )
    operator, _ = operator_client("viewer")
    since, until = start.isoformat(), (start + timedelta(days=3)).isoformat()

    body = operator.get("/api/portfolio/history", {"since": since, "until": until}).json()

    assert body["bucket_seconds"] == 519  # ceil(259,200 s / 500)
    assert body["count"] == len(body["points"]) == 500
    # Bucket 0 holds minutes 0..8 (0 to 480 s; 540 s is bucket 1): its last row is minute 8.
    assert (body["points"][0]["equity"], body["points"][1]["equity"]) == ("1008.00000000", "1017.00000000")
    assert body["points"][-1]["equity"] == "5319.00000000"  # the last minute of the range
    assert body["points"][0]["drawdown"] == "0.79840000"  # (5,000 - 1,008) / 5,000
    short = operator.get(
        "/api/portfolio/history", {"since": since, "until": (start + timedelta(minutes=10)).isoformat()}
    )
    assert short.json()["bucket_seconds"] == 60
    assert short.json()["count"] == 10


# ---------------------------------------------------------------------------------------------- system, audit
@pytest.mark.django_db
def test_system_health_lists_components_host_queue_and_periodic_tasks(desk):
    from django.core.management import call_command

    call_command("sync_schedule", stdout=open("/dev/null", "w"))  # noqa: SIM115
    operator, _ = operator_client("viewer")

    body = operator.get("/api/system/health").json()

    assert body["status"] == "ok"
    assert {name: row["status"] for name, row in body["components"].items()} == {
        "database": "ok",
        "redis": "ok",
        "celery": "ok",
    }
    assert set(body["host"]) == {"cpu", "memory", "disk", "load"}
    assert body["celery"]["queue_depth"] == {"celery": 0}
    assert {task["task"] for task in body["periodic_tasks"]} >= {"monitoring.aggregate", "risk.expire_reservations"}
    assert body["snapshot"]["stale"] is False
    assert set(body["dropped"]) == {
        "logs",
        "events_publish_failures_this_process",
        "rate_limiter_fail_open_this_process",
    }


@pytest.mark.django_db
def test_the_audit_trail_filters_by_actor_action_and_time_newest_first():
    alice, bob = OperatorFactory(username="alice"), OperatorFactory(username="bob")
    for actor, action in ((alice, "limits.change"), (bob, "limits.change"), (alice, "trading_state.change")):
        audit_entry_create(actor=actor, action=action, target=alice, before={}, after={}, reason="test")
    audit_entry_create(actor=None, action="trading_state.change", target=alice, before={}, after={}, reason="halt")
    operator, _ = operator_client("viewer")

    alice_entries = operator.get("/api/audit", {"actor": "alice"}).json()
    system = operator.get("/api/audit", {"actor": "", "action": "trading_state.change"}).json()
    changes = operator.get("/api/audit", {"action": "limits.change"}).json()
    future = operator.get("/api/audit", {"since": (timezone.now() + timedelta(hours=1)).isoformat()}).json()

    assert [entry["action"] for entry in alice_entries["results"]] == ["trading_state.change", "limits.change"]
    assert [(entry["actor"], entry["reason"]) for entry in system["results"]] == [("", "halt")]
    assert [entry["actor"] for entry in changes["results"]] == ["bob", "alice"]
    assert future["count"] == 0


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/portfolio/history", {"since": "yesterday"}, "since"),
        ("/api/portfolio/history", {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ("/api/portfolio/history", {"from": "2026-01-01T00:00:00Z"}, "from"),
        ("/api/portfolio/history", {"until": "0001-01-01T12:00:00Z"}, "until"),  # no day before it to start from
        ("/api/accounts", {"sort": "profit"}, "sort"),
        ("/api/accounts", {"state": "paused"}, "state"),
        ("/api/accounts", {"stale": "maybe"}, "stale"),
        ("/api/accounts", {"held": "sometimes"}, "held"),
        ("/api/accounts", {"page": "0"}, "page"),
        ("/api/accounts", {"page": "1" * 40}, "page"),
        ("/api/accounts", {"page_size": "501"}, "page_size"),
        ("/api/accounts", {"page_size": "NaN"}, "page_size"),
        ("/api/audit", {"actor": "x" * 151}, "actor"),
        ("/api/audit", {"until": "Infinity"}, "until"),
        ("/api/dashboard/overview", {"verbose": "1"}, "verbose"),
        ("/api/system/health", {"x": "1"}, "x"),
    ],
)
def test_bad_query_strings_are_a_400_naming_the_field(path, params, field):
    operator, _ = operator_client("viewer")

    response = operator.get(path, params)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_a_long_query_value_costs_what_a_short_one_costs():
    operator, _ = operator_client("viewer")

    response = operator.get("/api/audit", {"action": "a" * 60_000})

    assert response.status_code == 400
    assert "action" in response.json()["error"]["fields"]
