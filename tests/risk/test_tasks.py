"""The expiry task called directly (its schedule: tests/nija/test_schedule.py)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

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
