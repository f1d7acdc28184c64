"""Give the operator roles (accounts 0004) the risk app's permissions (the lists: risk.roles)."""

from django.db import migrations

from accounts.roles import grant_roles
from risk.roles import PERMISSIONS


def grant(apps, schema_editor) -> None:
    grant_roles(apps, "risk", PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0002_portfolio_defaults"),
        ("accounts", "0004_operator_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
