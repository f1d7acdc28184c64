"""Roles and the portfolio's default limits are code (each app's roles.py, risk.defaults): the migrated database
holds exactly what that code lists, and the engine's defaults are the same figures."""

from dataclasses import fields

import pytest
from django.contrib.auth.models import Group

from accounts import roles as accounts_roles
from monitoring import roles as monitoring_roles
from risk import roles as risk_roles
from risk.defaults import DEFAULT_LIMITS, PORTFOLIO_ID
from risk.engine.values import Limits
from risk.models import Portfolio, RiskLimits, TradingState
from trading import roles as trading_roles

pytestmark = pytest.mark.django_db

APPS = {"accounts": accounts_roles, "risk": risk_roles, "trading": trading_roles, "monitoring": monitoring_roles}


def listed(role: str) -> set[str]:
    granted = {f"{app}.{codename}" for app, module in APPS.items() for codename in module.PERMISSIONS[role]}
    if role in trading_roles.MARKET_PRICE_ROLES:
        granted.add(f"trading.{trading_roles.MARKET_PRICE_CODENAME}")
    return granted


def test_the_groups_hold_exactly_the_permissions_the_roles_modules_list():
    held = {
        group.name: {
            f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
        }
        for group in Group.objects.filter(name__in=accounts_roles.ROLES)
    }

    assert held == {role: listed(role) for role in accounts_roles.ROLES}
    assert "risk.manage_equity" in held[accounts_roles.RISK_ADMIN]
    assert "risk.approve_position" not in held[accounts_roles.VIEWER]


def test_every_listed_permission_exists():
    """A codename that no model defines would be granted to nobody, silently."""
    for role in accounts_roles.ROLES:
        held = {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=role).permissions.all()}
        assert listed(role) - held == set()


def test_the_reference_rows_hold_the_default_limits_and_the_engine_defaults_are_the_same():
    default_row = RiskLimits.objects.filter(instance__isnull=True).values(*DEFAULT_LIMITS).get()

    assert default_row == DEFAULT_LIMITS
    assert {field.name: getattr(Limits(), field.name) for field in fields(Limits)} == {
        field.name: DEFAULT_LIMITS[field.name] for field in fields(Limits)
    }
    assert Portfolio.objects.filter(pk=PORTFOLIO_ID).exists()
    assert TradingState.objects.get(instance__isnull=True).state == "active"
