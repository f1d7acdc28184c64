"""Reads behind `/api/system/health`: what an operator needs to see the platform itself. The components' probes
and host figures come from monitoring.selectors (shared with `/api/health`); this adds the load average, the
Celery queue depth, every periodic task's schedule with its last beat and its last finish, and the counters of
what this process dropped (log lines, events, unlimited checks while the limiter was down)."""

import os
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from nija.metrics import task_last_runs

CELERY_QUEUES = ("celery",)


def load_average() -> dict[str, float] | None:
    """1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return None
    return {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)}


def celery_queue_depth() -> dict[str, int | None]:
    """Messages waiting in each Celery queue on the broker (None when the broker does not answer)."""
    timeout = settings.HEALTH_PROBE_TIMEOUT
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return {queue: client.llen(queue) for queue in CELERY_QUEUES}
    except redis.RedisError:
        return dict.fromkeys(CELERY_QUEUES)
    finally:
        client.close()


def periodic_tasks() -> list[dict[str, Any]]:
    """Each periodic task: its schedule, when beat last sent it, and when a worker last finished it (how long it
    took, how it ended), newest schedule edits included."""
    tasks = list(PeriodicTask.objects.select_related("interval").order_by("name"))
    finished = task_last_runs({task.task for task in tasks})
    return [_task_json(task, finished.get(task.task)) for task in tasks]


def _task_json(task: PeriodicTask, finished: dict | None) -> dict[str, Any]:
    interval = task.interval
    seconds = None if interval is None else interval.every * _PERIOD_SECONDS.get(interval.period, 0)
    return {
        "name": task.name,
        "task": task.task,
        "enabled": task.enabled,
        "every_seconds": seconds,
        "last_sent_at": task.last_run_at,
        "total_run_count": task.total_run_count,
        "last_finished_at": None if finished is None else datetime.fromtimestamp(finished["finished_at"], UTC),
        "last_duration_ms": None if finished is None else finished["duration_ms"],
        "last_outcome": None if finished is None else finished["outcome"],
    }


_PERIOD_SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "microseconds": 0}
