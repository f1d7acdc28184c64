"""The response shapes of the monitoring endpoints, for the OpenAPI schema (drf-spectacular).

The snapshot-based endpoints answer the cached JSON as it is (amounts and ratios as strings with 8 decimals,
counts as integers); these serializers describe it. The account endpoints render through them.
"""

from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers

AMOUNT = {"allow_null": False, "help_text": "A decimal string with 8 decimals."}
NULLABLE = {"allow_null": True, "help_text": "A decimal string with 8 decimals, or null when undefined."}


def amount(**extra: object) -> serializers.CharField:
    return serializers.CharField(**(AMOUNT | extra))


def ratio(**extra: object) -> serializers.CharField:
    return serializers.CharField(**(NULLABLE | extra))


class SnapshotAge(serializers.Serializer):
    computed_at = serializers.DateTimeField()
    age_seconds = serializers.FloatField()
    stale = serializers.BooleanField(help_text="Older than three aggregation intervals: the aggregation is behind.")
    interval_seconds = serializers.IntegerField()
    duration_ms = serializers.FloatField(help_text="How long the aggregation run took.")


class TradeStats(serializers.Serializer):
    closed = serializers.IntegerField(help_text="Closed trades (a partial close is one).")
    wins = serializers.IntegerField()
    win_rate = ratio(help_text="wins / closed trades; null without trades.")
    gross_profit = amount()
    gross_loss = amount(help_text="A positive amount.")
    profit_factor = ratio(help_text="gross profit / gross loss; null without a loss.")


class PositionCounts(serializers.Serializer):
    total = serializers.IntegerField()
    pending_approval = serializers.IntegerField()
    approved = serializers.IntegerField()
    open = serializers.IntegerField()


class PortfolioFigures(serializers.Serializer):
    state = serializers.ChoiceField(choices=["active", "reducing", "halted"])
    equity = amount(help_text="Portfolio equity: the accounts counted in it.")
    day_start_equity = amount()
    daily_pnl = amount()
    daily_pnl_pct = ratio()
    peak_equity = amount(help_text="Sum of the counted accounts' high-water marks.")
    drawdown = amount(help_text="(peak_equity - their equity) / peak_equity.")
    exposure = amount(help_text="Booked exposure: what the limits count.")
    market_exposure = amount(help_text="The same positions at the cached marks.")
    exposure_pct = ratio(help_text="market_exposure / equity.")
    unrealized_pnl = amount()
    positions = PositionCounts()
    trades = TradeStats()


class SymbolConcentration(serializers.Serializer):
    symbol = serializers.CharField()
    mark = ratio(help_text="The cached mark; null when none is fresh (the booked value is used).")
    exposure = amount()
    market_exposure = amount()
    unrealized_pnl = amount()
    pct = ratio(help_text="market_exposure / portfolio equity.")
    positions = serializers.IntegerField()


class GroupConcentration(serializers.Serializer):
    group = serializers.CharField()
    symbols = serializers.ListField(child=serializers.CharField())
    exposure = amount()
    market_exposure = amount()
    pct = ratio()
    limit_pct = amount()


class Concentration(serializers.Serializer):
    by_symbol = SymbolConcentration(many=True)
    by_group = GroupConcentration(many=True)


class PortfolioLimitUsage(serializers.Serializer):
    limit = serializers.CharField(help_text="The rule's code, or emergency_daily_loss.")
    subject = serializers.CharField(allow_null=True, help_text="The symbol or correlation group, if any.")
    value = amount()
    limit_value = amount()
    usage = ratio(help_text="value / limit_value (1 = reached); null for a zero limit.")
    status = serializers.ChoiceField(choices=["ok", "near", "breached"])


class AccountLimitUsage(serializers.Serializer):
    limit = serializers.ChoiceField(
        choices=["account_exposure", "max_open_positions", "daily_loss_limit", "drawdown_limit", "emergency_drawdown"]
    )
    usage = ratio(help_text="null when the limit is zero and something is held (breached without a figure).")
    status = serializers.ChoiceField(choices=["ok", "near", "breached"])


class AccountNearLimits(serializers.Serializer):
    account_id = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.CharField()
    limits = AccountLimitUsage(many=True)


class LimitsSection(serializers.Serializer):
    near_threshold = amount()
    portfolio = PortfolioLimitUsage(many=True)
    accounts = AccountNearLimits(many=True, help_text="Active accounts nearest their limits, worst first.")


class LimitCounts(serializers.Serializer):
    near = serializers.IntegerField()
    breached = serializers.IntegerField()


