"""The heartbeat_timeout_seconds limit (risk.defaults on the portfolio default row, which must set every limit)."""

from django.db import migrations, models

from risk.defaults import DEFAULT_LIMITS


def set_default_limit(apps, schema_editor) -> None:
    limits = apps.get_model("risk", "RiskLimits").objects.filter(instance__isnull=True)
    limits.update(heartbeat_timeout_seconds=DEFAULT_LIMITS["heartbeat_timeout_seconds"])


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0009_equity_increase_reference"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="risklimits",
            name="portfolio_default_limits_complete",
        ),
        migrations.AddField(
            model_name="risklimits",
            name="heartbeat_timeout_seconds",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="A bot with no authenticated request for this long is silent: the heartbeat watchdog raises one warning event, shows the account as stale and releases its unfilled reservations (cancel-on-disconnect). Its next request brings it back.",
                null=True,
            ),
        ),
        migrations.RunPython(set_default_limit, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="risklimits",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("instance__isnull", False),
                    models.Q(
                        ("approval_threshold__isnull", False),
                        ("approval_ttl_seconds__isnull", False),
                        ("emergency_daily_loss_pct__isnull", False),
                        ("emergency_drawdown_pct__isnull", False),
                        ("equity_max_age_seconds__isnull", False),
                        ("heartbeat_timeout_seconds__isnull", False),
                        ("max_account_exposure_pct__isnull", False),
                        ("max_daily_loss_pct__isnull", False),
                        ("max_drawdown_pct__isnull", False),
                        ("max_equity_increase_pct__isnull", False),
                        ("max_portfolio_exposure_pct__isnull", False),
                        ("max_position_pct__isnull", False),
                        ("max_symbol_exposure_pct__isnull", False),
                        ("max_total_positions__isnull", False),
                        ("reservation_ttl_seconds__isnull", False),
                    ),
                    _connector="OR",
                ),
                name="portfolio_default_limits_complete",
            ),
        ),
    ]
