"""The alert app's errors and their codes, in one place (the base: nija.errors; rendered by nija.api.errors)."""

from enum import StrEnum

from nija.errors import InvalidInput, NotFoundError


class AlertErrorCode(StrEnum):
    INVALID_RULE = "invalid_alert_rule"
    INVALID_CHANNEL = "invalid_channel"
    RULE_NOT_FOUND = "alert_rule_not_found"
    CHANNEL_NOT_FOUND = "channel_not_found"


class InvalidRule(InvalidInput):
    """A rule that cannot be evaluated as given (the fields say which and why); nothing was written."""

    default_code = AlertErrorCode.INVALID_RULE
    default_detail = "The alert rule is not valid; nothing was written."


class InvalidChannel(InvalidInput):
    default_code = AlertErrorCode.INVALID_CHANNEL
    default_detail = "The notification channel is not valid; nothing was written."


class RuleNotFound(NotFoundError):
    default_code = AlertErrorCode.RULE_NOT_FOUND
    default_detail = "Unknown alert rule."


class ChannelNotFound(NotFoundError):
    default_code = AlertErrorCode.CHANNEL_NOT_FOUND
    default_detail = "Unknown notification channel."
