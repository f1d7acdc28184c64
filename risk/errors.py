"""The risk app's errors and their codes, in one place (the base: nija.errors; rendered by nija.api.errors)."""

from enum import StrEnum

from accounts.errors import AccountInactive
from nija.errors import ConflictError, NotFoundError, ServiceUnavailableError

__all__ = ["AccountInactive"]  # the accounts app's error (its authentication raises it too), re-exported


class RiskErrorCode(StrEnum):
    ACCOUNT_INACTIVE = AccountInactive.default_code
    ACCOUNT_NOT_FOUND = "account_not_found"
    POSITION_NOT_FOUND = "position_not_found"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    ILLEGAL_TRANSITION = "illegal_transition"
    QUANTITY_EXCEEDED = "quantity_exceeded"
    RISK_STATE_UNAVAILABLE = "risk_state_unavailable"
    STALE_STATE = "stale_state"
    NO_EQUITY_HOLD = "no_equity_hold"
    EQUITY_HOLD_CHANGED = "equity_hold_changed"
    TRANSFER_EXCEEDS_EQUITY = "transfer_exceeds_equity"


class AccountNotFound(NotFoundError):
    """Unknown, or another bot's account: the same answer for both, so ids leak nothing."""

    default_code = RiskErrorCode.ACCOUNT_NOT_FOUND
    default_detail = "Unknown account."


class PositionNotFound(NotFoundError):
    default_code = RiskErrorCode.POSITION_NOT_FOUND
    default_detail = "Unknown position."


class IdempotencyConflict(ConflictError):
    default_code = RiskErrorCode.IDEMPOTENCY_CONFLICT
    default_detail = "This idempotency key was already used with a different request body."


class IllegalTransition(ConflictError):
    default_code = RiskErrorCode.ILLEGAL_TRANSITION
    default_detail = "The position's current status does not allow this action."


class QuantityExceeded(ConflictError):
    default_code = RiskErrorCode.QUANTITY_EXCEEDED
    default_detail = "The quantity exceeds what the position allows."


class RiskStateUnavailable(ServiceUnavailableError):
    """The engine cannot read its state (database or Redis down, lock wait past its timeout): it allows nothing."""

    default_code = RiskErrorCode.RISK_STATE_UNAVAILABLE
    default_detail = "Risk state is unavailable; nothing was approved. Retry later."


class StaleState(ServiceUnavailableError):
    """The account's equity is unknown or older than equity_max_age: the rules cannot be evaluated."""

    default_code = RiskErrorCode.STALE_STATE
    default_detail = "The account's equity report is missing or stale; nothing was approved. Report equity first."


class NoEquityHold(ConflictError):
    default_code = RiskErrorCode.NO_EQUITY_HOLD
    default_detail = "This account has no held equity increase to confirm."


class EquityHoldChanged(ConflictError):
    default_code = RiskErrorCode.EQUITY_HOLD_CHANGED
    default_detail = "The held figure changed since it was read (a later report replaced it); nothing was applied."


class TransferExceedsEquity(ConflictError):
    default_code = RiskErrorCode.TRANSFER_EXCEEDS_EQUITY
    default_detail = "A withdrawal cannot exceed the account's equity; nothing was recorded."
