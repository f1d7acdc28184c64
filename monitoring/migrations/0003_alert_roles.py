"""Give the operator roles (accounts 0004) the alert permissions (the lists: monitoring.roles)."""

from django.db import migrations

from accounts.roles import grant_roles
from monitoring.roles import PERMISSIONS


def grant(apps, schema_editor) -> None:
    grant_roles(apps, "monitoring", PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0002_alertevent_append_only"),
        ("accounts", "0004_operator_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
