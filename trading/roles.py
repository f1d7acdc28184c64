"""The trading app's permissions for each operator role (the roles themselves: accounts.roles).

Every role views the trading record (positions, fills, trades, daily statistics); nobody changes these rows by
hand (the risk services write them). The risk admin also holds `trading.write_market_price`: PUT
/api/market/{symbol} moves the price every account is measured with, so being staff is not enough. That
permission lives on trading.Position's content type and is created by `market_price_permission_grant`, not by a
model's Meta.
"""

from typing import Any

from accounts.roles import APPROVER, RISK_ADMIN, VIEWER

_VIEW = ["view_position", "view_fill", "view_trade", "view_dailystatistic"]
PERMISSIONS = {VIEWER: _VIEW, APPROVER: _VIEW, RISK_ADMIN: _VIEW}

MARKET_PRICE_CODENAME = "write_market_price"
MARKET_PRICE_NAME = "Can write market prices (move the mark)"
MARKET_PRICE_ROLES = (RISK_ADMIN,)


def market_price_permission_grant(apps: Any) -> None:
    """Create `trading.write_market_price` if missing and give it to MARKET_PRICE_ROLES (idempotent; `apps` is a
    migration's historical registry or the live one)."""
    content_type, _ = apps.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="trading", model="position"
    )
    permission, _ = apps.get_model("auth", "Permission").objects.get_or_create(
        content_type=content_type, codename=MARKET_PRICE_CODENAME, defaults={"name": MARKET_PRICE_NAME}
    )
    for role in MARKET_PRICE_ROLES:
        group, _ = apps.get_model("auth", "Group").objects.get_or_create(name=role)
        group.permissions.add(permission)
