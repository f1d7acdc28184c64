"""Request-level middleware of /api/.

- Guards: oversize bodies (JSON 413) and unexpected exceptions (JSON 500). Django's own oversize error is a plain
  400, and DRF reads the body stream itself (bypassing Django's check), so the declared Content-Length is checked
  here before any view or parser runs.
- The browser's middleware (sessions, session authentication, messages), skipped by an /api/ request that carries a
  bearer token: DRF authenticates such a request by its token alone (the bearer class answers every
  `Authorization: Bearer ...` request itself, with a user or a 401), so its session cookie is never read, no
  session is loaded or saved, and no cookie is set. Its `request.user` is anonymous until DRF authenticates it. The
  pages and the admin, and any request without a bearer token, keep all three. CSRF stays Django's own
  middleware for every request (`check --deploy` looks for it by name): DRF's views are CSRF-exempt, and DRF
  enforces CSRF only on the session-authenticated requests, which a bearer request can no longer be.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from rest_framework.authentication import get_authorization_header

from nija.api.errors import error_response

logger = logging.getLogger(__name__)

BEARER_KEYWORD = b"bearer"
_BEARER_API_ATTR = "_nija_bearer_api"


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def carries_bearer_token(request: HttpRequest) -> bool:
    """The `Authorization` header names the Bearer scheme, read as DRF reads it (bytes, split on whitespace,
    keyword case-insensitive): exactly the requests accounts.authentication.BearerTokenAuthentication answers."""
    parts = get_authorization_header(request).split(maxsplit=1)
    return bool(parts) and parts[0].lower() == BEARER_KEYWORD


def is_bearer_api_request(request: HttpRequest) -> bool:
    """An /api/ request with a bearer token (decided once per request)."""
    decided = request.__dict__.get(_BEARER_API_ATTR)
    if decided is None:
        decided = is_api_request(request) and carries_bearer_token(request)
        request.__dict__[_BEARER_API_ATTR] = decided
    return decided


class _SkippedByBearerApiRequests:
    """Mixin for one of Django's MiddlewareMixin classes: an /api/ request with a bearer token goes straight to the
    next layer (sync or async: in async mode the next layer's coroutine is returned for the caller to await)."""

    get_response: Callable[[HttpRequest], Any]

    def __call__(self, request: HttpRequest) -> Any:
        if is_bearer_api_request(request):
            self.on_skip(request)
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]

    def on_skip(self, request: HttpRequest) -> None:
        """What the skipped middleware would have left on the request that later layers read."""


class BrowserSessionMiddleware(_SkippedByBearerApiRequests, SessionMiddleware):
    """Django's SessionMiddleware, except for /api/ requests with a bearer token (no session, no cookie)."""


class BrowserAuthenticationMiddleware(_SkippedByBearerApiRequests, AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, except for /api/ requests with a bearer token: `request.user` is
    anonymous until DRF authenticates the token."""

    def on_skip(self, request: HttpRequest) -> None:
        request.user = AnonymousUser()


class BrowserMessageMiddleware(_SkippedByBearerApiRequests, MessageMiddleware):
    """Django's MessageMiddleware, except for /api/ requests with a bearer token (no message storage)."""


class ApiErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_request(request) and self._declared_length(request) > settings.API_MAX_BODY_BYTES:
            return self._too_large()
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api_request(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return self._too_large()
        logger.exception("unhandled_api_exception", extra={"path": request.path})
        return error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")

    @staticmethod
    def _declared_length(request: HttpRequest) -> int:
        try:
            return int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 0

    @staticmethod
    def _too_large() -> HttpResponse:
        limit = settings.API_MAX_BODY_BYTES
        return error_response(413, "payload_too_large", f"Request bodies are limited to {limit} bytes.")
