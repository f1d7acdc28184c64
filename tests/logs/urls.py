"""Test-only URLconf: the project's URLs plus views that enqueue a task, log secrets, or fail."""

import logging

import structlog
from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from nija.urls import handler400, handler403, handler404, handler500  # noqa: F401
from nija.urls import urlpatterns as project_urlpatterns
from tests.logs.tasks import record_correlation

logger = structlog.get_logger("tests.logs.views")


class EnqueueApi(APIView):
    """Logs one line, enqueues one task (eager or real, per settings; on `?queue=` if given), answers 202."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        logger.info("enqueue_view_called")
        queue = request.query_params.get("queue")
        record_correlation.apply_async(("from-view",), **({"queue": queue} if queue else {}))
        return Response({"queued": True}, status=202)


class SecretsApi(APIView):
    """Logs a bearer token, a broker api secret and a password, nested, through structlog and stdlib."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        body = request.data
        logger.info(
            "broker_connected",
            broker={"accounts": [{"api_secret": body["api_secret"], "label": "main"}]},
            headers={"Authorization": f"Bearer {body['token']}"},
            note=f"called with Bearer {body['token']}",
            form={"user": {"password": body["password"]}},
        )
        logging.getLogger("tests.logs.stdlib").warning(
            "login attempt password=%s", body["password"], extra={"payload": {"nested": [{"token": body["token"]}]}}
        )
        try:
            raise ValueError(f"broker refused api_secret={body['api_secret']}")
        except ValueError:
            logger.exception("broker_failed")
        return Response({"ok": True})


def ping(request: HttpRequest) -> JsonResponse:
    logger.info("ping")
    return JsonResponse({"pong": True})


def boom(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("unexpected")


urlpatterns = [
    path("api/test/enqueue", EnqueueApi.as_view()),
    path("api/test/secrets", SecretsApi.as_view()),
    path("api/test/ping", ping),
    path("api/test/boom", boom),
    *project_urlpatterns,
]
