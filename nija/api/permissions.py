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
