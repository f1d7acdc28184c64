"""`/api/system/health` and `/api/audit` (operators only): the platform itself, and the audit trail."""

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from logs.selectors import log_drop_stats
from monitoring import api_schema as schema
from monitoring.api_desk import MonitoringApiView, snapshot_age
from monitoring.selectors import host_resources, recent_component_health
from monitoring.selectors_audit import audit_entry_list
from monitoring.selectors_system import celery_queue_depth, load_average, periodic_tasks
from monitoring.snapshots import snapshot_get
from nija.api.pagination import CappedPageNumberPagination
from nija.events import publish_failures
from nija.ratelimit import fail_open_count
from risk.api_reads import query


class SystemHealthApi(MonitoringApiView):
    """GET /api/system/health: the components (PostgreSQL, Redis, the Celery broker) with their latency, the
    host (cpu, memory, disk, load), the Celery queue depth, every periodic task with its last beat and last
    finish, the desk snapshot's age, and what this process dropped or let through (log lines, events, checks
    while the rate limiter was unreachable). Always 200: the figures say what is wrong."""

    @extend_schema(responses={200: schema.SystemHealthOutput})
    def get(self, request: Request) -> Response:
        query(serializers.Serializer, request)
        now = timezone.now()
        probes = recent_component_health()
        components = probes.components
        snapshot = snapshot_get()
        return Response(
            {
                "status": "ok" if all(result.ok for result in components.values()) else "unavailable",
                "checked_at": probes.checked_at,
                "components": {name: result.as_dict() for name, result in components.items()},
                "host": {**host_resources(), "load": load_average()},
                "celery": {"queue_depth": celery_queue_depth()},
                "periodic_tasks": periodic_tasks(),
                "snapshot": None if snapshot is None else snapshot_age(snapshot, now=now),
                "dropped": _dropped(),
            }
        )


def _dropped() -> dict[str, Any]:
    return {
        "logs": log_drop_stats(),
        "events_publish_failures_this_process": publish_failures(),
        "rate_limiter_fail_open_this_process": fail_open_count(),
    }


class AuditQuery(serializers.Serializer):
    actor = serializers.CharField(
        required=False, allow_blank=True, max_length=150, help_text="A username; empty: the system's own entries."
    )
    action = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    page = serializers.IntegerField(required=False, min_value=1, max_value=10**9)
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=CappedPageNumberPagination.max_page_size
    )

    def validate(self, attrs: dict) -> dict:
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class AuditListApi(MonitoringApiView):
    """GET /api/audit?actor=&action=&since=&until=&page=&page_size=: the append-only audit trail (who, what,
    before, after, why), newest first; since inclusive, until exclusive."""

    @extend_schema(parameters=[AuditQuery], responses={200: schema.AuditListOutput})
    def get(self, request: Request) -> Response:
        filters = query(AuditQuery, request)
        entries = audit_entry_list(
            actor=filters.get("actor"),
            action=filters.get("action"),
            since=filters.get("since"),
            until=filters.get("until"),
        )
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(schema.AuditEntryOutput(page, many=True).data)
