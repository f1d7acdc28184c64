"""The Celery application. Tasks live in each app's `tasks.py`; the schedule in django-celery-beat's tables."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nija.settings.local")

app = Celery("nija")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
