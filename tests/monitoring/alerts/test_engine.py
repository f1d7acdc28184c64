"""The evaluation engine over plain values: durations, cooldowns, one firing per episode, resolutions, scopes."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from monitoring.alerts.engine import (
    Comparator,
    EventKind,
    Figure,
    Figures,
    Rule,
    Scope,
    State,
    Status,
    evaluate,
)

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def drawdown_rule(**overrides: object) -> Rule:
    values = {
        "id": 1,
        "scope": Scope.ACCOUNT,
        "figure": Figure.DRAWDOWN_PCT,
        "comparator": Comparator.GTE,
        "threshold": Decimal("0.10"),
        "for_seconds": 60,
        "cooldown_seconds": 300,
        "account_id": 7,
    } | overrides
    return Rule(**values)


def account_figures(figure: str, values: dict[int, str]) -> Figures:
    return Figures(accounts={figure: {account: Decimal(value) for account, value in values.items()}})


class Run:
    """Feeds an evaluation its own output back, as the service does with the stored states."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = rules
        self.states: dict[tuple[int, int | None], State] = {}
        self.events: list = []

    def at(self, seconds: float, figures: Figures) -> list:
        result = evaluate(self.rules, list(self.states.values()), figures, at(seconds))
        for state in result.deleted:
            del self.states[(state.rule_id, state.account_id)]
        for state in [*result.created, *result.updated]:
            self.states[(state.rule_id, state.account_id)] = state
        self.events.extend(result.events)
        return [(event.kind, event.account_id) for event in result.events]

    def status(self, account_id: int | None = 7) -> Status | None:
        state = self.states.get((self.rules[0].id, account_id))
        return None if state is None else state.status


def drawdown(value: str, account: int = 7) -> Figures:
    return account_figures("drawdown_pct", {account: value})


def test_a_breach_fires_only_after_it_has_held_for_its_duration():
    run = Run(drawdown_rule())

    assert run.at(0, drawdown("0.12")) == []
    assert run.status() == Status.PENDING
    assert run.at(59, drawdown("0.15")) == []
    assert run.at(60, drawdown("0.11")) == [(EventKind.FIRING, 7)]
    assert run.status() == Status.FIRING
    assert run.events[0].value == Decimal("0.11")


def test_a_breach_that_clears_before_its_duration_fires_nothing_and_stores_nothing():
    run = Run(drawdown_rule())

    run.at(0, drawdown("0.12"))
    assert run.at(30, drawdown("0.09")) == []
    assert run.states == {}
    assert run.at(70, drawdown("0.12")) == []  # a new breach: its duration starts again
    assert run.at(129, drawdown("0.12")) == []
    assert run.at(130, drawdown("0.12")) == [(EventKind.FIRING, 7)]


def test_one_firing_per_episode_and_the_resolution_notifies():
    run = Run(drawdown_rule(for_seconds=0))

    assert run.at(0, drawdown("0.12")) == [(EventKind.FIRING, 7)]
    for second in range(5, 100, 5):
        assert run.at(second, drawdown("0.20")) == []
    assert run.at(100, drawdown("0.05")) == [(EventKind.RESOLVED, 7)]
    resolved = run.events[-1]
    assert (resolved.value, resolved.at, resolved.fired_at) == (Decimal("0.05"), at(100), at(0))


def test_a_second_breach_inside_the_cooldown_fires_nothing():
    run = Run(drawdown_rule(for_seconds=0, cooldown_seconds=300))

    run.at(0, drawdown("0.12"))
    run.at(10, drawdown("0.05"))
    assert run.status() == Status.RESOLVED  # kept while the cooldown runs
    assert run.at(20, drawdown("0.12")) == []
    assert run.at(40, drawdown("0.05")) == []
    assert run.at(299, drawdown("0.05")) == []
    assert run.at(300, drawdown("0.05")) == []
    assert run.states == {}  # back to ok once the cooldown is over
    assert run.at(310, drawdown("0.12")) == [(EventKind.FIRING, 7)]


def test_a_breach_still_holding_when_the_cooldown_ends_fires_then():
    run = Run(drawdown_rule(for_seconds=60, cooldown_seconds=300))

    run.at(0, drawdown("0.12"))
    run.at(60, drawdown("0.12"))  # fires
    run.at(70, drawdown("0.05"))  # resolves
    assert run.at(100, drawdown("0.12")) == []  # breach starts inside the cooldown
    assert run.at(359, drawdown("0.12")) == []
    assert run.at(360, drawdown("0.12")) == [(EventKind.FIRING, 7)]  # held 260 s >= 60 s, cooldown over


