"""Top-level URLs. Every API path lives under /api/ with no trailing slash; unknown /api/ paths answer
the JSON 404 of the error contract (also with DEBUG on, where Django would render an HTML page)."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView

from nija.api.docs import RedocDocsView, SwaggerDocsView
from nija.api.errors import error_response
from nija.metrics import metrics_view


@csrf_exempt
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """Exempt from CSRF like every DRF view: it changes nothing, and without it a POST to a mistyped path (a trailing
    slash, say) was refused by Django's CSRF check with an HTML 403 that read like an authentication problem."""
    return error_response(404, "not_found", f"No API endpoint at {request.path}.")


def server_error(request: HttpRequest, *args: object, **kwargs: object):
    if request.path.startswith("/api/"):
        return error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")
    from django.views.defaults import server_error as django_server_error

    return django_server_error(request)


def page_not_found(request: HttpRequest, exception: Exception | None = None):
    if request.path.startswith("/api/"):
        return api_not_found(request)
    from django.views.defaults import page_not_found as django_page_not_found

    return django_page_not_found(request, exception)


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

handler404 = page_not_found
handler500 = server_error
