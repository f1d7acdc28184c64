"""URLs of the benchmark's server: the project's own, plus one plain JSON view (no authentication, no throttle,
no DRF) that the server answers twice: through the whole middleware stack (`/bench/plain`) and through none
(`/bench/nomw/plain`, tests/bench/bench_wsgi.py). Target 1 of `bench_check_endpoint` compares the bare
authenticated API GET against them."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from nija.urls import handler400, handler403, handler404, handler500  # noqa: F401 - handlers re-exported
from nija.urls import urlpatterns as project_patterns


def plain_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"symbol": "BTC-USD", "price": "50000.00000000"})


urlpatterns = [
    path("bench/plain", plain_json),
    path("bench/nomw/plain", plain_json),
    *project_patterns,
]
