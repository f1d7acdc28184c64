"""One error shape for every 4xx/5xx under /api/: `{"error": {"code", "message", "fields"?}}`.

The one place errors become HTTP: `api_exception_handler` renders the domain's errors (`nija.errors.DomainError`
and each app's subclasses), Django's `ValidationError` (400 `validation_error`, with the fields of a per-field
error) and DRF's own exceptions (parsing, authentication, permissions, throttling). Django's own 404/500 and the
oversize-body error are mapped to the same shape by `nija.middleware` and `nija.urls`.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from nija.errors import DomainError

VALIDATION_ERROR = "validation_error"
# DRF exception class -> our stable error code.
_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: VALIDATION_ERROR,
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def error_body(code: str, message: str, fields: Any = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def error_response(status_code: int, code: str, message: str, fields: Any = None) -> JsonResponse:
    """A plain Django JSON error response, for errors raised outside DRF views."""
    return JsonResponse(error_body(code, message, fields), status=status_code)


def _code_for(exc: exceptions.APIException) -> str:
    for exc_class, code in _CODES.items():
        if isinstance(exc, exc_class):
            return code
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else "error"


def _message_for(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(exc.detail, list) and exc.detail:
            return str(exc.detail[0])
        return "Invalid input."
    return str(exc.detail)


def _fields_for(exc: exceptions.APIException) -> Any:
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        return exc.detail
    return None


def _django_validation_body(exc: DjangoValidationError) -> dict[str, Any]:
    """As DRF's ValidationError renders: per-field messages as `fields` (a non-field message under `__all__`) with
    "Invalid input.", or the first message of a plain one."""
    if hasattr(exc, "error_dict"):
        return error_body(VALIDATION_ERROR, "Invalid input.", exc.message_dict)
    return error_body(VALIDATION_ERROR, exc.messages[0] if exc.messages else "Invalid input.")


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every handled error in the one shape, with DRF's auth/throttle headers."""
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(exc.code, exc.detail, exc.fields), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        set_rollback()
        return Response(_django_validation_body(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # unexpected: nija.middleware renders a JSON 500 and logs it

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()
    body = error_body(_code_for(exc), _message_for(exc), _fields_for(exc))
    return Response(body, status=exc.status_code, headers=headers)
