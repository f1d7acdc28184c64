"""The domain's error base: every error a service, selector or task raises for a caller to see.

A `DomainError` carries its HTTP status, a stable machine-readable code and a message (and, for invalid input, the
fields at fault), and depends on no web framework: services raise it, the admin shows its message, and the API
renders it in one place (`nija.api.errors.api_exception_handler`, which also renders Django's `ValidationError`
and DRF's own exceptions) as `{"error": {"code", "message", "fields"?}}`. Each app declares its errors in its
`errors.py` as subclasses of these.
"""

from typing import Any, ClassVar


class DomainError(Exception):
    """An error with a stable `code`, an HTTP `status_code`, a `detail` message and optional `fields`
    (field name -> list of messages). Subclasses set the class defaults; a raise may override code and message."""

    status_code: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"
    default_detail: ClassVar[str] = "Bad request."

    def __init__(self, message: str | None = None, *, code: str | None = None, fields: dict[str, Any] | None = None):
        self.detail = message or self.default_detail
        self.code = str(code or self.default_code)
        self.fields = fields
        super().__init__(self.detail)


class InvalidInput(DomainError):
    """Input a rule refuses (the fields say which and why); nothing was written."""

    default_code = "validation_error"
    default_detail = "Invalid input."


class NotFoundError(DomainError):
    status_code = 404
    default_code = "not_found"
    default_detail = "Not found."


class ConflictError(DomainError):
    status_code = 409
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


class ServiceUnavailableError(DomainError):
    status_code = 503
    default_code = "service_unavailable"
    default_detail = "A dependency is unavailable."
