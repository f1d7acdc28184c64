"""Give the operator roles (accounts 0004) the risk app's permissions.

- viewer: view on every risk model.
- approver: viewer + approve/reject positions.
- risk_admin: viewer + approve/reject, halt/resume, and change on limits and correlation groups.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = [
    "view_portfolio",
    "view_symbolexposure",
    "view_correlationgroup",
    "view_correlationgroupmember",
    "view_risklimits",
    "view_tradingstate",
    "view_riskevent",
]
ROLES = {
    "viewer": VIEW,
    "approver": [*VIEW, "approve_position"],
    "risk_admin": [
        *VIEW,
        "approve_position",
        "halt_trading",
        "change_risklimits",
        "add_risklimits",
        "change_correlationgroup",
        "add_correlationgroup",
        "add_correlationgroupmember",
        "change_correlationgroupmember",
        "delete_correlationgroupmember",
    ],
}


def grant(apps, schema_editor) -> None:
    risk = apps.get_app_config("risk")
    risk.models_module = True
    create_permissions(risk, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="risk", codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0002_portfolio_defaults"),
        ("accounts", "0004_operator_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
