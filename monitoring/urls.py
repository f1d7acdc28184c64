from django.urls import path

from monitoring.api import HealthApi

urlpatterns = [
    path("health", HealthApi.as_view(), name="health"),
]
