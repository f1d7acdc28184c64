"""The permission to move the mark: `trading.write_market_price`, granted to the risk_admin role (see
trading.roles)."""

from django.db import migrations

from trading.roles import MARKET_PRICE_CODENAME, market_price_permission_grant


def grant(apps, schema_editor) -> None:
    market_price_permission_grant(apps)


def revoke(apps, schema_editor) -> None:
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="trading", codename=MARKET_PRICE_CODENAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0002_position_risk_fields"),
        ("accounts", "0004_operator_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
