"""Operator roles as Django groups (docs/design.md, Data model) with the accounts app's permissions (the lists:
accounts.roles)."""

from django.db import migrations

from accounts.roles import PERMISSIONS, ROLES, grant_roles


def create_roles(apps, schema_editor) -> None:
    grant_roles(apps, "accounts", PERMISSIONS)


def drop_roles(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_auditentry_append_only"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
