"""Permission classes shared by every app. Roles are Django groups (docs/design.md, Data model); staff are operators."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

# Granted to the risk_admin role by trading's migration 0003 (named here as a string: nija imports no app).
WRITE_MARKET_PRICE = "trading.write_market_price"


class IsOperator(BasePermission):
    """Staff users, by admin session or operator token. Bots and price feeds are not operators."""

    message = "Operators only."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and user.is_staff and getattr(request.auth, "kind", "operator") == "operator"
        )


class IsPriceFeedOrOperator(BasePermission):
    """Price-feed tokens, and operators (token or staff session) holding `trading.write_market_price`.

    Who may move the mark every account is measured with. Being staff is not enough: the permission is granted
    to the risk_admin role (trading migration 0003), so a viewer or approver operator is refused. Bot tokens are
    refused even for staff users: one bot must not move the price other accounts are checked at.
    """

    message = "Only price feeds and operators allowed to write market prices may do so."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if getattr(request.auth, "kind", None) == "feed":
            return True
        return IsOperator().has_permission(request, view) and user.has_perm(WRITE_MARKET_PRICE)
