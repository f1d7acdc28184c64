"""The cached desk figures in Redis (`nija:dash:*`, JSON): the latest aggregation snapshot and the latest
analytics, each carrying the time it was computed so every reader can say how old it is.

Reads fail soft (a Redis error reads as "no snapshot", and the endpoints answer 503 `snapshot_unavailable`);
a write that Redis refused is logged and the next run writes again.
"""

from datetime import datetime
from typing import Any

from django.conf import settings

from nija.cache import DASH

SNAPSHOT_KEY = "snapshot"
ANALYTICS_KEY = "analytics"


def snapshot_store(snapshot: dict[str, Any]) -> bool:
    return DASH.set(SNAPSHOT_KEY, snapshot, ttl=settings.MONITORING_SNAPSHOT_TTL_SECONDS)


def analytics_store(analytics: dict[str, Any]) -> bool:
    """Kept for at least three analytics intervals, so one failed run never empties the endpoints."""
    ttl = max(settings.MONITORING_SNAPSHOT_TTL_SECONDS, 3 * settings.MONITORING_ANALYTICS_INTERVAL_SECONDS)
    return DASH.set(ANALYTICS_KEY, analytics, ttl=ttl)


def snapshot_get() -> dict[str, Any] | None:
    return DASH.get(SNAPSHOT_KEY)


def analytics_get() -> dict[str, Any] | None:
    return DASH.get(ANALYTICS_KEY)


def age_seconds(computed_at: str, *, now: datetime) -> float:
    """Seconds since a cached figure's `computed_at` (never negative: clocks of two hosts may disagree)."""
    return max(0.0, round((now - datetime.fromisoformat(computed_at)).total_seconds(), 3))
