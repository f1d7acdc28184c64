"""The monitoring app's errors and their codes, in one place (the base: nija.errors; rendered by nija.api.errors)."""

from enum import StrEnum

from nija.errors import ServiceUnavailableError


class MonitoringErrorCode(StrEnum):
    SNAPSHOT_UNAVAILABLE = "snapshot_unavailable"
    ANALYTICS_UNAVAILABLE = "analytics_unavailable"
    STORE_UNAVAILABLE = "store_unavailable"


class SnapshotUnavailable(ServiceUnavailableError):
    """No desk snapshot in Redis: the aggregation has not run yet (or Redis lost it, or is down). Endpoints never
    aggregate per request instead: that is the beat's job, and a burst of dashboards must not become a burst of
    full-desk aggregations."""

    default_code = MonitoringErrorCode.SNAPSHOT_UNAVAILABLE
    default_detail = (
        "No desk snapshot yet: the aggregation task writes one every few seconds once the worker and beat run."
    )


class AnalyticsUnavailable(ServiceUnavailableError):
    default_code = MonitoringErrorCode.ANALYTICS_UNAVAILABLE
    default_detail = "No desk analytics yet: the analytics task has not run (they are recomputed every few minutes)."


class StoreUnavailable(ServiceUnavailableError):
    default_code = MonitoringErrorCode.STORE_UNAVAILABLE
    default_detail = "PostgreSQL or Redis is unavailable; retry shortly."
