"""The alert app's error codes, in one place, as the house error shape renders them."""

from enum import StrEnum

from rest_framework import status

from nija.api.errors import ApiError


class AlertErrorCode(StrEnum):
    INVALID_RULE = "invalid_alert_rule"
    INVALID_CHANNEL = "invalid_channel"
    RULE_NOT_FOUND = "alert_rule_not_found"
    CHANNEL_NOT_FOUND = "channel_not_found"


class InvalidRule(ApiError):
    """A rule that cannot be evaluated as given (the fields say which and why); nothing was written."""

    default_code = AlertErrorCode.INVALID_RULE
    default_detail = "The alert rule is not valid; nothing was written."


class InvalidChannel(ApiError):
    default_code = AlertErrorCode.INVALID_CHANNEL
    default_detail = "The notification channel is not valid; nothing was written."


class RuleNotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = AlertErrorCode.RULE_NOT_FOUND
    default_detail = "Unknown alert rule."


class ChannelNotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = AlertErrorCode.CHANNEL_NOT_FOUND
    default_detail = "Unknown notification channel."
