from django.urls import path

from logs.api import LogListApi

urlpatterns = [
    path("logs", LogListApi.as_view(), name="log-list"),
]
