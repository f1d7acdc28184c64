"""Request-level guards for /api/: oversize bodies (JSON 413) and unexpected exceptions (JSON 500).

Django's own oversize error is a plain 400, and DRF reads the body stream itself (bypassing Django's check),
so the declared Content-Length is checked here before any view or parser runs.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from nija.api.errors import error_response

logger = logging.getLogger(__name__)


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


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
