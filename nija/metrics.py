"""Prometheus metrics of every process (web workers, the events process, Celery) and the `/metrics` view.

Multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` is set, and emptied, before any process starts (`make run`, the
Procfile and compose entry commands); prometheus_client then keeps each process's samples in files there, and
`/metrics`, served by web, reads them all. Files are named by host and pid (not pid alone), so containers
sharing one directory never write the same file. A dead process is marked (gunicorn's `child_exit`, Celery's
`worker_process_shutdown`: `process_dead`), so its live gauges drop out while its counters keep counting; every
gauge declares its `multiprocess_mode`. Without the variable (a plain `manage.py runserver`), the one process's
registry is served.

What is counted: HTTP requests and their latency by route (`MetricsMiddleware`; the route pattern, never the
raw path, so ids do not multiply the series), risk checks by decision and the failing rules of rejected ones by
reason code (`risk_check_observe`, called where the decision is known), rate-limiter denials and fail-open
passes, and Celery task runs and durations (signals). Apps add collectors read at
scrape time (`collector_register`: the desk snapshot's business gauges).

`/metrics` is not public: with `METRICS_TOKEN` set it needs `Authorization: Bearer <METRICS_TOKEN>`; without
it, only a loopback peer is served (Prometheus on the same host), and never a request a proxy forwarded.
"""

import hmac
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    Summary,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.registry import Collector

from nija.cache import TASKS

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ
HOST = socket.gethostname()


def process_identifier(pid: int | None = None) -> str:
    """How this host's process `pid` (default: this one) names its sample files."""
    return f"{HOST}-{pid or os.getpid()}"


if MULTIPROCESS:  # before any metric exists: every metric takes its value class when it is created
    values.ValueClass = values.MultiProcessValue(process_identifier)
LOOPBACK = frozenset({"127.0.0.1", "::1"})
# A proxy on the same host hands every outside request over from loopback: a request that names a client it was
# forwarded for is not a local scrape, whatever the peer address (and whatever TRUSTED_PROXY_COUNT says).
FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
# A client may send any method name: anything else is counted as "other", so it cannot multiply the series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter("nija_http_requests_total", "HTTP requests answered.", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "nija_http_request_duration_seconds", "Time to answer a request.", ["method", "route"], buckets=LATENCY_BUCKETS
)
RISK_CHECKS = Counter("nija_risk_checks_total", "Risk checks answered, by decision.", ["decision"])
RISK_REJECTION_REASONS = Counter(
    "nija_risk_check_rejection_reasons_total",
    "Failing rules of rejected risk checks, by reason code (a check failing several rules counts once for each).",
    ["reason"],
)
RISK_CHECK_PATHS = Counter(
    "nija_risk_check_paths_total",
    "Checks (refusals and errors included) by the path that answered them: snapshot (decided on an unlocked read; an "
    "approval reserved by one statement that re-verified it), fallback (a snapshot that no longer held, the day's "
    "first check or an approval request, then the locked path) or locked (an explicit time: tasks and tests).",
    ["path"],
)
RISK_LOCK_HELD = Summary(
    "nija_risk_portfolio_lock_held_seconds",
    "Time reserving checks held the portfolio row: from the lock granted to COMMIT returned (the locked path, timed "
    "by the web process), or to the end of the reserving statement's work, a snapshot found changed included (the "
    "snapshot path, timed by PostgreSQL; its COMMIT's WAL flush follows).",
)
RATE_LIMIT_DENIALS = Counter("nija_rate_limit_denials_total", "Requests refused by a rate limit (429).", ["scope"])
RATE_LIMIT_FAIL_OPEN = Counter(
    "nija_rate_limit_fail_open_total", "Requests let through unlimited because Redis was unreachable.", ["scope"]
)
ALERT_EVENTS = Counter(
    "nija_alert_events_total", "Alert firings and resolutions, by state and severity.", ["state", "severity"]
)
ALERT_DELIVERY_ATTEMPTS = Counter(
    "nija_alert_delivery_attempts_total", "Alert delivery attempts, by channel kind and outcome.", ["kind", "outcome"]
)
TASK_RUNS = Counter("nija_celery_task_runs_total", "Celery task runs, by task and outcome.", ["task", "outcome"])
TASK_DURATION = Histogram(
    "nija_celery_task_duration_seconds", "Celery task run time.", ["task"], buckets=LATENCY_BUCKETS
)

_collectors: list[Collector] = []
_children: dict[tuple, Any] = {}


def child(metric: Counter | Histogram, *labels: str) -> Any:
    """The labelled child of `metric`, remembered: `labels()` takes a lock and rebuilds its key on every call, which
    measured as much as the increment itself on the check path."""
    key = (metric, labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def collector_register(collector: Collector) -> None:
    """Add a collector read at every scrape (once per process; the single-process registry gets it too)."""
    if collector in _collectors:
        return
    _collectors.append(collector)
    if not MULTIPROCESS:
        REGISTRY.register(collector)


def risk_check_observe(decision: str, reason_codes: Iterable[str]) -> None:
    """One answered check: its decision, and each failing rule's code when it was rejected."""
    child(RISK_CHECKS, str(decision)).inc()
    for code in reason_codes:
        child(RISK_REJECTION_REASONS, code).inc()


# ---------------------------------------------------------------------------------------------- HTTP
class MetricsMiddleware:
    """Counts every request and times it, labelled by the matched route pattern ("unmatched" otherwise)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        child(HTTP_LATENCY, method, route).observe(time.perf_counter() - started)
        child(HTTP_REQUESTS, method, route, str(response.status_code)).inc()
        return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: every process's samples and the registered collectors, in Prometheus's text format."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in _collectors:
            registry.register(collector)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    from nija.api.errors import error_response  # late: Celery processes import this module before DRF is set up

    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return error_response(401, "not_authenticated", "/metrics needs the metrics bearer token.")
        return None
    if request.META.get("REMOTE_ADDR") not in LOOPBACK or any(header in request.META for header in FORWARDED):
        return error_response(403, "permission_denied", "/metrics is served to loopback peers or with a token.")
    return None


# ---------------------------------------------------------------------------------------------- Celery
_started: dict[str, float] = {}


def _task_started(task_id: str | None = None, **kwargs: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


def _task_finished(task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any) -> None:
    """Count the run, time it, and keep its last finish (time, duration, outcome) in Redis for health pages."""
    started = _started.pop(task_id, None) if task_id else None
    name = getattr(task, "name", None) or "unknown"
    outcome = (state or "unknown").lower()
    TASK_RUNS.labels(name, outcome).inc()
    duration = None if started is None else time.perf_counter() - started
    if duration is not None:
        TASK_DURATION.labels(name).observe(duration)
    TASKS.set(
        name,
        {
            "finished_at": time.time(),
            "duration_ms": None if duration is None else round(duration * 1000, 1),
            "outcome": outcome,
        },
    )


def process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (its counters keep counting)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(process_identifier(pid))


def _pool_process_exited(pid: int | None = None, **kwargs: Any) -> None:
    process_dead(pid or os.getpid())


def install_celery_metrics() -> None:
    """Connect the task signals (every Celery process) and mark an exiting pool process dead."""
    from celery.signals import task_postrun, task_prerun, worker_process_shutdown

    task_prerun.connect(_task_started, weak=False)
    task_postrun.connect(_task_finished, weak=False)
    worker_process_shutdown.connect(_pool_process_exited, weak=False)


def task_last_runs(names: Iterable[str]) -> dict[str, Any]:
    """The last recorded finish of each task name (absent when none was recorded, or Redis is down)."""
    return TASKS.get_many(list(names))
