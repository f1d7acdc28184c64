"""Celery tasks of the alerts: one task per delivery attempt, taking ids only.

Registered by monitoring.apps (Celery's autodiscovery looks at `monitoring.tasks` only).
"""

from celery import shared_task

from monitoring.alerts.services.delivery import ATTEMPT_TIME_LIMIT_SECONDS, alert_delivery_attempt

ALERT_DELIVER = "monitoring.alert_deliver"


@shared_task(
    name=ALERT_DELIVER,
    soft_time_limit=ATTEMPT_TIME_LIMIT_SECONDS - 15,
    time_limit=ATTEMPT_TIME_LIMIT_SECONDS,
    ignore_result=True,
)
def alert_deliver(delivery_id: int, attempt: int = 1) -> str:
    """Attempt `attempt` of one delivery. Idempotent: the attempt is claimed in the database before sending, so a
    copy of this task (a broker redelivery) sends nothing. Retries are new tasks enqueued by the service with their
    backoff countdown, never Celery's own retry."""
    return alert_delivery_attempt(delivery_id=delivery_id, attempt=attempt)
