"""Shared fixtures: real PostgreSQL (pytest-django's test database) and the suite's own Redis server."""

import pytest
from django_redis import get_redis_connection
from rest_framework.test import APIClient


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def redis_client():
    """The raw client of the cache's Redis, flushed before and after the test."""
    client = get_redis_connection("default")
    client.flushdb()
    yield client
    client.flushdb()


def _reference_rows() -> None:
    """Rows the data migrations create, which a transactional test's flush removes: the portfolio row, its default
    limits and trading state, and the operator roles (groups) with their permissions."""
    import importlib

    from django.apps import apps as django_apps
    from django.contrib.auth.models import Group, Permission

    from risk.models import Portfolio, RiskLimits, TradingState

    defaults = importlib.import_module("risk.migrations.0002_portfolio_defaults")
    equity_limits = importlib.import_module("risk.migrations.0007_equity_holds_and_transfers")
    Portfolio.objects.get_or_create(id=Portfolio.SINGLETON_ID)
    if not RiskLimits.objects.filter(instance__isnull=True).exists():
        RiskLimits.objects.create(
            instance=None,
            **defaults.DEFAULT_LIMITS,
            max_equity_increase_pct=equity_limits.DEFAULT_MAX_EQUITY_INCREASE_PCT,
        )
    if not TradingState.objects.filter(instance__isnull=True).exists():
        TradingState.objects.create(instance=None, state="active")
    for app_label, module in (
        ("accounts", "accounts.migrations.0004_operator_roles"),
        ("risk", "risk.migrations.0003_risk_roles"),
        ("risk", "risk.migrations.0007_equity_holds_and_transfers"),
        ("trading", "trading.migrations.0004_operator_view_roles"),
        ("monitoring", "monitoring.migrations.0003_alert_roles"),
    ):
        for role, codenames in importlib.import_module(module).ROLES.items():
            group, _ = Group.objects.get_or_create(name=role)
            group.permissions.add(*Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
    # The market-price write permission is created by its migration, not by a model's Meta.
    importlib.import_module("trading.migrations.0003_market_price_permission").grant(django_apps, None)


@pytest.fixture(autouse=True)
def reference_rows(request: pytest.FixtureRequest) -> None:
    """Re-create the migrations' reference rows before every database test (see `_reference_rows`)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", False) or (marker.args and marker.args[0])
    request.getfixturevalue("transactional_db" if transactional else "db")
    _reference_rows()


@pytest.fixture(autouse=True)
def fresh_health_probes() -> None:
    """/api/health reuses a probe round for a second: every test starts without one (a test may point the
    probes at a dead server)."""
    from monitoring.selectors import recent_component_health_clear

    recent_component_health_clear()
