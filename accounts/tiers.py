"""Subscription tiers: the defaults a new user's `UserPermission` is seeded with.

The tier only seeds: once a `UserPermission` row exists, operators edit it (through
`accounts.services.user_permission_update`) and the tier no longer matters for trading limits.

API rate limits per tier are not here: their one source is `settings.RATE_LIMITS[scope][tier]`, read by the
DRF throttle (`nija.api.throttling`) from the tier on the authenticated user or token.
"""

from dataclasses import dataclass
from decimal import Decimal

from accounts.models import SubscriptionTier


@dataclass(frozen=True)
class TierDefaults:
    can_trade: bool
    max_position_size: Decimal
    max_daily_loss: Decimal
    max_open_positions: int


TIER_DEFAULTS: dict[str, TierDefaults] = {
    SubscriptionTier.FREE: TierDefaults(True, Decimal("1000"), Decimal("200"), 3),
    SubscriptionTier.BASIC: TierDefaults(True, Decimal("10000"), Decimal("1000"), 10),
    SubscriptionTier.PRO: TierDefaults(True, Decimal("100000"), Decimal("10000"), 50),
    SubscriptionTier.ENTERPRISE: TierDefaults(True, Decimal("1000000"), Decimal("100000"), 200),
}


def tier_defaults(tier: str) -> TierDefaults:
    """The defaults of `tier` (an unknown tier gets the free tier's, the most restrictive)."""
    return TIER_DEFAULTS.get(tier, TIER_DEFAULTS[SubscriptionTier.FREE])


def permission_defaults(tier: str) -> dict:
    """Field values for a new `UserPermission` of a user on `tier`."""
    defaults = tier_defaults(tier)
    return {
        "can_trade": defaults.can_trade,
        "max_position_size": defaults.max_position_size,
        "max_daily_loss": defaults.max_daily_loss,
        "max_open_positions": defaults.max_open_positions,
        "allowed_symbols": [],
    }
