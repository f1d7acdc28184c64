from django.urls import include, path

from monitoring.api import HealthApi

urlpatterns = [
    path("health", HealthApi.as_view(), name="health"),
    path("alerts/", include("monitoring.alerts.urls")),
]
