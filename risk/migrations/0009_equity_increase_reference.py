"""Help texts: an equity report is also measured against the account's start of the UTC day (or a figure an operator
confirmed today), so reports each within max_equity_increase_pct cannot compound past it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0008_lock_check_scope_clock"),
    ]

    operations = [
        migrations.AlterField(
            model_name="equityhold",
            name="accepted_equity",
            field=models.DecimalField(
                decimal_places=8,
                help_text="The figure the increase was measured against: the lower of the last accepted figure and the day's start (or a figure confirmed today); for a first report, the starting balance.",
                max_digits=18,
            ),
        ),
        migrations.AlterField(
            model_name="risklimits",
            name="max_equity_increase_pct",
            field=models.DecimalField(
                blank=True,
                decimal_places=6,
                help_text="An equity report more than this fraction above the account's last accepted figure, or above its start of the UTC day (or a figure confirmed today), is held until an operator confirms it (a first report: above its starting balance).",
                max_digits=10,
                null=True,
            ),
        ),
    ]
