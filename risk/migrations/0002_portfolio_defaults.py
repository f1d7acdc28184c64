"""The rows every check locks or reads must exist: the portfolio, its default limits and its trading state (the
values: risk.defaults)."""

from django.db import migrations

from risk.defaults import reference_rows_ensure


def create_defaults(apps, schema_editor):
    reference_rows_ensure(apps)


class Migration(migrations.Migration):
    dependencies = [("risk", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
