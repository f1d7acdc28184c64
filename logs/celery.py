"""Celery processes (worker, beat) log through Django's LOGGING, and tasks inherit the enqueuer's request id.

django-structlog's Celery integration carries the bound context (request_id, user_id, account_id ...) in a
message header when a task is published and binds it again in the worker before the task runs;
`DjangoStructLogInitStep` connects the worker side. Celery would otherwise install its own plain-text root
handler: answering its `setup_logging` signal keeps Django's `settings.LOGGING` in every Celery process.
"""

import logging
import logging.config
from typing import Any

from celery import Celery
from celery.signals import setup_logging
from django_structlog.celery.steps import DjangoStructLogInitStep

from logs.config import JsonFormatter


def _keep_django_logging(**kwargs: Any) -> None:
    """Connected to `setup_logging` (which stops Celery configuring logging): applies LOGGING if not yet done."""
    if any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers):
        return
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def install_celery_logging(app: Celery) -> None:
    app.steps["worker"].add(DjangoStructLogInitStep)
    setup_logging.connect(_keep_django_logging, weak=False)
