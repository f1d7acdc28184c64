"""The expiry task called directly, and `sync_schedule`: periodic tasks created once, admin edits never overwritten."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from risk.tasks import EXPIRE_RESERVATIONS, expire_reservations
from tests.risk.conftest import counter_drift, funded_account
from tests.risk.services.scenario import exposures, reserve
from trading.models import Position


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark from another test."""


@pytest.mark.django_db
def test_the_expiry_task_releases_reservations_past_their_ttl_and_is_idempotent():
    account = funded_account("100000")
    stale = reserve(account, quantity="0.1", now=timezone.now() - timedelta(seconds=121))  # ttl 120 s: past
    fresh = reserve(account, quantity="0.2")

    assert expire_reservations() == 1
    assert expire_reservations() == 0

    assert dict(Position.objects.values_list("pk", "status")) == {stale.pk: "expired", fresh.pk: "approved"}
    assert exposures(account) == (Decimal(10000), 1, Decimal(10000), 1, Decimal(10000))
    assert counter_drift() == []


def test_the_expiry_task_has_a_name_time_limits_and_takes_no_arguments():
    assert expire_reservations.name == EXPIRE_RESERVATIONS == "risk.expire_reservations"
    assert (expire_reservations.soft_time_limit, expire_reservations.time_limit) == (30, 45)
    assert expire_reservations.ignore_result is True


@pytest.mark.django_db
def test_sync_schedule_creates_the_expiry_task_once(settings):
    settings.RISK_EXPIRY_INTERVAL_SECONDS = 17
    settings.RISK_ACCOUNT_SWEEP_INTERVAL_SECONDS = 19
    out = StringIO()

    call_command("sync_schedule", stdout=out)
    call_command("sync_schedule", stdout=out)

    task = PeriodicTask.objects.get(task=EXPIRE_RESERVATIONS)
    assert (task.name, task.enabled, task.expire_seconds) == ("risk: expire reservations", True, 17)
    assert (task.interval.every, task.interval.period) == (17, IntervalSchedule.SECONDS)
    assert (task.args, task.kwargs) == ("[]", "{}")
    assert PeriodicTask.objects.filter(task=EXPIRE_RESERVATIONS).count() == 1
    assert IntervalSchedule.objects.filter(every=17).count() == 1
    assert out.getvalue().splitlines() == [
        "created 'risk: expire reservations': risk.expire_reservations every 17 s",
        "created 'risk: sweep accounts (stale equity, deactivated)': risk.sweep_accounts every 19 s",
        "kept 'risk: expire reservations' as it is",
        "kept 'risk: sweep accounts (stale equity, deactivated)' as it is",
    ]


@pytest.mark.django_db
def test_sync_schedule_never_overwrites_an_admin_edit(settings):
    call_command("sync_schedule", stdout=StringIO())
    task = PeriodicTask.objects.get(task=EXPIRE_RESERVATIONS)
    task.interval = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    task.enabled = False
    task.save()
    settings.RISK_EXPIRY_INTERVAL_SECONDS = 5

    call_command("sync_schedule", stdout=StringIO())

    task.refresh_from_db()
    assert (task.interval.every, task.enabled) == (60, False)
    assert not IntervalSchedule.objects.filter(every=5).exists()
    assert PeriodicTask.objects.filter(task=EXPIRE_RESERVATIONS).count() == 1


@pytest.mark.django_db
def test_the_expiry_task_finishes_a_halt_whose_own_sweep_did_not_release_everything():
    from risk.engine import TradingMode
    from risk.services.trading_state import trading_state_set

    halted, running = funded_account("100000"), funded_account("100000")
    stranded = reserve(halted, quantity="0.1", price="50000")  # still approved, fresh: not yet expirable
    untouched = reserve(running, quantity="0.1", price="50000")
    trading_state_set(instance_id=halted.pk, mode=TradingMode.HALTED, reason="test: no sweep", actor=None)

    released = expire_reservations()

    stranded.refresh_from_db()
    untouched.refresh_from_db()
    assert released == 1
    assert (stranded.status, untouched.status) == ("cancelled", "approved")
    assert counter_drift() == []
