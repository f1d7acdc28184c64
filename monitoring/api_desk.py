"""The desk endpoints: overview, portfolio metrics and history, analytics (operators only).

Thin views: validate the query string (an unknown parameter or a bad value is a 400 naming it), read, render.
Overview and metrics read the cached snapshot the aggregation task writes every few seconds and say how old it
is; without one they answer 503 `snapshot_unavailable` rather than aggregate the whole desk per request. The
analytics read their own cached run the same way (503 `analytics_unavailable`). PostgreSQL or Redis unreachable:
503 `store_unavailable`.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from redis import RedisError
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import TradingInstance
from monitoring import api_schema as schema
from monitoring.desk import amount
from monitoring.errors import AnalyticsUnavailable, SnapshotUnavailable, StoreUnavailable
from monitoring.figures import drawdown
from monitoring.selectors import recent_component_health
from monitoring.selectors_history import portfolio_series
from monitoring.snapshots import age_seconds, analytics_get, snapshot_get
from nija.api.permissions import IsOperator
from risk.api_reads import query
from risk.engine.money import ratio
from risk.models import TradingState, TradingStateValue
from risk.outputs import risk_event_json, trading_state_json
from risk.selectors import risk_event_list

RECENT_EVENTS = 20
LISTED_STATES = 100
DEFAULT_HISTORY = timedelta(hours=24)
STALE_AFTER_INTERVALS = 3


class MonitoringApiView(APIView):
    """Every monitoring read: PostgreSQL or Redis unreachable is a 503 that says so."""

    permission_classes = [IsOperator]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DatabaseError | RedisError):
            exc = StoreUnavailable(f"PostgreSQL or Redis is unavailable ({type(exc).__name__}); retry shortly.")
        return super().handle_exception(exc)


def snapshot_or_503() -> dict[str, Any]:
    snapshot = snapshot_get()
    if snapshot is None:
        raise SnapshotUnavailable()
    return snapshot


def snapshot_age(snapshot: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """When the snapshot was computed, its age, and whether the aggregation is behind (3 intervals or more)."""
    age = age_seconds(snapshot["computed_at"], now=now)
    interval = snapshot["interval_seconds"]
    return {
        "computed_at": snapshot["computed_at"],
        "age_seconds": age,
        "stale": age >= STALE_AFTER_INTERVALS * interval,
        "interval_seconds": interval,
        "duration_ms": snapshot["duration_ms"],
    }


class PortfolioMetricsApi(MonitoringApiView):
    """GET /api/portfolio/metrics: equity, exposure (booked and at the marks), positions, daily P&L, drawdown,
    trade statistics, concentration by symbol and correlation group, and every portfolio limit's usage."""

    @extend_schema(responses={200: schema.PortfolioMetricsOutput}, examples=[schema.METRICS_EXAMPLE])
    def get(self, request: Request) -> Response:
        query(serializers.Serializer, request)
        snapshot = snapshot_or_503()
        return Response(
            {
                "snapshot": snapshot_age(snapshot, now=timezone.now()),
                "portfolio": snapshot["portfolio"],
                "concentration": snapshot["concentration"],
                "limits": snapshot["limits"]["portfolio"],
            }
        )


class DashboardOverviewApi(MonitoringApiView):
    """GET /api/dashboard/overview: the snapshot (portfolio, concentration, limits, accounts summary, the accounts
    nearest their limits and the largest, counter check, emergency pass) with its age, and live: the 20 newest
    risk events, the trading states that are not ACTIVE, and the health of PostgreSQL, Redis and the broker."""

    @extend_schema(responses={200: schema.OverviewOutput})
    def get(self, request: Request) -> Response:
        query(serializers.Serializer, request)
        snapshot = snapshot_or_503()
        now = timezone.now()
        components = recent_component_health().components
        return Response(
            {
                "snapshot": snapshot_age(snapshot, now=now),
                **{
                    key: snapshot[key]
                    for key in (
                        "portfolio",
                        "concentration",
                        "limits",
                        "accounts",
                        "largest_accounts",
                        "counters",
                        "emergency",
                    )
                },
                "risk_events": [risk_event_json(event) for event in risk_event_list(limit=RECENT_EVENTS)],
                "trading_states": _trading_states(),
                "health": {
                    "status": "ok" if all(result.ok for result in components.values()) else "unavailable",
                    **{name: result.as_dict() for name, result in components.items()},
                },
            }
        )


def _trading_states() -> dict[str, Any]:
    """The portfolio's state and the accounts not ACTIVE (at most LISTED_STATES, most recent changes first)."""
    rows = TradingState.objects.select_related("changed_by")
    portfolio = rows.filter(instance__isnull=True).first()
    others = rows.filter(instance__isnull=False).exclude(state=TradingStateValue.ACTIVE).order_by("-changed_at")
    listed = list(others[:LISTED_STATES])
    return {
        "portfolio": trading_state_json(portfolio),
        "accounts": [trading_state_json(state) for state in listed],
        "accounts_not_active": len(listed) if len(listed) < LISTED_STATES else others.count(),
    }


