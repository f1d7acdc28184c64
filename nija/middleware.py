"""Request-level middleware of /api/.

- Guards: oversize bodies (JSON 413) and unexpected exceptions (JSON 500). What Django itself answers as a
  client's error (Http404, PermissionDenied, SuspiciousOperation ...) keeps its 404, 403 or 400, in the error
  contract's JSON by nija.urls' handlers. Django's own oversize error is a plain 400, and DRF reads the body stream
  itself (bypassing Django's check), so the declared Content-Length is checked here before any view or parser runs.
- Content-Security-Policy (django-csp) with its two header values built once: a response no view changed the
  policy of and no page took a nonce for gets the same headers every time, so they are built from the settings
  once (again when a setting changes) instead of twice a response.
- The browser's middleware (sessions, session authentication, messages), skipped by an /api/ request that carries a
  bearer token: DRF authenticates such a request by its token alone (the bearer class answers every
  `Authorization: Bearer ...` request itself, with a user or a 401), so its session cookie is never read, no
  session is loaded or saved, and no cookie is set. Its `request.user` is anonymous until DRF authenticates it. The
  pages and the admin, and any request without a bearer token, keep all three. CSRF stays Django's own
  middleware for every request (`check --deploy` looks for it by name): DRF's views are CSRF-exempt, and DRF
  enforces CSRF only on the session-authenticated requests, which a bearer request can no longer be.
"""

import http
import logging
import threading
from collections.abc import Callable
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousFileOperation,
    SuspiciousOperation,
)
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.http.multipartparser import MultiPartParserError
from django.http.response import DisallowedRedirect
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


# What Django itself answers as a client's error (django.core.handlers.exception.response_for_exception), never a 500.
_CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)
# SuspiciousOperations a view of ours raises from its own values (a file path, a redirect it builds): our bug, a 500.
_SERVER_SUSPICIOUS = (SuspiciousFileOperation, DisallowedRedirect)


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
        if isinstance(exception, _CLIENT_ERRORS) and not isinstance(exception, _SERVER_SUSPICIOUS):
            return None  # Django answers these as 400, 403 or 404 through nija.urls' handlers: JSON under /api/
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


# ---------------------------------------------------------------------------------------------- CSP
# What a view sets on its response to change its policy (csp.decorators), in either mode.
_CSP_RESPONSE_OVERRIDES = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt_ro",
)
_CSP_SETTINGS = ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY")
_csp_headers: list[tuple[str, str, tuple[str, ...]]] | None = None
_csp_lock = threading.Lock()


def _default_csp_headers() -> list[tuple[str, str, tuple[str, ...]]]:
    """(header, value, excluded path prefixes) of each mode with a policy, as django-csp builds them without any
    view override or nonce."""
    global _csp_headers
    headers = _csp_headers
    if headers is None:
        headers = []
        for header, setting, report_only in (
            (HEADER, "CONTENT_SECURITY_POLICY", False),
            (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
        ):
            value = build_policy(report_only=report_only)
            if value:
                prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ()
                headers.append((header, value, tuple(prefixes)))
        with _csp_lock:
            _csp_headers = headers
    return headers


@receiver(setting_changed)
def _forget_csp_headers(*, setting: str, **kwargs: Any) -> None:
    global _csp_headers
    if setting in _CSP_SETTINGS:
        with _csp_lock:
            _csp_headers = None


class CachedPolicyCSPMiddleware(CSPMiddleware):
    """django-csp's middleware; a response without any view override and without a nonce taken gets the headers
    built once (`_default_csp_headers`), with the same exemptions (DEBUG error pages, excluded prefixes, a header
    already set). Anything else goes through django-csp itself."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in _CSP_RESPONSE_OVERRIDES
        ):
            return super().process_response(request, response)
        debug_page = response.status_code in (http.HTTPStatus.INTERNAL_SERVER_ERROR, http.HTTPStatus.NOT_FOUND)
        if debug_page and settings.DEBUG:
            return response
        for header, value, excluded in _default_csp_headers():
            if header not in response and not request.path_info.startswith(excluded):
                response[header] = value
        # As django-csp: a nonce asked for after the header is written would not be in it.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
