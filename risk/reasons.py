"""Why a check was rejected, as each viewer may see it.

A failing rule is stored once with its figures and its scope ({code, message, limit, value, scope}). Operators
see every figure. A bot never sees portfolio-wide figures (portfolio equity and exposure, per-symbol and group
exposure, position counts: other users' money, which a bot could otherwise map by looping over dry runs): for a
portfolio rule it gets the code and a generic message, with `limit` and `value` null. A reason whose scope is
unknown is shown as a portfolio one. Every exit that shows reasons goes through `reasons_for`: check answers and
replays, the legacy `reason`, position reads and the live stream. The emergency breaches an equity report trips
are shown the same way (`breach_message_for`): a portfolio breach is named to a bot without its figures.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from risk.engine import Breach, BreachKind, ReasonScope, RuleCode

# What a bot reads for a failing portfolio rule: what happened, in words, with no figure.
PORTFOLIO_MESSAGES = {
    RuleCode.TRADING_HALTED: "portfolio trading is halted or reducing",
    RuleCode.MAX_OPEN_POSITIONS: "the portfolio holds its maximum number of positions",
    RuleCode.PORTFOLIO_EXPOSURE: "the portfolio's exposure limit would be exceeded",
    RuleCode.SYMBOL_CONCENTRATION: "the portfolio's exposure limit for this symbol would be exceeded",
    RuleCode.CORRELATED_EXPOSURE: "the exposure limit of this symbol's correlation group would be exceeded",
    RuleCode.DAILY_LOSS_LIMIT: "the portfolio's daily loss limit has been reached",
}
PORTFOLIO_MESSAGE = "a portfolio limit is reached"


def reasons_for(reasons: Iterable[Mapping[str, Any]], *, operator: bool) -> list[dict[str, Any]]:
    """Stored reasons as the viewer may see them, each as {code, message, limit, value}."""
    return [reason_for(reason, operator=operator) for reason in reasons]


def reason_for(reason: Mapping[str, Any], *, operator: bool) -> dict[str, Any]:
    code = reason["code"]
    if operator or reason.get("scope") == ReasonScope.ACCOUNT:
        return {"code": code, "message": reason["message"], "limit": reason["limit"], "value": reason["value"]}
    return {"code": code, "message": PORTFOLIO_MESSAGES.get(code, PORTFOLIO_MESSAGE), "limit": None, "value": None}


# What a bot reads when its equity report trips a portfolio-wide emergency threshold.
PORTFOLIO_BREACH_MESSAGES = {
    BreachKind.DAILY_LOSS: "the portfolio's daily loss has reached its emergency limit: trading is halted",
}
PORTFOLIO_BREACH_MESSAGE = "a portfolio emergency limit is reached: trading is halted"


def breach_message_for(breach: Breach, *, operator: bool) -> str:
    """A breach's message as the viewer may see it: an account's breach in full, a portfolio's without figures
    for a bot."""
    if operator or breach.account_id is not None:
        return breach.message
    return PORTFOLIO_BREACH_MESSAGES.get(breach.kind, PORTFOLIO_BREACH_MESSAGE)