class HistoryQuery(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict) -> dict:
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or _default_since(until)
        if since >= until:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return {"since": since, "until": until}


def _default_since(until: datetime) -> datetime:
    try:
        return until - DEFAULT_HISTORY
    except OverflowError:  # until within a day of the year 1
        raise serializers.ValidationError({"until": ["Too early: give since as well."]}) from None


class PortfolioHistoryApi(MonitoringApiView):
    """GET /api/portfolio/history?since=&until=: the minute history (default: the last 24 hours), at most 500
    points for any range: the range is cut into equal buckets (`bucket_seconds`, a minute at least) and each
    answers its last snapshot. since inclusive, until exclusive, ISO 8601."""

    @extend_schema(parameters=[HistoryQuery], responses={200: schema.HistoryOutput}, examples=[schema.HISTORY_EXAMPLE])
    def get(self, request: Request) -> Response:
        window = query(HistoryQuery, request)
        series = portfolio_series(since=window["since"], until=window["until"])
        points = [_history_point(row) for row in series.rows]
        return Response(
            {
                "since": series.since,
                "until": series.until,
                "bucket_seconds": series.bucket_seconds,
                "count": len(points),
                "points": points,
            }
        )


def _history_point(row: dict[str, Any]) -> dict[str, Any]:
    equity, day_start = row["equity"], row["day_start_equity"]
    return {
        "time": row["minute"],
        "equity": amount(equity),
        "day_start_equity": amount(day_start),
        "daily_pnl": amount(equity - day_start),
        "peak_equity": amount(row["peak_equity"]),
        "drawdown": amount(drawdown(equity, row["peak_equity"])),
        "exposure": amount(row["exposure"]),
        "market_exposure": amount(row["market_exposure"]),
        "exposure_pct": amount(ratio(row["market_exposure"], equity)),
        "unrealized_pnl": amount(row["unrealized_pnl"]),
        "position_count": row["position_count"],
        "account_count": row["account_count"],
        "stale_account_count": row["stale_account_count"],
    }


# ---------------------------------------------------------------------------------------------- analytics
def analytics_or_503() -> dict[str, Any]:
    analytics = analytics_get()
    if analytics is None:
        raise AnalyticsUnavailable()
    return analytics


class AnalyticsCorrelationApi(MonitoringApiView):
    """GET /api/analytics/correlation: Pearson correlation of daily returns between the largest accounts by
    exposure (at most MONITORING_CORRELATION_ACCOUNTS), each pair over its common days, null below 20 of them."""

    @extend_schema(responses={200: schema.CorrelationOutput}, examples=[schema.CORRELATION_EXAMPLE])
    def get(self, request: Request) -> Response:
        query(serializers.Serializer, request)
        analytics = analytics_or_503()
        correlation = analytics["correlation"]
        names = dict(TradingInstance.objects.filter(pk__in=correlation["account_ids"]).values_list("pk", "name"))
        return Response(
            {
                "computed_at": analytics["computed_at"],
                "age_seconds": age_seconds(analytics["computed_at"], now=timezone.now()),
                "window": analytics["window"],
                "accounts": [{"id": pk, "name": names.get(pk)} for pk in correlation["account_ids"]],
                "coefficients": correlation["coefficients"],
                "days": correlation["days"],
            }
        )


class AnalyticsRiskApi(MonitoringApiView):
    """GET /api/analytics/risk: the portfolio's historical one-day VaR and expected shortfall at 95 % and 99 %
    from its daily P&L, each with the days it rests on (no figure below 20 days: `enough_history` false)."""

    @extend_schema(
        responses={200: schema.RiskAnalyticsOutput},
        examples=[
            OpenApiExample(
                "Ninety days of history",
                value={
                    "computed_at": "2026-05-04T12:00:00+00:00",
                    "age_seconds": 42.0,
                    "window": {"since": "2026-02-03", "until": "2026-05-04", "min_days": 20},
                    "days": 90,
                    "horizon_days": 1,
                    "method": "historical",
                    "figures": [
                        {
                            "confidence": "0.95000000",
                            "days": 90,
                            "tail_days": 5,
                            "value_at_risk": "4200.00000000",
                            "expected_shortfall": "6120.50000000",
                            "enough_history": True,
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        query(serializers.Serializer, request)
        analytics = analytics_or_503()
        return Response(
            {
                "computed_at": analytics["computed_at"],
                "age_seconds": age_seconds(analytics["computed_at"], now=timezone.now()),
                "window": analytics["window"],
                **analytics["risk"],
            }
        )
