"""The permission to move the mark: `trading.write_market_price`, granted to the risk_admin role.

PUT /api/market/{symbol} moves the price every account is measured with, so being staff is not enough: an operator
token or staff session needs this permission (price-feed tokens need none; bots are always refused). It lives on
trading.Position's content type, created here rather than in the model's Meta. `grant` is idempotent and takes
any app registry, so tests call it with the live one after a flush has removed migration-made rows.
"""

from django.db import migrations

CODENAME = "write_market_price"
NAME = "Can write market prices (move the mark)"
ROLES = ("risk_admin",)


def grant(apps, schema_editor) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="trading", model="position")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename=CODENAME, defaults={"name": NAME}
    )
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(permission)


def revoke(apps, schema_editor) -> None:
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="trading", codename=CODENAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0002_position_risk_fields"),
        ("accounts", "0004_operator_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
