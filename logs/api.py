"""`GET /api/logs`: the recent structured log entries, filtered, newest first (operators only)."""

import re

from drf_spectacular.utils import extend_schema
from redis.exceptions import RedisError
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from logs.middleware import is_valid_request_id
from logs.selectors import LEVELS, LogQuery, log_entry_list
from nija.api.permissions import IsOperator
from nija.errors import ServiceUnavailableError

MAX_LIMIT = 1000
# Dot-separated parts, none empty, no whitespace.
_LOGGER_NAME = re.compile(r"[^.\s]+(?:\.[^.\s]+)*")


def _validate_identifier(value: str) -> str:
    if not is_valid_request_id(value):
        raise serializers.ValidationError("At most 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'.")
    return value


def _validate_logger_name(value: str) -> str:
    if _LOGGER_NAME.fullmatch(value) is None:
        raise serializers.ValidationError("A logger name such as risk or risk.services (it matches its children).")
    return value


class LogQuerySerializer(serializers.Serializer):
    level = serializers.CharField(required=False)
    logger = serializers.CharField(max_length=200, required=False, validators=[_validate_logger_name])
    correlation_id = serializers.CharField(required=False, validators=[_validate_identifier])
    user_id = serializers.CharField(required=False, validators=[_validate_identifier])
    account_id = serializers.CharField(required=False, validators=[_validate_identifier])
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=100)

    def validate_level(self, value: str) -> str:
        if value.lower() not in LEVELS:
            raise serializers.ValidationError(f"One of: {', '.join(LEVELS)}.")
        return value.lower()

    def validate(self, attrs: dict) -> dict:
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["Must not be earlier than since."]})
        return attrs


class LogListApi(APIView):
    """Filters: level (this level and above), logger (that logger and its children), correlation_id (the request id),
    user_id, account_id, since / until (ISO-8601), limit (default 100, at most 1,000)."""

    permission_classes = [IsOperator]

    @extend_schema(parameters=[LogQuerySerializer], responses={200: dict})
    def get(self, request: Request) -> Response:
        params = LogQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            results = log_entry_list(query=LogQuery(**params.validated_data))
        except RedisError as exc:
            raise ServiceUnavailableError("The recent-log stream is unavailable.", code="logs_unavailable") from exc
        return Response({"count": len(results), "next": None, "previous": None, "results": results})
