"""The risk app's permissions for each operator role (the roles themselves: accounts.roles).

- viewer: view on every risk model, equity holds and transfers included.
- approver: viewer + approve/reject positions.
- risk_admin: viewer + approve/reject, halt/resume, equity confirmations and transfers, and change on limits and
  correlation groups (with their members).
"""

from accounts.roles import APPROVER, RISK_ADMIN, VIEWER

_VIEW = [
    "view_portfolio",
    "view_symbolexposure",
    "view_correlationgroup",
    "view_correlationgroupmember",
    "view_risklimits",
    "view_tradingstate",
    "view_riskevent",
    "view_equityhold",
    "view_equitytransfer",
]
PERMISSIONS = {
    VIEWER: _VIEW,
    APPROVER: [*_VIEW, "approve_position"],
    RISK_ADMIN: [
        *_VIEW,
        "approve_position",
        "halt_trading",
        "manage_equity",
        "change_risklimits",
        "add_risklimits",
        "change_correlationgroup",
        "add_correlationgroup",
        "add_correlationgroupmember",
        "change_correlationgroupmember",
        "delete_correlationgroupmember",
    ],
}
