"""Emergency thresholds at their boundary, and the latch that raises one event per breach until it clears."""

from decimal import Decimal

from risk.engine import (
    PORTFOLIO_PREFIX,
    Breach,
    BreachKind,
    account_key_prefix,
    emergency_breaches,
    latch,
)
from tests.risk.engine import factories as f

D = Decimal


def test_portfolio_daily_loss_at_the_emergency_limit_breaches_and_just_below_does_not():
    at_limit = f.portfolio(equity=D("920000"))  # 0.08 x 1000000 lost
    assert emergency_breaches(at_limit, [], f.limits()) == (
        Breach(
            key="portfolio:daily_loss",
            kind=BreachKind.DAILY_LOSS,
            account_id=None,
            limit=D("0.08"),
            value=D("0.08000000"),
            message="portfolio daily loss 80000 (0.08000000 of day start equity 1000000)"
            " has reached the emergency limit 0.08",
        ),
    )
    assert emergency_breaches(f.portfolio(equity=D("920000.00000001")), [], f.limits()) == ()


def test_account_drawdown_at_the_emergency_limit_breaches_and_just_below_does_not():
    accounts = [f.account(account_id=7, equity=D("75000")), f.account(account_id=8, equity=D("75000.00000001"))]
    (breach,) = emergency_breaches(f.portfolio(), accounts, f.limits())
    assert (breach.key, breach.kind, breach.account_id, breach.limit, breach.value) == (
        "account:7:drawdown",
        BreachKind.DRAWDOWN,
        7,
        D("0.25"),
        D("0.25000000"),
    )


def test_an_accounts_override_sets_its_own_emergency_drawdown():
    accounts = [f.account(account_id=7, equity=D("85000")), f.account(account_id=8, equity=D("85000"))]
    overrides = {8: f.limits(emergency_drawdown_pct=D("0.15"))}
    breaches = emergency_breaches(f.portfolio(), accounts, f.limits(), overrides)
    assert [b.key for b in breaches] == ["account:8:drawdown"]


def test_no_baseline_means_no_breach():
    empty = f.portfolio(equity=D("0"), day_start_equity=D("0"))
    fresh = f.account(equity=D("0"), peak_equity=D("0"))
    assert emergency_breaches(empty, [fresh], f.limits()) == ()


def test_the_latch_raises_a_breach_once_and_clears_it_when_it_is_gone():
    loss = emergency_breaches(f.portfolio(equity=D("900000")), [f.account(equity=D("50000"))], f.limits())
    new, cleared = latch(frozenset(), loss)
    assert ([b.key for b in new], cleared) == (["portfolio:daily_loss", "account:42:drawdown"], frozenset())
    stored = frozenset(b.key for b in loss)
    assert latch(stored, loss) == ((), frozenset())  # the same breaches again: nothing new
    recovered = emergency_breaches(f.portfolio(equity=D("900000")), [f.account()], f.limits())
    assert latch(stored, recovered) == ((), frozenset({"account:42:drawdown"}))


def test_the_latch_clears_only_keys_within_the_evaluated_scope():
    stored = frozenset({"portfolio:daily_loss", "account:7:drawdown", "account:42:drawdown"})
    scope = (PORTFOLIO_PREFIX, account_key_prefix(42))
    assert latch(stored, [], scope_prefixes=scope) == ((), frozenset({"portfolio:daily_loss", "account:42:drawdown"}))
    assert account_key_prefix(4) == "account:4:"  # never a prefix of account 42's keys