def test_a_breach_left_inside_the_cooldown_still_needs_its_duration_after_it():
    run = Run(drawdown_rule(for_seconds=60, cooldown_seconds=300))

    run.at(0, drawdown("0.12"))
    run.at(60, drawdown("0.12"))
    run.at(70, drawdown("0.05"))
    assert run.at(340, drawdown("0.12")) == []  # starts 20 s before the cooldown ends
    assert run.at(360, drawdown("0.12")) == []
    assert run.status() == Status.PENDING
    assert run.at(399, drawdown("0.12")) == []
    assert run.at(400, drawdown("0.12")) == [(EventKind.FIRING, 7)]


def test_without_cooldown_the_resolved_pair_goes_back_to_ok_at_once():
    run = Run(drawdown_rule(for_seconds=0, cooldown_seconds=0))

    run.at(0, drawdown("0.12"))
    assert run.at(1, drawdown("0.01")) == [(EventKind.RESOLVED, 7)]
    assert run.states == {}
    assert run.at(2, drawdown("0.12")) == [(EventKind.FIRING, 7)]


def test_an_account_missing_from_the_figures_counts_as_not_breached():
    run = Run(drawdown_rule(for_seconds=0))

    run.at(0, drawdown("0.12"))
    assert run.at(5, Figures()) == [(EventKind.RESOLVED, 7)]
    assert run.events[-1].value is None


def test_every_comparator():
    cases = [
        (Comparator.GT, "0.10", False),
        (Comparator.GT, "0.11", True),
        (Comparator.GTE, "0.10", True),
        (Comparator.LT, "0.10", False),
        (Comparator.LT, "0.09", True),
        (Comparator.LTE, "0.10", True),
        (Comparator.EQ, "0.10", True),
        (Comparator.EQ, "0.1000001", False),
    ]
    for comparator, value, fires in cases:
        run = Run(drawdown_rule(comparator=comparator, for_seconds=0))
        assert bool(run.at(0, drawdown(value))) is fires, (comparator, value)


def test_every_account_rule_over_quiet_accounts_stores_nothing():
    rule = drawdown_rule(scope=Scope.EVERY_ACCOUNT, account_id=None, for_seconds=0)
    quiet = {account: "0.01" for account in range(1, 10_001)}

    result = evaluate([rule], [], account_figures("drawdown_pct", quiet), T0)

    assert (result.created, result.updated, result.deleted, result.events) == ([], [], [], [])


def test_every_account_rule_fires_and_resolves_per_account():
    run = Run(drawdown_rule(scope=Scope.EVERY_ACCOUNT, account_id=None, for_seconds=0))
    figures = {account: "0.01" for account in range(1, 101)}

    assert sorted(run.at(0, account_figures("drawdown_pct", figures | {3: "0.2", 50: "0.3"}))) == [
        (EventKind.FIRING, 3),
        (EventKind.FIRING, 50),
    ]
    assert run.at(5, account_figures("drawdown_pct", figures | {3: "0.2", 50: "0.3"})) == []
    assert run.at(10, account_figures("drawdown_pct", figures | {3: "0.2"})) == [(EventKind.RESOLVED, 50)]
    assert set(run.states) == {(1, 3), (1, 50)}  # 50 stays as resolved while its cooldown runs


def test_portfolio_rule_on_the_trading_state_fires_on_halt_or_reduce():
    rule = Rule(2, Scope.PORTFOLIO, Figure.TRADING_STATE, Comparator.GTE, Decimal(1), 0, 0)
    run = Run(rule)

    assert run.at(0, Figures(portfolio={"trading_state": Decimal(0)})) == []
    assert run.at(5, Figures(portfolio={"trading_state": Decimal(1)})) == [(EventKind.FIRING, None)]
    assert run.at(10, Figures(portfolio={"trading_state": Decimal(2)})) == []
    assert run.at(15, Figures(portfolio={"trading_state": Decimal(0)})) == [(EventKind.RESOLVED, None)]


def test_a_state_left_from_another_account_after_an_edit_resolves():
    firing = State(1, 9, Status.FIRING, Decimal("0.2"), breach_since=T0, fired_at=T0)
    rule = drawdown_rule(for_seconds=0, account_id=7)  # the rule now watches account 7

    result = evaluate([rule], [firing], drawdown("0.2", account=9), at(5))

    assert [(event.kind, event.account_id) for event in result.events] == [(EventKind.RESOLVED, 9)]


def test_states_of_rules_not_given_are_left_alone():
    other = State(99, 7, Status.FIRING, Decimal("0.2"), breach_since=T0, fired_at=T0)

    result = evaluate([drawdown_rule()], [other], drawdown("0.01"), at(5))

    assert (result.created, result.updated, result.deleted, result.events) == ([], [], [], [])


def test_a_quiet_firing_pair_is_not_rewritten_on_every_run():
    run = Run(drawdown_rule(for_seconds=0))
    run.at(0, drawdown("0.12"))

    result = evaluate(run.rules, list(run.states.values()), drawdown("0.2"), at(5))

    assert (result.created, result.updated, result.deleted) == ([], [], [])
