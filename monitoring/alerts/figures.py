"""The figures alert rules watch, read from PostgreSQL in a fixed number of queries whatever the number of
accounts and positions (six: the active accounts with their trading states, the portfolio row and state, positions
waiting or open by account, recent checks by account, recent critical events by account), and the bots' last
requests from Redis in one round trip (accounts.liveness).

Per active account, and for the portfolio (fractions as fractions, 8 decimals):
- `equity`; `drawdown_pct` = (high-water mark - equity) / high-water mark, the mark being max(peak, equity) (the
  portfolio's over the sums of the accounts counted in its equity: fresh reports only);
  `daily_loss_pct` = (start of day - equity) / start of day, the start of day as of today (before the day's roll,
  the equity itself), a gain being negative;
  `exposure_pct` = exposure / equity (none without equity);
- `heartbeat_age_s`: seconds since the bot's last authenticated request, the heartbeat watchdog's liveness (the
  later of what Redis recorded and what PostgreSQL knows; accounts only; none for a bot never heard from);
- `trading_state`: 0 active, 1 reducing, 2 halted (the account's own state; the portfolio's);
- `pending_approvals`, `open_positions`: positions waiting for an operator, positions open;
- `rejection_rate`: rejected checks over recorded checks within ALERT_FIGURE_WINDOW_SECONDS (none without checks);
- `critical_events`: critical risk events within that window (the portfolio counts every one).
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.db.models import Count, Q

from accounts.liveness import last_seen_or_empty
from accounts.models import TradingInstance
from monitoring.alerts.engine import TRADING_STATE_VALUES, Figure, Figures
from risk.models import Portfolio, RiskEvent, Severity, TradingState
from trading.models import Position, PositionStatus

EIGHT_PLACES = Decimal("0.00000001")
ZERO = Decimal(0)


def _fraction(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if denominator <= 0:
        return None
    return (numerator / denominator).quantize(EIGHT_PLACES, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Balance:
    """What the money figures of one account (or of the portfolio) rest on."""

    equity: Decimal
    high_water: Decimal
    day_start: Decimal
    exposure: Decimal

    def figures(self) -> dict[str, Decimal | None]:
        return {
            Figure.EQUITY: self.equity,
            Figure.DRAWDOWN_PCT: _fraction(self.high_water - self.equity, self.high_water) or ZERO,
            Figure.DAILY_LOSS_PCT: _fraction(self.day_start - self.equity, self.day_start) or ZERO,
            Figure.EXPOSURE_PCT: _fraction(self.exposure, self.equity),
        }


def alert_figures(*, now: datetime) -> Figures:
    """Every figure of every active account and of the portfolio at `now` (see the module docstring)."""
    window_start = now - timedelta(seconds=settings.ALERT_FIGURE_WINDOW_SECONDS)
    accounts: dict[str, dict[int, Decimal]] = defaultdict(dict)
    equity = high_water = ZERO
    for pk, balance, heartbeat, state, counted in _account_rows(now=now):
        for figure, value in balance.figures().items():
            if value is not None:
                accounts[figure][pk] = value
        if heartbeat is not None:
            accounts[Figure.HEARTBEAT_AGE_S][pk] = Decimal(int((now - heartbeat).total_seconds()))
        accounts[Figure.TRADING_STATE][pk] = TRADING_STATE_VALUES.get(state or "active", ZERO)
        if counted:  # the accounts whose equity makes up the portfolio's
            equity, high_water = equity + balance.equity, high_water + balance.high_water
    active = set(accounts[Figure.TRADING_STATE])
    counts = _counts(accounts, active, window_start=window_start)
    drawdown = _fraction(high_water - equity, high_water)
    return Figures(portfolio=_portfolio(counts, drawdown, now=now), accounts=dict(accounts))


def _account_rows(*, now: datetime) -> list[tuple[int, Balance, datetime | None, str | None, bool]]:
    rows = TradingInstance.objects.filter(is_active=True).values_list(
        "pk",
        "equity",
        "peak_equity",
        "day_start_equity",
        "day_start_date",
        "exposure",
        "last_heartbeat",
        "trading_state__state",
        "equity_counted",
    )
    rows = list(rows)
    seen = last_seen_or_empty(row[0] for row in rows)
    today = now.date()
    return [
        (
            pk,
            Balance(equity, max(peak, equity), start if day == today else equity, exposure),
            max(filter(None, (heartbeat, seen.get(pk))), default=None),
            state,
            counted,
        )
        for pk, equity, peak, start, day, exposure, heartbeat, state, counted in rows
    ]


def _counts(accounts: dict[str, dict[int, Decimal]], active: set[int], *, window_start: datetime) -> dict[str, int]:
    """Fill the per-account counts and rates of active accounts; return the portfolio's totals."""
    totals: Counter[str] = Counter()
    waiting = Q(status=PositionStatus.PENDING_APPROVAL)
    held = Position.objects.filter(waiting | Q(status=PositionStatus.OPEN)).values("instance_id")
    for row in held.annotate(pending=Count("pk", filter=waiting), open=Count("pk", filter=~waiting)):
        totals.update(pending=row["pending"], open=row["open"])
        if row["instance_id"] in active:
            accounts[Figure.PENDING_APPROVALS][row["instance_id"]] = Decimal(row["pending"])
            accounts[Figure.OPEN_POSITIONS][row["instance_id"]] = Decimal(row["open"])
    rejected = Q(status=PositionStatus.REJECTED)
    checks = Position.objects.filter(created_at__gte=window_start).values("instance_id")
    for row in checks.annotate(checks=Count("pk"), rejected=Count("pk", filter=rejected)):
        totals.update(checks=row["checks"], rejected=row["rejected"])
        if row["instance_id"] in active:
            rate = _fraction(Decimal(row["rejected"]), Decimal(row["checks"]))
            accounts[Figure.REJECTION_RATE][row["instance_id"]] = rate  # type: ignore[assignment]  # checks > 0
    critical = RiskEvent.objects.filter(severity=Severity.CRITICAL, created_at__gte=window_start)
    for row in critical.values("instance_id").annotate(events=Count("pk")):
        totals.update(critical=row["events"])
        if row["instance_id"] in active:
            accounts[Figure.CRITICAL_EVENTS][row["instance_id"]] = Decimal(row["events"])
    for figure in (Figure.PENDING_APPROVALS, Figure.OPEN_POSITIONS, Figure.CRITICAL_EVENTS):
        for pk in active - accounts[figure].keys():
            accounts[figure][pk] = ZERO
    return totals


def _portfolio(counts: dict[str, int], drawdown: Decimal | None, *, now: datetime) -> dict[str, Decimal]:
    """The portfolio's figures: its own counters and state, the accounts' drawdown and the counts' totals."""
    portfolio = Portfolio.objects.get(pk=Portfolio.SINGLETON_ID)
    state = TradingState.objects.filter(instance__isnull=True).values_list("state", flat=True).first()
    day_start = portfolio.day_start_equity if portfolio.day_start_date == now.date() else portfolio.equity
    money = Balance(portfolio.equity, ZERO, day_start, portfolio.exposure).figures()
    money[Figure.DRAWDOWN_PCT] = drawdown
    figures = {
        **money,
        Figure.TRADING_STATE: TRADING_STATE_VALUES.get(state or "active", ZERO),
        Figure.PENDING_APPROVALS: Decimal(counts["pending"]),
        Figure.OPEN_POSITIONS: Decimal(counts["open"]),
        Figure.CRITICAL_EVENTS: Decimal(counts["critical"]),
        Figure.REJECTION_RATE: _fraction(Decimal(counts["rejected"]), Decimal(counts["checks"])),
    }
    return {figure: value for figure, value in figures.items() if value is not None}
