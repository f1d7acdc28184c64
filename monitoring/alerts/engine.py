"""Alert evaluation over plain values: rules, current states and figures in, state changes and events out.

No Django, no I/O, no clock (the time is an argument), so it is tested and benchmarked without a database.

A rule watches one figure of one scope (the portfolio, one account, or every account) and is *breached* when
`value <comparator> threshold` holds. Each rule-and-scope pair moves through these states:

- ok (no stored state): a breach starts it. With `for_seconds` = 0 it fires at once, else it is pending.
- pending: still breached `for_seconds` after the breach began, it fires (one `firing` event); a value back
  within the threshold first drops it to ok, silently.
- firing: a value back within the threshold resolves it (one `resolved` event). While it stays breached
  nothing more happens: one firing per episode.
- resolved: kept while the cooldown (counted from the last firing) runs, then dropped to ok. A breach inside the
  cooldown fires nothing; if it still holds when the cooldown ends, and has held `for_seconds`, it fires then.

A scope without a value (an account absent from the figures, a figure not computed) counts as not breached.
Only pairs that are not ok are stored, so an every-account rule over quiet accounts costs one comparison per
account and stores nothing.
"""

import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class Scope(StrEnum):
    PORTFOLIO = "portfolio"
    ACCOUNT = "account"
    EVERY_ACCOUNT = "every_account"


class Figure(StrEnum):
    """The figures a rule can watch (fractions are written as fractions: 0.05 is 5 %)."""

    EQUITY = "equity"  # USD
    DRAWDOWN_PCT = "drawdown_pct"  # (peak - equity) / peak
    DAILY_LOSS_PCT = "daily_loss_pct"  # (day start - equity) / day start; a gain is negative
    EXPOSURE_PCT = "exposure_pct"  # exposure / equity
    HEARTBEAT_AGE_S = "heartbeat_age_s"  # seconds since the bot's last request (accounts only)
    REJECTION_RATE = "rejection_rate"  # rejected checks / checks, over the aggregation's window
    PENDING_APPROVALS = "pending_approvals"  # positions waiting for an operator
    OPEN_POSITIONS = "open_positions"
    TRADING_STATE = "trading_state"  # 0 active, 1 reducing, 2 halted
    CRITICAL_EVENTS = "critical_events"  # critical risk events over the aggregation's window


class Comparator(StrEnum):
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EQ = "eq"


