"""The periodic schedule: each app declares its own periodic tasks, and `sync_schedule` writes them all to
django-celery-beat's tables.

An app declares its tasks with a `periodic_tasks()` method on its AppConfig returning `PeriodicEntry` values (read
at call time: intervals come from settings). This module collects them from every installed app, so no app needs
to import another to be scheduled (risk may not import monitoring, and nija imports no app at all).

Beat reads its schedule from the database (editable in admin). `periodic_tasks_ensure` creates each entry that is
missing, by name, and never touches one that exists: an operator's edit in admin (interval, enabled, expiry)
survives every deploy, unlike a static `CELERY_BEAT_SCHEDULE` that beat copies over the tables at each start.
"""

from dataclasses import dataclass

from django.apps import apps
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask


@dataclass(frozen=True)
class PeriodicEntry:
    """One periodic task: its unique name in admin, the Celery task name and its interval in seconds."""

    name: str
    task: str
    every_seconds: int


def periodic_entries() -> tuple[PeriodicEntry, ...]:
    """Every periodic task the installed apps declare, in INSTALLED_APPS order."""
    entries: list[PeriodicEntry] = []
    for config in apps.get_app_configs():
        declare = getattr(config, "periodic_tasks", None)
        if declare is not None:
            entries.extend(declare())
    return tuple(entries)


def interval_get_or_create(*, every_seconds: int) -> IntervalSchedule:
    """An interval row of `every_seconds` seconds (the table has no unique constraint: reuse the first match)."""
    interval = IntervalSchedule.objects.filter(every=every_seconds, period=IntervalSchedule.SECONDS).first()
    return interval or IntervalSchedule.objects.create(every=every_seconds, period=IntervalSchedule.SECONDS)


def periodic_tasks_ensure(entries: tuple[PeriodicEntry, ...] | None = None) -> list[tuple[PeriodicEntry, bool]]:
    """Create each missing entry (enabled, expiring after one interval so a backlog never piles up while the
    workers are down); leave existing ones exactly as they are. Returns (entry, created) pairs."""
    results = []
    with transaction.atomic():
        for entry in entries if entries is not None else periodic_entries():
            if PeriodicTask.objects.filter(name=entry.name).exists():
                results.append((entry, False))
                continue
            _, created = PeriodicTask.objects.get_or_create(
                name=entry.name,
                defaults={
                    "task": entry.task,
                    "interval": interval_get_or_create(every_seconds=entry.every_seconds),
                    "expire_seconds": entry.every_seconds,
                    "enabled": True,
                },
            )
            results.append((entry, created))
    return results
