"""The rows every check locks or reads must exist: the portfolio, its default limits and its trading state."""

from decimal import Decimal

from django.db import migrations

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
}


def create_defaults(apps, schema_editor):
    apps.get_model("risk", "Portfolio").objects.get_or_create(id=1)
    RiskLimits = apps.get_model("risk", "RiskLimits")
    if not RiskLimits.objects.filter(instance__isnull=True).exists():
        RiskLimits.objects.create(instance=None, **DEFAULT_LIMITS)
    TradingState = apps.get_model("risk", "TradingState")
    if not TradingState.objects.filter(instance__isnull=True).exists():
        TradingState.objects.create(instance=None, state="active", reason="initial state")


class Migration(migrations.Migration):
    dependencies = [("risk", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
