"""Shared fixtures: real PostgreSQL (pytest-django's test database) and the suite's own Redis server."""

import psycopg2
import pytest
from django.conf import settings
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from tests.session_guard import GuardedResource, SessionClash, SessionGuard, redis_server

_guard: SessionGuard | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to start when another test session uses this session's test database or test Redis (see
    tests/session_guard.py); hold both until the session ends."""
    global _guard
    database = settings.DATABASES["default"]
    guard = SessionGuard(
        database,
        [
            GuardedResource("database", database.get("TEST", {}).get("NAME") or f"test_{database['NAME']}"),
            GuardedResource("redis", redis_server(settings.REDIS_URL)),
        ],
    )
    try:
        guard.acquire()
    except SessionClash as clash:
        pytest.exit(str(clash), returncode=pytest.ExitCode.USAGE_ERROR)
    except psycopg2.OperationalError:
        return  # PostgreSQL is not there: the database tests say so themselves
    _guard = guard


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _guard is not None:
        _guard.release()


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
    """Rows the data migrations create, which a transactional test's flush removes, re-created by the same code
    the migrations run: the portfolio row, its default limits and trading state (risk.defaults), and the operator
    roles with their permissions (each app's roles.py)."""
    from django.apps import apps as django_apps

    from accounts import roles as accounts_roles
    from monitoring import roles as monitoring_roles
    from risk import roles as risk_roles
    from risk.defaults import reference_rows_ensure
    from trading import roles as trading_roles

    reference_rows_ensure(django_apps)
    for app_label, roles in (
        ("accounts", accounts_roles),
        ("risk", risk_roles),
        ("trading", trading_roles),
        ("monitoring", monitoring_roles),
    ):
        accounts_roles.grant_roles(django_apps, app_label, roles.PERMISSIONS)
    trading_roles.market_price_permission_grant(django_apps)


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
