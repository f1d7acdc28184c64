"""Subscription tiers: trading-limit defaults here, API rate limits only in settings.RATE_LIMITS."""

from dataclasses import fields

from django.conf import settings

from accounts.models import SubscriptionTier
from accounts.tiers import TIER_DEFAULTS, TierDefaults, permission_defaults


def test_tier_defaults_hold_trading_limits_only():
    assert [field.name for field in fields(TierDefaults)] == [
        "can_trade",
        "max_position_size",
        "max_daily_loss",
        "max_open_positions",
    ]
    assert set(TIER_DEFAULTS) == set(SubscriptionTier.values)


def test_every_tier_has_its_api_limit_in_settings_the_one_source():
    for tier in SubscriptionTier.values:
        requests, window_seconds = settings.RATE_LIMITS["default"][tier]
        assert requests > 0
        assert window_seconds > 0


def test_permission_defaults_seed_every_permission_field():
    assert set(permission_defaults(SubscriptionTier.BASIC)) == {
        "can_trade",
        "max_position_size",
        "max_daily_loss",
        "max_open_positions",
        "allowed_symbols",
    }
