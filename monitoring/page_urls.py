"""The operator page's URL (included by nija/urls.py under /dashboard/)."""

from django.urls import path

from monitoring.page import dashboard_page

urlpatterns = [path("", dashboard_page, name="dashboard")]
