"""AlertState.rule has no index of its own: the unique (rule, instance) index leads with it."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0004_metric_snapshots"),
    ]

    operations = [
        migrations.AlterField(
            model_name="alertstate",
            name="rule",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="states",
                to="monitoring.alertrule",
            ),
        ),
    ]
