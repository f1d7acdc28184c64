"""Top-level URLs. Every API path lives under /api/ with no trailing slash; unknown /api/ paths answer
the JSON 404 of the error contract (also with DEBUG on, where Django would render an HTML page). Django's own
400, 403 (CSRF included), 404 and 500 answers are the error contract's JSON under /api/, its HTML pages elsewhere
(with DEBUG on Django shows its technical page for a 400 instead)."""

from django.contrib import admin
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView

from nija.api.docs import RedocDocsView, SwaggerDocsView
from nija.api.errors import error_response
from nija.metrics import metrics_view
from nija.middleware import is_api_request


@csrf_exempt
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """Exempt from CSRF like every DRF view: it changes nothing, and without it a POST to a mistyped path (a trailing
    slash, say) was refused by Django's CSRF check with an HTML 403 that read like an authentication problem."""
    return error_response(404, "not_found", f"No API endpoint at {request.path}.")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A Host header outside DJANGO_ALLOWED_HOSTS is the usual cause: a bot pointed at an address the deployment
    does not list. Its answer names that, where Django's page says only "Bad Request (400)"."""
    if is_api_request(request):
        if isinstance(exception, DisallowedHost):
            return error_response(
                400, "disallowed_host", "This server does not answer to the Host header sent (DJANGO_ALLOWED_HOSTS)."
            )
        return error_response(400, "bad_request", "The request could not be understood.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return error_response(403, "permission_denied", "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW. DRF's views do their own CSRF check (session callers only), so under /api/ this
    answers only a view outside DRF that forgot its exemption: JSON all the same."""
    if is_api_request(request):
        return error_response(403, "csrf_failed", "CSRF verification failed.")
    return csrf.csrf_failure(request, reason)


def server_error(request: HttpRequest, *args: object, **kwargs: object):
    if is_api_request(request):
        return error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")
    return defaults.server_error(request)


def page_not_found(request: HttpRequest, exception: Exception | None = None):
    if is_api_request(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


api_patterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("schema", SpectacularAPIView.as_view()),
    path("docs/", SwaggerDocsView.as_view(url_name="schema"), name="api-docs"),
    path("docs", SwaggerDocsView.as_view(url_name="schema")),
    path("redoc/", RedocDocsView.as_view(url_name="schema"), name="api-redoc"),
    path("redoc", RedocDocsView.as_view(url_name="schema")),
    path("", include("accounts.urls")),
    path("", include("trading.urls")),
    path("", include("risk.urls")),
    path("", include("monitoring.urls")),
    path("", include("logs.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("dashboard/", include("monitoring.page_urls")),
    # Prometheus (token or loopback only: nija/metrics.py).
    path("metrics", metrics_view, name="metrics"),
    re_path(r"^api/.*$", api_not_found),
]

handler400 = bad_request
handler403 = permission_denied
handler404 = page_not_found
handler500 = server_error
