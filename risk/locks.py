"""Row locks of the risk services (no reads for callers, no writes beyond what a lock needs).

`lock_account_scope`: the portfolio and one account, locked in the one fixed order (risk.selectors.lock_scope),
what equity reports, confirmations, transfers, activation and the emergency pass take.
"""

from accounts.models import TradingInstance
from risk import selectors
from risk.errors import AccountInactive, AccountNotFound


def lock_account_scope(*, instance_id: int, active_only: bool) -> selectors.LockedScope:
    """The portfolio and the account, locked (with the lock timeouts set). `active_only`: a deactivated account or
    user is refused (403), as for everything its bot sends but fills and closes."""
    selectors.set_lock_timeouts()
    try:
        scope = selectors.lock_scope(instance_id=instance_id, symbol=None)
    except TradingInstance.DoesNotExist as exc:
        raise AccountNotFound() from exc
    if active_only and not scope.account_active:
        raise AccountInactive()
    return scope