class AccountsSummary(serializers.Serializer):
    total = serializers.IntegerField()
    active = serializers.IntegerField()
    stale = serializers.IntegerField(
        help_text="Active accounts without a fresh equity report, or whose bot is silent past its heartbeat_timeout."
    )
    halted = serializers.IntegerField()
    reducing = serializers.IntegerField()
    near_limit = serializers.IntegerField()
    past_limit = serializers.IntegerField()
    by_limit = serializers.DictField(child=LimitCounts())


class LargestAccount(serializers.Serializer):
    account_id = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.CharField()
    equity = amount()
    exposure = amount(help_text="Booked exposure.")
    exposure_pct = ratio(help_text="Booked exposure / equity.")
    drawdown = amount()
    daily_pnl = amount()
    worst_usage = ratio()


class CounterDrift(serializers.Serializer):
    counter = serializers.CharField()
    exposure = amount()
    positions_exposure = amount()
    count = serializers.IntegerField(allow_null=True)
    positions_count = serializers.IntegerField(allow_null=True)


class Counters(serializers.Serializer):
    consistent = serializers.BooleanField()
    drift = CounterDrift(many=True)


class EmergencyPass(serializers.Serializer):
    evaluated = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)
    tripped = serializers.ListField(child=serializers.CharField())
    cleared = serializers.ListField(child=serializers.CharField())


class PortfolioMetricsOutput(serializers.Serializer):
    snapshot = SnapshotAge()
    portfolio = PortfolioFigures()
    concentration = Concentration()
    limits = PortfolioLimitUsage(many=True)


class TradingStates(serializers.Serializer):
    portfolio = serializers.DictField()
    accounts = serializers.ListField(child=serializers.DictField(), help_text="Accounts not ACTIVE (at most 100).")
    accounts_not_active = serializers.IntegerField()


class OverviewOutput(serializers.Serializer):
    snapshot = SnapshotAge()
    portfolio = PortfolioFigures()
    concentration = Concentration()
    limits = LimitsSection()
    accounts = AccountsSummary()
    largest_accounts = LargestAccount(many=True)
    counters = Counters()
    emergency = EmergencyPass()
    risk_events = serializers.ListField(child=serializers.DictField(), help_text="The 20 newest risk events.")
    trading_states = TradingStates()
    health = serializers.DictField(help_text="PostgreSQL, Redis and the Celery broker: status and latency.")


class HistoryPoint(serializers.Serializer):
    time = serializers.DateTimeField(help_text="The minute of the bucket's last snapshot.")
    equity = amount()
    day_start_equity = amount()
    daily_pnl = amount()
    peak_equity = amount()
    drawdown = amount()
    exposure = amount()
    market_exposure = amount()
    exposure_pct = ratio()
    unrealized_pnl = amount()
    position_count = serializers.IntegerField()
    account_count = serializers.IntegerField()
    stale_account_count = serializers.IntegerField()


