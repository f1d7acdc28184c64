"""The monitoring app's permissions for each operator role (the roles themselves: accounts.roles).

- viewer and approver: view alert rules, their states and the alert events.
- risk_admin: the same, plus add, change and delete rules, everything on notification channels (which only risk
  admins see: their targets are the desk's), and view on deliveries and their attempts.

Nobody gets change or delete on alert events (append-only), states or deliveries: only services write them.
"""

from accounts.roles import APPROVER, RISK_ADMIN, VIEWER

_VIEW = ["view_alertrule", "view_alertstate", "view_alertevent"]
PERMISSIONS = {
    VIEWER: _VIEW,
    APPROVER: _VIEW,
    RISK_ADMIN: [
        *_VIEW,
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
