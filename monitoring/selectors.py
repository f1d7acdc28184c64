"""Reads for monitoring: probes of the components the platform depends on, and host resource figures.

Every probe has a short timeout and runs in its own thread, so a hung dependency delays the health answer
by at most `HEALTH_PROBE_TIMEOUT` and never hangs it.

`/api/health` answers anyone, so it reads `recent_component_health()`: one probe round (a database connection, a
broker connection, a thread pool) per HEALTH_CACHE_SECONDS in a process, however many callers ask; callers that
arrive while a round runs wait for its result instead of starting their own.
"""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psutil
import redis
from django.conf import settings
from django.db import connections
from django.utils import timezone
from django_redis import get_redis_connection


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_ms: float | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ok" if self.ok else "down", "latency_ms": self.latency_ms}
        if self.error:
            body["error"] = self.error
        return body


def _probe_database() -> None:
    connection = connections.create_connection("default")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()


def _probe_cache_redis() -> None:
    get_redis_connection("default").ping()


def _probe_broker() -> None:
    timeout = settings.HEALTH_PROBE_TIMEOUT
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def _timed(probe: Callable[[], None]) -> ProbeResult:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the class name says why
        return ProbeResult(ok=False, latency_ms=None, error=type(exc).__name__)
    return ProbeResult(ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 3))


PROBES: dict[str, Callable[[], None]] = {
    "database": _probe_database,
    "redis": _probe_cache_redis,
    "celery": _probe_broker,
}


def component_health(timeout: float | None = None) -> dict[str, ProbeResult]:
    """Run every probe concurrently; a probe still running after `timeout` seconds counts as down."""
    timeout = settings.HEALTH_PROBE_TIMEOUT if timeout is None else timeout
    executor = ThreadPoolExecutor(max_workers=len(PROBES), thread_name_prefix="health-probe")
    futures = {name: executor.submit(_timed, probe) for name, probe in PROBES.items()}
    wait(futures.values(), timeout=timeout)
    executor.shutdown(wait=False, cancel_futures=True)
    return {
        name: future.result() if future.done() else ProbeResult(ok=False, latency_ms=None, error="timeout")
        for name, future in futures.items()
    }


@dataclass(frozen=True)
class HealthRound:
    """The results of one probe round and when it finished."""

    checked_at: datetime
    components: dict[str, ProbeResult]
    finished: float  # time.monotonic()


class _RecentRound:
    """The latest probe round of this process, and the lock that lets one round run at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latest: HealthRound | None = None

    def get(self, max_age: float) -> HealthRound:
        with self.lock:
            latest = self.latest
            if latest is None or time.monotonic() - latest.finished > max_age:
                components = component_health()
                latest = self.latest = HealthRound(timezone.now(), components, time.monotonic())
            return latest

    def clear(self) -> None:
        with self.lock:
            self.latest = None


_recent_round = _RecentRound()


def recent_component_health(max_age: float | None = None) -> HealthRound:
    """The latest probe round if it finished at most `max_age` seconds ago (HEALTH_CACHE_SECONDS), else a new one."""
    return _recent_round.get(settings.HEALTH_CACHE_SECONDS if max_age is None else max_age)


def recent_component_health_clear() -> None:
    """Forget the latest round: the next caller probes (tests that change what the probes reach)."""
    _recent_round.clear()


def host_resources() -> dict[str, Any]:
    """CPU, memory and disk of the host serving this request."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(settings.BASE_DIR))
    return {
        "cpu": {"percent": psutil.cpu_percent(interval=None), "count": psutil.cpu_count()},
        "memory": {"percent": memory.percent, "available_bytes": memory.available, "total_bytes": memory.total},
        "disk": {"percent": disk.percent, "free_bytes": disk.free, "total_bytes": disk.total},
    }
