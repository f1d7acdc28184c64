"""Test-only URLconf: the project's URLs plus probes, under /api/ and outside it: one reports what the browser's
middleware left on the request (tests/nija/test_browser_middleware.py); two raise what Django answers with its own
400 and 403 pages (tests/nija/test_api_conventions.py)."""

from django.core.exceptions import PermissionDenied, SuspiciousFileOperation, SuspiciousOperation
from django.http import HttpRequest, JsonResponse
from django.urls import path

from nija.urls import handler400, handler403, handler404, handler500  # noqa: F401 - handlers re-exported
from nija.urls import urlpatterns as project_urlpatterns


def middleware_probe(request: HttpRequest) -> JsonResponse:
    """A plain Django view (not DRF): session, messages and user as the middleware left them. It also writes to the
    session when there is one, so a session that exists is saved and its cookie set."""
    session = getattr(request, "session", None)
    if session is not None:
        session["probed"] = True
    return JsonResponse(
        {
            "session": session is not None,
            "messages": hasattr(request, "_messages"),
            "user": request.user.get_username() if request.user.is_authenticated else None,
        }
    )


def denied_probe(request: HttpRequest) -> JsonResponse:
    raise PermissionDenied


def suspicious_probe(request: HttpRequest) -> JsonResponse:
    raise SuspiciousOperation("probe")


def file_probe(request: HttpRequest) -> JsonResponse:
    raise SuspiciousFileOperation("a path a view built itself")


urlpatterns = [
    path("api/probe/middleware", middleware_probe),
    path("probe/middleware", middleware_probe),
    path("api/probe/denied", denied_probe),
    path("probe/denied", denied_probe),
    path("api/probe/suspicious", suspicious_probe),
    path("probe/suspicious", suspicious_probe),
    path("api/probe/file", file_probe),
    *project_urlpatterns,
]
