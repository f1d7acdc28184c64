"""Risk state on the trading instance for fresh-only portfolio equity and held equity increases.

- `equity_counted`: whether an account's equity is in the portfolio's totals. Until now those totals summed every
  active account, so every active account starts counted; the risk app's account sweep then takes out the ones
  whose report is stale or whose user is inactive.
- `equity_accepted_at`: when the current figure was accepted. Until now every report was accepted, so it starts
  as the last report's time.
"""

from decimal import Decimal

from django.db import migrations, models
from django.db.models import F


def backfill(apps, schema_editor) -> None:
    instances = apps.get_model("accounts", "TradingInstance").objects
    instances.filter(is_active=True).update(equity_counted=True)
    instances.update(equity_accepted_at=F("equity_reported_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_tradinginstance_balance_constraints"),
    ]

    operations = [
        migrations.AddField(
            model_name="tradinginstance",
            name="equity_counted",
            field=models.BooleanField(
                default=False,
                help_text=(
                    "Whether this account's equity and start-of-day equity are part of the portfolio's totals "
                    "(portfolio equity E and its day start): true while the account and its user are active and its "
                    "last equity report is within its own equity_max_age. Set only by the risk services: a report "
                    "puts the account back, the freshness sweep and deactivation take it out. Portfolio.equity = "
                    "the sum of equity over the accounts with this flag set."
                ),
            ),
        ),
        migrations.AddField(
            model_name="tradinginstance",
            name="equity_accepted_at",
            field=models.DateTimeField(
                blank=True,
                help_text=(
                    "When the current equity figure was accepted (a report within bounds, or a held one confirmed); "
                    "empty until the first. The first figure accepted in a UTC day starts the account's day."
                ),
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="tradinginstance",
            name="equity_reported_at",
            field=models.DateTimeField(
                blank=True,
                help_text="The bot's last equity report, applied or held: what freshness is measured by.",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="tradinginstance",
            name="starting_balance",
            field=models.DecimalField(
                decimal_places=8,
                default=Decimal("0"),
                help_text=(
                    "What the account holds before its bot's first report. That first report is measured against "
                    "it (plus any transfer recorded before it): a figure more than max_equity_increase_pct above it "
                    "is held until an operator confirms it. Left at 0, every first report is held. Unused once a "
                    "figure was accepted."
                ),
                max_digits=18,
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