class Status(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class EventKind(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


COMPARE: dict[Comparator, Callable[[Decimal, Decimal], bool]] = {
    Comparator.GT: operator.gt,
    Comparator.GTE: operator.ge,
    Comparator.LT: operator.lt,
    Comparator.LTE: operator.le,
    Comparator.EQ: operator.eq,
}

# trading_state as a number, so "fires on HALTED or REDUCING" is `trading_state gte 1`.
TRADING_STATE_VALUES = {"active": Decimal(0), "reducing": Decimal(1), "halted": Decimal(2)}

LARGEST_TOTAL = Decimal("99999999999999999999.99999999")  # NUMERIC(28, 8)
TEN_YEARS_S = Decimal(10 * 366 * 86400)


@dataclass(frozen=True)
class FigureSpec:
    """What a threshold of this figure may be, and which scopes have it."""

    minimum: Decimal
    maximum: Decimal
    portfolio: bool = True


FIGURES: dict[Figure, FigureSpec] = {
    Figure.EQUITY: FigureSpec(Decimal(0), LARGEST_TOTAL),
    Figure.DRAWDOWN_PCT: FigureSpec(Decimal(0), Decimal(1)),
    Figure.DAILY_LOSS_PCT: FigureSpec(Decimal(-100), Decimal(1)),
    Figure.EXPOSURE_PCT: FigureSpec(Decimal(0), Decimal(1000)),
    Figure.HEARTBEAT_AGE_S: FigureSpec(Decimal(0), TEN_YEARS_S, portfolio=False),
    Figure.REJECTION_RATE: FigureSpec(Decimal(0), Decimal(1)),
    Figure.PENDING_APPROVALS: FigureSpec(Decimal(0), Decimal(10**9)),
    Figure.OPEN_POSITIONS: FigureSpec(Decimal(0), Decimal(10**9)),
    Figure.TRADING_STATE: FigureSpec(Decimal(0), Decimal(2)),
    Figure.CRITICAL_EVENTS: FigureSpec(Decimal(0), Decimal(10**9)),
}


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    scope: Scope
    figure: Figure
    comparator: Comparator
    threshold: Decimal
    for_seconds: int
    cooldown_seconds: int
    account_id: int | None = None  # the account of an ACCOUNT rule


@dataclass(frozen=True, slots=True)
class State:
    """A rule-and-scope pair that is not ok. `account_id` None is the portfolio; `id` None: not stored yet."""

    rule_id: int
    account_id: int | None
    status: Status
    value: Decimal | None
    breach_since: datetime | None  # when the current breach began (None: not breached now)
    fired_at: datetime | None  # the last firing (the cooldown counts from it)
    resolved_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Event:
    rule_id: int
    account_id: int | None
    kind: EventKind
    value: Decimal | None
    at: datetime
    fired_at: datetime  # the firing this event belongs to (its own time for a firing)


@dataclass(frozen=True)
class Figures:
    """The latest figures: the portfolio's by figure, and every account's by figure then account id."""

    portfolio: Mapping[str, Decimal] = field(default_factory=dict)
    accounts: Mapping[str, Mapping[int, Decimal]] = field(default_factory=dict)


@dataclass
class Evaluation:
    """What one evaluation changes: states to insert, to update and to delete, and the events it raises."""

    created: list[State] = field(default_factory=list)
    updated: list[State] = field(default_factory=list)
    deleted: list[State] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def breached(rule: Rule, value: Decimal | None) -> bool:
    return value is not None and COMPARE[rule.comparator](value, rule.threshold)


def _elapsed(since: datetime, now: datetime) -> float:
    return (now - since).total_seconds()


def _cooled(rule: Rule, state: State, now: datetime) -> bool:
    return state.fired_at is None or _elapsed(state.fired_at, now) >= rule.cooldown_seconds


def _fire(state: State, value: Decimal | None, now: datetime) -> tuple[State, Event]:
    fired = replace(state, status=Status.FIRING, value=value, fired_at=now, resolved_at=None)
    return fired, Event(state.rule_id, state.account_id, EventKind.FIRING, value, now, now)


def _while_breached(rule: Rule, state: State, value: Decimal, now: datetime) -> tuple[State, Event | None]:
    """A pending or resolved pair that is breached: fire once the breach has held and the cooldown is over."""
    since = state.breach_since or now
    cooled = _cooled(rule, state, now)
    if cooled and _elapsed(since, now) >= rule.for_seconds:
        return _fire(replace(state, breach_since=since), value, now)
    if cooled and state.status is not Status.PENDING:
        return replace(state, status=Status.PENDING, value=value, breach_since=since), None
    return (state if state.breach_since == since else replace(state, breach_since=since)), None


def _while_clear(rule: Rule, state: State, value: Decimal | None, now: datetime) -> tuple[State | None, Event | None]:
    """A pair that is no longer breached: a firing one resolves; the rest go back to ok once the cooldown is over
    (a pending pair has never fired inside a running cooldown, so it goes at once)."""
    if state.status is Status.FIRING:
        resolved = replace(state, status=Status.RESOLVED, value=value, breach_since=None, resolved_at=now)
        event = Event(state.rule_id, state.account_id, EventKind.RESOLVED, value, now, state.fired_at or now)
        return (None if _cooled(rule, resolved, now) else resolved), event
    if state.status is Status.PENDING or _cooled(rule, state, now):
        return None, None
    return (state if state.breach_since is None else replace(state, breach_since=None)), None


def step(
    rule: Rule, state: State | None, account_id: int | None, value: Decimal | None, now: datetime
) -> tuple[State | None, Event | None]:
    """The next state of one rule-and-scope pair (None: ok) and the event the move raises, if any."""
    if breached(rule, value):
        if state is None and rule.for_seconds <= 0:  # a new breach of a rule without a duration fires at once
            fired = State(rule.id, account_id, Status.FIRING, value, breach_since=now, fired_at=now)
            return fired, Event(rule.id, account_id, EventKind.FIRING, value, now, now)
        if state is None:
            state = State(rule.id, account_id, Status.PENDING, value, breach_since=now, fired_at=None)
        if state.status is Status.FIRING:
            return state, None
        return _while_breached(rule, state, value, now)  # type: ignore[arg-type]  # breached: not None
    if state is None:
        return None, None
    return _while_clear(rule, state, value, now)


def _value_of(rule: Rule, figures: Figures, account_id: int | None) -> Decimal | None:
    """The figure of one scope of `rule`; None for a scope the rule does not cover (a state left from before the
    rule was edited), which then resolves or drops."""
    if rule.scope is Scope.PORTFOLIO:
        return figures.portfolio.get(rule.figure) if account_id is None else None
    if account_id is None or (rule.scope is Scope.ACCOUNT and account_id != rule.account_id):
        return None
    return figures.accounts.get(rule.figure, {}).get(account_id)


def _pairs(
    rule: Rule, figures: Figures, states: Mapping[int | None, State]
) -> Iterable[tuple[int | None, Decimal | None]]:
    """The scopes of `rule` worth a step, with their values: the ones it covers that are breached (every account:
    one comparison each) and those with a stored state."""
    if rule.scope is Scope.EVERY_ACCOUNT:
        keys: set[int | None] = set(_breaching(figures.accounts.get(rule.figure, {}), rule.comparator, rule.threshold))
    else:
        keys = {None if rule.scope is Scope.PORTFOLIO else rule.account_id}
    keys.update(states)
    return [(account_id, _value_of(rule, figures, account_id)) for account_id in keys]


def _breaching(values: Mapping[int, Decimal], comparator: Comparator, threshold: Decimal) -> list[int]:
    """The accounts whose value breaches `comparator threshold`: the comparison written out per comparator (an
    every-account rule compares every account, 10,000 a rule; a call of `COMPARE[...]` each cost a third more)."""
    items = values.items()
    if comparator == Comparator.GT:
        return [account_id for account_id, value in items if value > threshold]
    if comparator == Comparator.GTE:
        return [account_id for account_id, value in items if value >= threshold]
    if comparator == Comparator.LT:
        return [account_id for account_id, value in items if value < threshold]
    if comparator == Comparator.LTE:
        return [account_id for account_id, value in items if value <= threshold]
    return [account_id for account_id, value in items if COMPARE[comparator](value, threshold)]


def evaluate(rules: Iterable[Rule], states: Iterable[State], figures: Figures, now: datetime) -> Evaluation:
    """Step every rule over every scope it covers. States of rules not given are left alone."""
    by_rule: dict[int, dict[int | None, State]] = defaultdict(dict)
    for state in states:
        by_rule[state.rule_id][state.account_id] = state
    result = Evaluation()
    for rule in rules:
        stored = by_rule.get(rule.id, {})
        for account_id, value in _pairs(rule, figures, stored):
            before = stored.get(account_id)
            after, event = step(rule, before, account_id, value, now)
            _collect(result, before, after, event)
    return result


def _collect(result: Evaluation, before: State | None, after: State | None, event: Event | None) -> None:
    if event is not None:
        result.events.append(event)
    if after is before:
        return
    if after is None:
        result.deleted.append(before)  # type: ignore[arg-type]  # after differs from before
    elif before is None:
        result.created.append(after)
    else:
        result.updated.append(after)
