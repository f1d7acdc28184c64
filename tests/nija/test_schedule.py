"""`sync_schedule`: the periodic tasks every app declares (nija.schedule), created once in django-celery-beat's
tables with their intervals from settings, and never overwritten afterwards (an admin edit survives)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from monitoring.tasks import AGGREGATE, ANALYTICS, HEARTBEAT_WATCHDOG, PRUNE_HISTORY
from nija.schedule import periodic_entries
from risk.tasks import EXPIRE_RESERVATIONS, SWEEP_ACCOUNTS


def test_each_app_declares_its_own_periodic_tasks(settings):
    settings.RISK_EXPIRY_INTERVAL_SECONDS = 17
    settings.MONITORING_INTERVAL_SECONDS = 3
    settings.MONITORING_HEARTBEAT_INTERVAL_SECONDS = 7

    entries = {entry.task: entry.every_seconds for entry in periodic_entries()}

    assert entries == {
        EXPIRE_RESERVATIONS: 17,
        SWEEP_ACCOUNTS: settings.RISK_ACCOUNT_SWEEP_INTERVAL_SECONDS,
        AGGREGATE: 3,
        ANALYTICS: settings.MONITORING_ANALYTICS_INTERVAL_SECONDS,
        PRUNE_HISTORY: settings.MONITORING_PRUNE_INTERVAL_SECONDS,
        HEARTBEAT_WATCHDOG: 7,
    }


@pytest.mark.django_db
def test_sync_schedule_creates_every_task_once(settings):
    settings.RISK_EXPIRY_INTERVAL_SECONDS = 17
    settings.MONITORING_INTERVAL_SECONDS = 5
    out = StringIO()

    call_command("sync_schedule", stdout=out)
    call_command("sync_schedule", stdout=out)

    task = PeriodicTask.objects.get(task=EXPIRE_RESERVATIONS)
    assert (task.name, task.enabled, task.expire_seconds) == ("risk: expire reservations", True, 17)
    assert (task.interval.every, task.interval.period) == (17, IntervalSchedule.SECONDS)
    assert (task.args, task.kwargs) == ("[]", "{}")
    aggregate = PeriodicTask.objects.get(task=AGGREGATE)
    assert (aggregate.name, aggregate.interval.every, aggregate.expire_seconds) == (
        "monitoring: aggregate desk metrics",
        5,
        5,
    )
    assert PeriodicTask.objects.count() == 6
    assert IntervalSchedule.objects.filter(every=17).count() == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == "created 'risk: expire reservations': risk.expire_reservations every 17 s"
    assert lines[2] == "created 'monitoring: aggregate desk metrics': monitoring.aggregate every 5 s"
    assert lines[5] == "created 'monitoring: heartbeat watchdog': monitoring.heartbeat_watchdog every 10 s"
    assert lines[6:] == [
        "kept 'risk: expire reservations' as it is",
        "kept 'risk: sweep accounts (stale equity, deactivated)' as it is",
        "kept 'monitoring: aggregate desk metrics' as it is",
        "kept 'monitoring: desk analytics' as it is",
        "kept 'monitoring: prune history' as it is",
        "kept 'monitoring: heartbeat watchdog' as it is",
    ]


@pytest.mark.django_db
def test_sync_schedule_never_overwrites_an_admin_edit(settings):
    call_command("sync_schedule", stdout=StringIO())
    task = PeriodicTask.objects.get(task=AGGREGATE)
    task.interval = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    task.enabled = False
    task.save()
    settings.MONITORING_INTERVAL_SECONDS = 2

    call_command("sync_schedule", stdout=StringIO())

    task.refresh_from_db()
    assert (task.interval.every, task.enabled) == (60, False)
    assert not IntervalSchedule.objects.filter(every=2).exists()
    assert PeriodicTask.objects.filter(task=AGGREGATE).count() == 1
