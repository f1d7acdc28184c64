"""The periodic schedule, declared in one place and written to django-celery-beat's tables.

Beat reads its schedule from the database (editable in admin). `periodic_tasks_ensure` creates each entry that is
missing, by name, and never touches one that exists: an operator's edit in admin (interval, enabled, expiry)
survives every deploy, unlike a static `CELERY_BEAT_SCHEDULE` that beat copies over the tables at each start.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from risk.tasks import EXPIRE_RESERVATIONS, SWEEP_ACCOUNTS


@dataclass(frozen=True)
class PeriodicEntry:
    """One periodic task: its unique name in admin, the Celery task name and its interval in seconds."""

    name: str
    task: str
    every_seconds: int


def periodic_entries() -> tuple[PeriodicEntry, ...]:
    """Every periodic task of the project (read at call time: the intervals come from settings)."""
    return (
        PeriodicEntry(
            name="risk: expire reservations",
            task=EXPIRE_RESERVATIONS,
            every_seconds=settings.RISK_EXPIRY_INTERVAL_SECONDS,
        ),
        PeriodicEntry(
            name="risk: sweep accounts (stale equity, deactivated)",
            task=SWEEP_ACCOUNTS,
            every_seconds=settings.RISK_ACCOUNT_SWEEP_INTERVAL_SECONDS,
        ),
    )


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
