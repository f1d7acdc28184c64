"""Operator roles as Django groups (docs/design.md, Data model). Groups add up: give a person every role they hold.

- viewer: view permission on users, trading permissions, trading instances, API tokens and the audit record
  (broker credentials are not viewable: even masked, they are none of a viewer's business).
- approver: everything a viewer has; the risk app adds the position approve/reject permissions.
- risk_admin: everything a viewer has, plus change on trading permissions (limits) and trading instances
  (deactivate, status), and view on broker credentials; the risk app adds limits and halt/resume.

Nobody gets change/delete on the audit record (append-only) or on API tokens (revoke is an admin action
for superusers/operators holding `accounts.change_apitoken`, granted explicitly).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWER = [
    "view_user",
    "view_userpermission",
    "view_tradinginstance",
    "view_apitoken",
    "view_auditentry",
]
ROLES = {
    "viewer": VIEWER,
    "approver": VIEWER,
    "risk_admin": [*VIEWER, "change_userpermission", "change_tradinginstance", "view_brokercredential"],
}


def create_roles(apps, schema_editor) -> None:
    # Permissions are normally created after all migrations (post_migrate): create accounts' now.
    accounts = apps.get_app_config("accounts")
    accounts.models_module = True
    create_permissions(accounts, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames))


def drop_roles(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_auditentry_append_only"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
