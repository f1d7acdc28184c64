"""Operator roles as code: the three Django groups and the accounts app's permissions for each.

Groups are additive (give a person every role they hold):
- viewer: view on users, trading permissions, trading instances, API tokens and the audit record (broker
  credentials are not viewable: even masked, they are none of a viewer's business).
- approver: everything a viewer has; the risk app adds approve/reject.
- risk_admin: everything a viewer has, plus change on trading permissions (limits) and trading instances
  (status; activation goes through the risk app's admin) and view on broker credentials; the other apps add
  limits, halt/resume, equity, alerts and the market price.

Nobody gets change/delete on the audit record (append-only) or on API tokens (revoke is an admin action for
superusers or operators holding `accounts.change_apitoken`, granted explicitly).

Each app lists its own permissions per role in its `roles.py` (trading, risk, monitoring); the data migrations
grant them with `grant_roles` and the test suite re-creates the groups from the same lists after a flush. A
change to a list needs a new data migration calling `grant_roles` (granting is idempotent).
"""

from typing import Any

VIEWER = "viewer"
APPROVER = "approver"
RISK_ADMIN = "risk_admin"
ROLES = (VIEWER, APPROVER, RISK_ADMIN)

_VIEW = ["view_user", "view_userpermission", "view_tradinginstance", "view_apitoken", "view_auditentry"]
PERMISSIONS = {
    VIEWER: _VIEW,
    APPROVER: _VIEW,
    RISK_ADMIN: [*_VIEW, "change_userpermission", "change_tradinginstance", "view_brokercredential"],
}


def grant_roles(apps: Any, app_label: str, permissions: dict[str, list[str]]) -> None:
    """Create the roles' groups if missing and give each the listed codenames of `app_label` (idempotent).

    `apps` is a migration's historical registry or the live one (`django.apps.apps`): the app's model
    permissions are created first, since Django normally creates them only after every migration has run."""
    from django.contrib.auth.management import create_permissions

    config = apps.get_app_config(app_label)
    if not getattr(config, "models_module", None):
        config.models_module = True  # a historical app config: create_permissions skips an app without models
    create_permissions(config, apps=apps, verbosity=0)
    group_model, permission_model = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    for role, codenames in permissions.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.add(
            *permission_model.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )
