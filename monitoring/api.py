"""Monitoring endpoints (thin: parse, authorize, call a selector, render)."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from logs.selectors import log_drop_stats
from monitoring import selectors
from nija.events import events_health
from nija.ratelimit import fail_open_count


class HealthApi(APIView):
    """Liveness and dependencies: 200 when PostgreSQL, Redis and the Celery broker answer, else 503.

    Anyone may ask, so the probes run at most once per HEALTH_CACHE_SECONDS in a process (`checked_at` says when)
    and callers are limited per client address (scope `health`).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_scope = "health"

    @extend_schema(responses={200: dict, 503: dict})
    def get(self, request: Request) -> Response:
        probes = selectors.recent_component_health()
        healthy = all(result.ok for result in probes.components.values())
        body = {
            "status": "ok" if healthy else "unavailable",
            "checked_at": probes.checked_at.isoformat(),
            **{name: result.as_dict() for name, result in probes.components.items()},
            **selectors.host_resources(),
            "logs": log_drop_stats(),
            # Checks this process let through unlimited because Redis was unreachable (fail-open scopes).
            "rate_limiter": {"fail_open_this_process": fail_open_count()},
            "events": events_health(),
        }
        return Response(body, status=200 if healthy else 503)
