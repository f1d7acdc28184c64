"""The Celery application. Tasks live in each app's `tasks.py`; the schedule in django-celery-beat's tables.

Production settings unless DJANGO_SETTINGS_MODULE names others (`make run` names nija.settings.local)."""

import os

from celery import Celery
from celery.signals import celeryd_init

from logs.celery import install_celery_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nija.settings.production")

app = Celery("nija")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# JSON logging in worker and beat, and the enqueuer's request id carried into every task (logs/ owns it).
install_celery_logging(app)


def _install_metrics(**kwargs: object) -> None:
    """Task runs and durations in Prometheus, and each task's last finish for the health pages: connected when a
    worker starts (before its pool forks), so importing the project never imports prometheus_client before the
    settings have said where its multiprocess files go."""
    from nija.metrics import install_celery_metrics

    install_celery_metrics()


celeryd_init.connect(_install_metrics, weak=False)
