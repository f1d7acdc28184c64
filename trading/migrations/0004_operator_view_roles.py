"""Operators of every role can see the trading record in admin: view on positions, fills, trades and daily
statistics for viewer, approver and risk_admin (accounts 0004 created the roles; nobody may change these rows by
hand: every change goes through the risk services)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CODENAMES = ["view_position", "view_fill", "view_trade", "view_dailystatistic"]
ROLES = {"viewer": CODENAMES, "approver": CODENAMES, "risk_admin": CODENAMES}


def grant(apps, schema_editor) -> None:
    trading = apps.get_app_config("trading")
    trading.models_module = True
    create_permissions(trading, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="trading", codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [("trading", "0003_market_price_permission")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
