from django.urls import include, path

from monitoring.api import HealthApi
from monitoring.stream import MetricsStreamApi

urlpatterns = [
    path("health", HealthApi.as_view(), name="health"),
    path("alerts/", include("monitoring.alerts.urls")),
    path("metrics/stream", MetricsStreamApi.as_view(), name="metrics-stream"),
]
