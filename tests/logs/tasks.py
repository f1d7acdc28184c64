"""A Celery task that exists only for the logging tests (a real worker imports it with `--include`)."""

import structlog
from celery import shared_task

logger = structlog.get_logger("tests.logs.tasks")


@shared_task(name="tests.logs.record_correlation")
def record_correlation(note: str) -> None:
    logger.info("correlation_task_ran", note=note)
