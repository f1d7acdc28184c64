"""The portfolio's reference rows as code: the singleton portfolio, its default limits (every field set: an
account's override falls back to them field by field) and its trading state.

The data migrations create the rows with `reference_rows_ensure`, the test suite re-creates them with it after a
flush, and the engine's `Limits` takes its defaults from DEFAULT_LIMITS. No Django import: the engine may import
this module. Changing a default here changes new databases only: a running database changes its limits in admin
(or by a data migration).
"""

from decimal import Decimal
from typing import Any

PORTFOLIO_ID = 1

DEFAULT_LIMITS = {
    "max_portfolio_exposure_pct": Decimal("0.80"),
    "max_daily_loss_pct": Decimal("0.05"),
    "max_total_positions": 50,
    "max_account_exposure_pct": Decimal("0.90"),
    "max_position_pct": Decimal("0.20"),
    "max_symbol_exposure_pct": Decimal("0.30"),
    "max_drawdown_pct": Decimal("0.20"),
    "emergency_daily_loss_pct": Decimal("0.08"),
    "emergency_drawdown_pct": Decimal("0.25"),
    "approval_threshold": Decimal("25000"),
    "reservation_ttl_seconds": 120,
    "approval_ttl_seconds": 15 * 60,
    "equity_max_age_seconds": 15 * 60,
    "max_equity_increase_pct": Decimal("0.50"),
    "heartbeat_timeout_seconds": 120,
}


def reference_rows_ensure(apps: Any) -> None:
    """Create the portfolio, its default limits and its trading state where missing (idempotent; `apps` is a
    migration's historical registry or the live one). Limits the historical model does not have yet are left
    to the migration that adds them."""
    apps.get_model("risk", "Portfolio").objects.get_or_create(id=PORTFOLIO_ID)
    limits_model = apps.get_model("risk", "RiskLimits")
    if not limits_model.objects.filter(instance__isnull=True).exists():
        fields = {field.name for field in limits_model._meta.get_fields()}
        limits_model.objects.create(
            instance=None, **{name: value for name, value in DEFAULT_LIMITS.items() if name in fields}
        )
    state_model = apps.get_model("risk", "TradingState")
    if not state_model.objects.filter(instance__isnull=True).exists():
        state_model.objects.create(instance=None, state="active", reason="initial state")
