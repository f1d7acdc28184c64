"""Correlation groups: recount a group's exposure counter after its membership changed.

The check path moves a group's counter by deltas; when operators add or remove a member symbol, the counter must
be set once from the positions instead. The recount takes the portfolio lock, then the group's (the fixed lock
order of risk.selectors), so no check or transition can move exposure in between: every check that committed
before is in the SUM, every check after sees the new membership and moves the recounted counter.
"""

from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from risk import locks
from risk.models import CorrelationGroup, CorrelationGroupMember
from trading.models import EXPOSURE_STATUSES, Position


def correlation_group_recount(*, group: CorrelationGroup) -> CorrelationGroup:
    """Set the group's exposure to the sum of notional over pending, approved and open positions in its symbols."""
    with transaction.atomic():
        locks.set_lock_timeouts()
        locks.lock_portfolio()
        locked = CorrelationGroup.objects.select_for_update().get(pk=group.pk)
        symbols = CorrelationGroupMember.objects.filter(group_id=group.pk).values("symbol")
        held = Position.objects.filter(status__in=EXPOSURE_STATUSES, symbol__in=symbols).aggregate(
            held=Sum("notional")
        )["held"]
        locked.exposure = held or Decimal(0)
        locked.save(update_fields=["exposure", "updated_at"])
    group.exposure = locked.exposure
    return locked
