"""Operators of every role can see the trading record in admin (the lists: trading.roles)."""

from django.db import migrations

from accounts.roles import grant_roles
from trading.roles import PERMISSIONS


def grant(apps, schema_editor) -> None:
    grant_roles(apps, "trading", PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("trading", "0003_market_price_permission")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