class HistoryOutput(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    bucket_seconds = serializers.IntegerField()
    count = serializers.IntegerField()
    points = HistoryPoint(many=True)


class HeldEquity(serializers.Serializer):
    equity = amount(help_text="The latest held figure: what a confirmation applies.")
    accepted_equity = amount(help_text="The figure the increase was measured against.")
    reports = serializers.IntegerField(help_text="Held reports merged into this hold.")
    first_reported_at = serializers.DateTimeField()
    reported_at = serializers.DateTimeField()


class AccountOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    username = serializers.CharField()
    is_active = serializers.BooleanField()
    status = serializers.CharField()
    state = serializers.ChoiceField(choices=["active", "reducing", "halted"])
    equity = amount()
    peak_equity = amount()
    day_start_equity = amount(help_text="As of today (before the day's roll: the equity).")
    daily_pnl = amount()
    daily_pnl_pct = ratio()
    drawdown = amount()
    exposure = amount(help_text="Booked exposure: what the limits count.")
    market_exposure = amount()
    exposure_pct = ratio(help_text="market_exposure / equity.")
    unrealized_pnl = amount()
    position_count = serializers.IntegerField()
    trades = TradeStats()
    stale = serializers.BooleanField(help_text="equity_stale or heartbeat_stale.")
    equity_stale = serializers.BooleanField(help_text="No equity report within the account's equity_max_age.")
    heartbeat_stale = serializers.BooleanField(
        help_text=(
            "The heartbeat watchdog found the bot silent past its heartbeat_timeout (its unfilled reservations were "
            "released); its next request clears it."
        )
    )
    equity_reported_at = serializers.DateTimeField(allow_null=True)
    last_heartbeat = serializers.DateTimeField(
        allow_null=True, help_text="The bot's last authenticated request (any request is a heartbeat)."
    )
    heartbeat_age_s = serializers.IntegerField(allow_null=True, help_text="Seconds since last_heartbeat.")
    heartbeat_lost_at = serializers.DateTimeField(
        allow_null=True, help_text="When the watchdog marked the bot silent; null while it is heard from."
    )
    worst_usage = ratio()
    limits = AccountLimitUsage(many=True)
    equity_hold = HeldEquity(
        allow_null=True, help_text="A reported increase held until a risk admin confirms it; null without one."
    )


class AccountDetailOutput(AccountOutput):
    by_symbol = SymbolConcentration(many=True)


def paginated(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The list shape `{count, next, previous, results}` around `item`."""
    fields = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
    }
    return type(name, (serializers.Serializer,), fields)


AccountListOutput = paginated("AccountListOutput", AccountOutput)


class PeriodicTaskRun(serializers.Serializer):
    name = serializers.CharField()
    task = serializers.CharField()
    enabled = serializers.BooleanField()
    every_seconds = serializers.IntegerField(allow_null=True)
    last_sent_at = serializers.DateTimeField(allow_null=True, help_text="When beat last sent it.")
    total_run_count = serializers.IntegerField()
    last_finished_at = serializers.DateTimeField(allow_null=True, help_text="When a worker last finished it.")
    last_duration_ms = serializers.FloatField(allow_null=True)
    last_outcome = serializers.CharField(allow_null=True)


class SystemHealthOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    checked_at = serializers.DateTimeField()
    components = serializers.DictField(help_text="database, redis, celery: status, latency_ms, error.")
    host = serializers.DictField(help_text="cpu, memory, disk, load.")
    celery = serializers.DictField(help_text="queue_depth by queue (null: the broker did not answer).")
    periodic_tasks = PeriodicTaskRun(many=True)
    snapshot = serializers.DictField(help_text="The desk snapshot's time and age (null without one).")
    dropped = serializers.DictField(help_text="Log lines and events dropped, unlimited checks (this process).")


class CorrelationAccount(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(allow_null=True)


class CorrelationOutput(serializers.Serializer):
    computed_at = serializers.DateTimeField()
    age_seconds = serializers.FloatField()
    window = serializers.DictField()
    accounts = CorrelationAccount(many=True)
    coefficients = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="Square, in the accounts' order; null below min_days common days.",
    )
    days = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))


class TailRiskFigure(serializers.Serializer):
    confidence = amount()
    days = serializers.IntegerField()
    tail_days = serializers.IntegerField()
    value_at_risk = ratio(help_text="A loss amount (negative: even those days made money); null below 20 days.")
    expected_shortfall = ratio()
    enough_history = serializers.BooleanField()


class RiskAnalyticsOutput(serializers.Serializer):
    computed_at = serializers.DateTimeField()
    age_seconds = serializers.FloatField()
    window = serializers.DictField()
    days = serializers.IntegerField()
    horizon_days = serializers.IntegerField()
    method = serializers.CharField()
    figures = TailRiskFigure(many=True)


class AuditEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_username", help_text="Username; empty for the system.")
    action = serializers.CharField()
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    reason = serializers.CharField()
    request_id = serializers.CharField()


AuditListOutput = paginated("AuditListOutput", AuditEntryOutput)


# ---------------------------------------------------------------------------------------------- examples
PORTFOLIO_EXAMPLE = {
    "state": "active",
    "equity": "150000.00000000",
    "day_start_equity": "151000.00000000",
    "daily_pnl": "-1000.00000000",
    "daily_pnl_pct": "-0.00662252",
    "peak_equity": "152000.00000000",
    "drawdown": "0.01315789",
    "exposure": "24600.00000000",
    "market_exposure": "27000.00000000",
    "exposure_pct": "0.18000000",
    "unrealized_pnl": "4400.00000000",
    "positions": {"total": 4, "pending_approval": 0, "approved": 1, "open": 3},
    "trades": {
        "closed": 12,
        "wins": 7,
        "win_rate": "0.58333333",
        "gross_profit": "1850.00000000",
        "gross_loss": "940.00000000",
        "profit_factor": "1.96808511",
    },
}
SNAPSHOT_EXAMPLE = {
    "computed_at": "2026-05-04T12:00:05.120000+00:00",
    "age_seconds": 1.8,
    "stale": False,
    "interval_seconds": 5,
    "duration_ms": 41.5,
}
CONCENTRATION_EXAMPLE = {
    "by_symbol": [
        {
            "symbol": "BTC-USD",
            "mark": "60000.00000000",
            "exposure": "17600.00000000",
            "market_exposure": "21000.00000000",
            "unrealized_pnl": "3400.00000000",
            "pct": "0.14000000",
            "positions": 2,
        }
    ],
    "by_group": [
        {
            "group": "majors",
            "symbols": ["BTC-USD", "ETH-USD"],
            "exposure": "23600.00000000",
            "market_exposure": "26000.00000000",
            "pct": "0.17333333",
            "limit_pct": "0.50000000",
        }
    ],
}
METRICS_EXAMPLE = OpenApiExample(
    "A desk of two accounts",
    value={
        "snapshot": SNAPSHOT_EXAMPLE,
        "portfolio": PORTFOLIO_EXAMPLE,
        "concentration": CONCENTRATION_EXAMPLE,
        "limits": [
            {
                "limit": "portfolio_exposure",
                "subject": None,
                "value": "24600.00000000",
                "limit_value": "120000.00000000",
                "usage": "0.20500000",
                "status": "ok",
            }
        ],
    },
    response_only=True,
)
HISTORY_EXAMPLE = OpenApiExample(
    "One day in five-minute buckets (two points shown)",
    value={
        "since": "2026-05-03T12:00:00+00:00",
        "until": "2026-05-04T12:00:00+00:00",
        "bucket_seconds": 173,
        "count": 2,
        "points": [
            {
                "time": "2026-05-03T12:02:00+00:00",
                "equity": "151000.00000000",
                "day_start_equity": "150000.00000000",
                "daily_pnl": "1000.00000000",
                "peak_equity": "152000.00000000",
                "drawdown": "0.00657895",
                "exposure": "20000.00000000",
                "market_exposure": "20400.00000000",
                "exposure_pct": "0.13509934",
                "unrealized_pnl": "400.00000000",
                "position_count": 3,
                "account_count": 2,
                "stale_account_count": 0,
            }
        ],
    },
    response_only=True,
)
ACCOUNT_EXAMPLE = OpenApiExample(
    "An account holding BTC and ETH",
    value={
        "id": 42,
        "name": "bot-42",
        "username": "alice",
        "is_active": True,
        "status": "running",
        "state": "active",
        "equity": "100000.00000000",
        "peak_equity": "104000.00000000",
        "day_start_equity": "101000.00000000",
        "daily_pnl": "-1000.00000000",
        "daily_pnl_pct": "-0.00990099",
        "drawdown": "0.03846154",
        "exposure": "22000.00000000",
        "market_exposure": "24000.00000000",
        "exposure_pct": "0.24000000",
        "unrealized_pnl": "4000.00000000",
        "position_count": 3,
        "trades": {
            "closed": 8,
            "wins": 5,
            "win_rate": "0.62500000",
            "gross_profit": "2400.00000000",
            "gross_loss": "900.00000000",
            "profit_factor": "2.66666667",
        },
        "stale": False,
        "equity_stale": False,
        "heartbeat_stale": False,
        "equity_reported_at": "2026-05-04T11:59:58+00:00",
        "last_heartbeat": "2026-05-04T11:59:59+00:00",
        "heartbeat_age_s": 1,
        "heartbeat_lost_at": None,
        "worst_usage": "0.24444444",
        "limits": [
            {"limit": "account_exposure", "usage": "0.24444444", "status": "ok"},
            {"limit": "max_open_positions", "usage": "0.06000000", "status": "ok"},
            {"limit": "daily_loss_limit", "usage": "0.19801980", "status": "ok"},
            {"limit": "drawdown_limit", "usage": "0.19230769", "status": "ok"},
            {"limit": "emergency_drawdown", "usage": "0.15384615", "status": "ok"},
        ],
        "equity_hold": None,
        "by_symbol": CONCENTRATION_EXAMPLE["by_symbol"],
    },
    response_only=True,
)
CORRELATION_EXAMPLE = OpenApiExample(
    "Three accounts, one with too little history",
    value={
        "computed_at": "2026-05-04T12:00:00+00:00",
        "age_seconds": 42.0,
        "window": {"since": "2026-02-03", "until": "2026-05-04", "min_days": 20},
        "accounts": [{"id": 7, "name": "bot-7"}, {"id": 3, "name": "bot-3"}, {"id": 9, "name": "bot-9"}],
        "coefficients": [[1.0, 0.412503, None], [0.412503, 1.0, None], [None, None, None]],
        "days": [[90, 88, 12], [88, 88, 12], [12, 12, 12]],
    },
    response_only=True,
)
