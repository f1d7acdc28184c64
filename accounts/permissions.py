"""DRF permission classes and helpers for token principals (bots scoped to their own trading instance), and the
deactivation rule for bots."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.errors import AccountInactive
from accounts.models import TokenKind
from accounts.tokens import ApiPrincipal

__all__ = ["AccountInactive", "allows_inactive_account", "request_principal"]  # AccountInactive: accounts.errors


def allows_inactive_account(view: object) -> bool:
    """Whether `view` serves a deactivated account's bot (fills and closes); every other view refuses it."""
    return bool(getattr(view, "allows_inactive_account", False))


def request_principal(request: Request) -> ApiPrincipal | None:
    """The token principal of the request, or None (session or anonymous)."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiPrincipal) else None


def principal_instance_id(request: Request) -> int | None:
    """The trading instance a bot token is bound to; None for any other caller. Views scope a bot's reads and
    writes to this id (another account's id answers 404)."""
    principal = request_principal(request)
    if principal is None or principal.kind != TokenKind.BOT:
        return None
    return principal.instance_id


class IsBot(BasePermission):
    """Bot tokens only."""

    message = "Bot tokens only."

    def has_permission(self, request: Request, view: object) -> bool:
        principal = request_principal(request)
        return principal is not None and principal.kind == TokenKind.BOT


class IsFeed(BasePermission):
    """Price-feed tokens only."""

    message = "Price-feed tokens only."

    def has_permission(self, request: Request, view: object) -> bool:
        principal = request_principal(request)
        return principal is not None and principal.kind == TokenKind.FEED
