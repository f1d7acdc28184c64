"""Reads: every account's figures computed by PostgreSQL, as one annotated queryset.

The same queryset serves the aggregation (counts, the accounts nearest their limits, the largest ones: a fixed
number of queries whatever the number of accounts) and `/api/accounts` (filtered, sorted and paginated in SQL).
Figures, per account, from its row and the limits in force (its override, else the portfolio default; an override
of `max_daily_loss_pct` counts only where stricter, as the check applies it):

- `daily_pnl` = equity - start-of-day equity, as of today (before the day's roll, today's start is the equity);
- `drawdown` = (high-water mark - equity) / high-water mark, the mark being max(peak, equity);
- `equity_stale`: no equity report yet, or the last one older than the account's equity_max_age;
- `heartbeat_stale`: the heartbeat watchdog marked the bot silent past its heartbeat_timeout (monitoring.watchdog);
- `stale`: either of them (what the desk counts, filters and badges as stale);
- `usage_<limit>` for each account limit (value / limit, 1 = reached), as the check counts it (booked exposure and
  the counters): account exposure (X_a / pct x E_a), open positions (count / the user's maximum), daily loss
  (loss / the smaller of the user's amount and pct x start of day), drawdown and emergency drawdown
  ((peak - E_a) / pct x peak). A zero limit (no equity to take a fraction of) with something used counts as
  `ZERO_LIMIT_USAGE` (breached; shown as a null usage); nothing used against no baseline (no peak, no start of
  day) is null. `worst_usage` is the largest of them.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import BooleanField, Case, DecimalField, ExpressionWrapper, F, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Coalesce, Greatest, Least
from django.db.models.lookups import GreaterThan, IsNull

from accounts.models import TradingInstance
from risk.engine import Limits, TradingMode

# Sorts above every real usage and counts as breached; rendered as a null usage (PostgreSQL's numeric infinity
# comes back through psycopg2 as NaN).
ZERO_LIMIT_USAGE = Decimal(10**9)
ACCOUNT_LIMITS = ("account_exposure", "max_open_positions", "daily_loss_limit", "drawdown_limit", "emergency_drawdown")
NUMBER = DecimalField(max_digits=40, decimal_places=20)
ZERO = Value(Decimal(0), output_field=NUMBER)


def usage_field(limit: str) -> str:
    return f"usage_{limit}"


def _number(value: Decimal | int) -> Value:
    return Value(Decimal(value), output_field=NUMBER)


def _in_force(name: str, default: Decimal | int) -> Coalesce:
    """The account's override of the limit `name`, else the portfolio default."""
    return Coalesce(F(f"risk_limits__{name}"), _number(default), output_field=NUMBER)


def _usage(value: object, limit: object) -> Case:
    """value / limit, where a negative value (a gain against a loss limit) uses nothing; null without a limit.
    Both as NUMERIC: a count over a count would be PostgreSQL's integer division."""
    used = Greatest(Cast(value, NUMBER), ZERO, output_field=NUMBER)
    limit = Cast(limit, NUMBER)
    return Case(
        When(IsNull(limit, True), then=None),
        When(GreaterThan(limit, ZERO), then=used / limit),
        When(GreaterThan(used, ZERO), then=_number(ZERO_LIMIT_USAGE)),
        default=None,
        output_field=NUMBER,
    )


def counted_in_portfolio() -> Q:
    """The accounts whose equity makes up the portfolio's (the risk app's flag: active, fresh), so the portfolio
    drawdown compares the same accounts' equity and high-water marks."""
    return Q(equity_counted=True)


def stale_condition(*, now: datetime, equity_max_age_seconds: int) -> Q:
    """No equity report yet, or the last one older than the account's equity_max_age (the equity half of `stale`; the
    watchdog's mark is the other). A condition rather than
    only the `stale` annotation: Django renders an aggregate's filter on a boolean annotation as a reference to
    its alias, which PostgreSQL refuses."""
    oldest_fresh = Value(now) - _in_force("equity_max_age_seconds", equity_max_age_seconds) * timedelta(seconds=1)
    return Q(equity_reported_at__isnull=True) | Q(equity_reported_at__lt=oldest_fresh)


def account_figures(*, now: datetime, limits: Limits, equity_max_age_seconds: int) -> QuerySet[TradingInstance]:
    """Every account with its figures (see the module docstring) as annotations, unordered. `limits` and
    `equity_max_age_seconds` are the portfolio defaults."""
    day_start = Case(When(day_start_date=now.date(), then=F("day_start_equity")), default=F("equity"))
    high_water = Greatest(F("peak_equity"), F("equity"))
    fall = F("peak_equity") - F("equity")
    daily_loss_pct = Least(_in_force("max_daily_loss_pct", limits.max_daily_loss_pct), limits.max_daily_loss_pct)
    user_daily_loss = F("user__trading_permission__max_daily_loss")
    figures = TradingInstance.objects.annotate(
        state=Coalesce(F("trading_state__state"), Value(TradingMode.ACTIVE.value)),
        today_start_equity=day_start,
        high_water=high_water,
        daily_pnl=F("equity") - day_start,
        drawdown=Case(When(GreaterThan(high_water, ZERO), then=(high_water - F("equity")) / high_water), default=ZERO),
        equity_stale=ExpressionWrapper(
            stale_condition(now=now, equity_max_age_seconds=equity_max_age_seconds), output_field=BooleanField()
        ),
        heartbeat_stale=ExpressionWrapper(Q(heartbeat_lost_at__isnull=False), output_field=BooleanField()),
        stale=ExpressionWrapper(
            stale_condition(now=now, equity_max_age_seconds=equity_max_age_seconds)
            | Q(heartbeat_lost_at__isnull=False),
            output_field=BooleanField(),
        ),
    )
    usages = {
        "account_exposure": _usage(
            F("exposure"), _in_force("max_account_exposure_pct", limits.max_account_exposure_pct) * F("equity")
        ),
        "max_open_positions": _usage(F("position_count"), F("user__trading_permission__max_open_positions")),
        "daily_loss_limit": _usage(day_start - F("equity"), Least(user_daily_loss, daily_loss_pct * day_start)),
        "drawdown_limit": _usage(fall, _in_force("max_drawdown_pct", limits.max_drawdown_pct) * F("peak_equity")),
        "emergency_drawdown": _usage(
            fall, _in_force("emergency_drawdown_pct", limits.emergency_drawdown_pct) * F("peak_equity")
        ),
    }
    figures = figures.annotate(**{usage_field(limit): usage for limit, usage in usages.items()})
    return figures.annotate(
        worst_usage=Greatest(*(F(usage_field(limit)) for limit in ACCOUNT_LIMITS), output_field=NUMBER)
    )
