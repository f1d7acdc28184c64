"""Permission classes shared by every app. Roles are Django groups (DESIGN.md section 4); staff are operators."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class IsOperator(BasePermission):
    """Staff users, by admin session or operator token. Bots and price feeds are not operators."""

    message = "Operators only."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and user.is_staff and getattr(request.auth, "kind", "operator") == "operator"
        )


class IsPriceFeedOrOperator(BasePermission):
    """Price-feed tokens, operator tokens and staff sessions: who may move the mark every account is measured with.

    Bot tokens are refused even for staff users: one bot must not move the price other accounts are checked at.
    """

    message = "Only price feeds and operators may write market prices."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        kind = getattr(request.auth, "kind", None)
        if kind == "feed":
            return True
        return IsOperator().has_permission(request, view)
