"""Celery tasks of the monitoring app: each takes no arguments, calls one service, is idempotent and time-limited.

Their periodic schedule is declared by `MonitoringConfig.periodic_tasks` (monitoring/apps.py) and written to
django-celery-beat's tables by `python manage.py sync_schedule`. No retries: the next beat tick is the retry.
"""

from celery import shared_task
from django.utils import timezone

from monitoring.services import aggregation_run, analytics_run, history_prune
from monitoring.watchdog import heartbeat_watch

AGGREGATE = "monitoring.aggregate"
ANALYTICS = "monitoring.analytics"
PRUNE_HISTORY = "monitoring.prune_history"
HEARTBEAT_WATCHDOG = "monitoring.heartbeat_watchdog"


@shared_task(name=AGGREGATE, soft_time_limit=30, time_limit=45, ignore_result=True)
def aggregate() -> bool:
    """One desk aggregation run; False when another run was in progress (it then did nothing)."""
    return aggregation_run(now=timezone.now()) is not None


@shared_task(name=ANALYTICS, soft_time_limit=120, time_limit=180, ignore_result=True)
def analytics() -> bool:
    """Correlation, VaR and expected shortfall recomputed and cached; False when another run was in progress."""
    return analytics_run(now=timezone.now()) is not None


@shared_task(name=PRUNE_HISTORY, soft_time_limit=300, time_limit=360, ignore_result=True)
def prune_history() -> tuple[int, int]:
    """History past its retention deleted in batches: (snapshots, account points). A run cut short by its time
    limit keeps what it deleted; the next one goes on."""
    return history_prune(now=timezone.now())


@shared_task(name=HEARTBEAT_WATCHDOG, soft_time_limit=30, time_limit=45, ignore_result=True)
def heartbeat_watchdog() -> tuple[int, int, int]:
    """Bots silent past their heartbeat_timeout marked stale (one warning event each) and their unfilled
    reservations released; bots heard from again restored: (marked, restored, released). Idempotent: a mark is set
    once per silence, a released reservation is not selected again, and a run cut short leaves the rest to the
    next one."""
    result = heartbeat_watch(now=timezone.now())
    return len(result.lost), len(result.restored), len(result.released_position_ids)
