"""Give the operator roles (accounts 0004) the alert permissions.

- viewer and approver: view rules, their states and the alert events.
- risk_admin: the same, plus add, change and delete rules, everything on notification channels (which only risk
  admins see: their targets are the desk's), and view on deliveries and their attempts.

Nobody gets change or delete on alert events (append-only), states or deliveries: only services write them.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = ["view_alertrule", "view_alertstate", "view_alertevent"]
ROLES = {
    "viewer": VIEW,
    "approver": VIEW,
    "risk_admin": [
        *VIEW,
        "add_alertrule",
        "change_alertrule",
        "delete_alertrule",
        "view_notificationchannel",
        "add_notificationchannel",
        "change_notificationchannel",
        "delete_notificationchannel",
        "view_alertdelivery",
        "view_alertdeliveryattempt",
    ],
}


def grant(apps, schema_editor) -> None:
    monitoring = apps.get_app_config("monitoring")
    monitoring.models_module = True
    create_permissions(monitoring, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="monitoring", codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0002_alertevent_append_only"),
        ("accounts", "0004_operator_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
