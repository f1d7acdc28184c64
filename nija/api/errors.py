"""One error shape for every 4xx/5xx under /api/: `{"error": {"code", "message", "fields"?}}`.

Apps raise `ApiError` subclasses (or DRF's exceptions); this module renders them. Django's own 404/500 and
the oversize-body error are mapped to the same shape by `nija.middleware` and `nija.urls`.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

# DRF exception class -> our stable error code.
_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "validation_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


class ApiError(exceptions.APIException):
    """Base for application errors with a stable machine-readable code."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "Bad request."

    def __init__(self, message: str | None = None, *, code: str | None = None, fields: dict | None = None):
        super().__init__(detail=message or self.default_detail, code=code or self.default_code)
        self.error_code = code or self.default_code
        self.fields = fields


class ConflictError(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


class ServiceUnavailableError(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "A dependency is unavailable."


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
    if isinstance(exc, ApiError):
        return exc.error_code
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
    if isinstance(exc, ApiError):
        return exc.fields
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        return exc.detail
    return None


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every handled error in the one shape, with DRF's auth/throttle headers."""
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
