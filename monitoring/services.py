"""Writes of the monitoring app: the desk aggregation run, its minute of history and the pruning of it, and the
desk analytics.

One aggregation run at a time: each run takes a PostgreSQL advisory lock (session level, released at the end or
when the connection dies) and a run that finds it taken does nothing. Every step is idempotent, so two beats
firing together, or a redelivered task, change nothing twice: the emergency latch raises a breach once, the cached
snapshot is replaced, and the minute's history row is unique (`INSERT ... ON CONFLICT DO NOTHING`).

A run: the emergency thresholds of every account and the portfolio (a risk service: it trips what no equity report
did), then the snapshot (monitoring.desk), then the alert rules evaluated on the desk's figures (so a halt the
emergency pass just tripped fires its rule in the same run; the alert state machine keeps a firing once per
episode, so a redelivered run raises nothing twice), the snapshot cached under `dash:snapshot` with its time, then
the minute's history row with each active account's point if this minute has none yet, then a `metrics` event. An
error in the emergency pass or the alert step is logged and shown in the snapshot; it never keeps the desk's
figures from being refreshed.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Sum

from accounts.models import TradingInstance
from monitoring.alerts.services.evaluation import alerts_run
from monitoring.analytics import CONFIDENCES, MIN_DAYS, correlation_matrix, daily_return, tail_risk
from monitoring.desk import amount, desk_snapshot
from monitoring.models import AccountMetricPoint, MetricSnapshot
from monitoring.snapshots import analytics_store, snapshot_store
from nija.events import publish
from risk.services.emergency import EmergencySweep, emergencies_evaluate_all
from trading.models import DailyStatistic

logger = logging.getLogger(__name__)

# PostgreSQL advisory lock keys (64-bit): one per kind of run.
AGGREGATION_LOCK = 0x6E696A61_64657331  # "nijades1"
ANALYTICS_LOCK = 0x6E696A61_616E6131  # "nijaana1"
PRUNE_BATCH_SNAPSHOTS = 20


@contextmanager
def advisory_lock(key: int) -> Iterator[bool]:
    """Try the session-level advisory lock `key`: yields whether this connection got it (never waits)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


@dataclass(frozen=True)
class AggregationRun:
    snapshot: dict[str, Any]
    emergency: EmergencySweep | None
    history_recorded: bool


def aggregation_run(*, now: datetime) -> AggregationRun | None:
    """One aggregation run (see the module docstring); None when another run holds the lock."""
    with advisory_lock(AGGREGATION_LOCK) as acquired:
        if not acquired:
            logger.info("aggregation_skipped", extra={"reason": "another run holds the lock"})
            return None
        started = time.perf_counter()
        emergency, emergency_error = _emergencies(now=now)
        snapshot = desk_snapshot(now=now)
        snapshot["emergency"] = _emergency_json(emergency, emergency_error)
        snapshot["alerts"] = alerts_run(now=now)
        snapshot["interval_seconds"] = settings.MONITORING_INTERVAL_SECONDS
        snapshot["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        snapshot_store(snapshot)
        recorded = metric_snapshot_record(snapshot=snapshot, now=now)
        publish(event_type="metrics", data=metrics_event(snapshot))
    return AggregationRun(snapshot=snapshot, emergency=emergency, history_recorded=recorded)


def _emergencies(*, now: datetime) -> tuple[EmergencySweep | None, str | None]:
    try:
        return emergencies_evaluate_all(now=now), None
    except DatabaseError as exc:  # a lock or statement timeout, the database gone: the next run retries
        logger.exception("emergency_evaluation_failed")
        return None, type(exc).__name__


def _emergency_json(sweep: EmergencySweep | None, error: str | None) -> dict[str, Any]:
    if sweep is None:
        return {"evaluated": False, "error": error, "tripped": [], "cleared": []}
    return {
        "evaluated": True,
        "error": None,
        "tripped": [breach.key for breach in sweep.tripped],
        "cleared": sorted(sweep.cleared),
    }


def metrics_event(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The `metrics` event: the snapshot's time, portfolio figures and account counts (the lists stay behind)."""
    return {
        "computed_at": snapshot["computed_at"],
        "portfolio": snapshot["portfolio"],
        "accounts": snapshot["accounts"],
    }


_INSERT_SNAPSHOT = """
INSERT INTO monitoring_metricsnapshot (minute, taken_at, equity, day_start_equity, peak_equity, exposure,
    market_exposure, unrealized_pnl, position_count, account_count, stale_account_count)
VALUES (%(minute)s, %(taken_at)s, %(equity)s, %(day_start_equity)s, %(peak_equity)s, %(exposure)s,
    %(market_exposure)s, %(unrealized_pnl)s, %(position_count)s, %(account_count)s, %(stale_account_count)s)
ON CONFLICT (minute) DO NOTHING
RETURNING id
"""
_INSERT_POINTS = """
INSERT INTO monitoring_accountmetricpoint (snapshot_id, instance_id, equity, exposure)
SELECT %s, id, equity, exposure FROM accounts_tradinginstance WHERE is_active
ON CONFLICT DO NOTHING
"""


def metric_snapshot_record(*, snapshot: dict[str, Any], now: datetime) -> bool:
    """The minute's history row and every active account's point, unless this minute already has them (one
    statement when it has; three in one transaction when not). True when written."""
    portfolio, accounts = snapshot["portfolio"], snapshot["accounts"]
    values = {
        "minute": now.replace(second=0, microsecond=0),
        "taken_at": now,
        **{
            name: Decimal(portfolio[name])
            for name in ("equity", "day_start_equity", "peak_equity", "exposure", "market_exposure", "unrealized_pnl")
        },
        "position_count": portfolio["positions"]["total"],
        "account_count": accounts["active"],
        "stale_account_count": accounts["stale"],
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_INSERT_SNAPSHOT, values)
        row = cursor.fetchone()
        if row is None:
            return False
        # History is derived and rewritten every minute: its commit need not wait for the WAL flush (a crash may
        # lose the last minute's row, never anything else). Measured: the commit of 10,000 points was most of
        # the minute's first run.
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(_INSERT_POINTS, [row[0]])
    return True


def history_prune(*, now: datetime) -> tuple[int, int]:
    """Delete account points past their retention, then snapshots past theirs (with any points left), a few
    snapshots per statement so no single delete runs long. Returns (snapshots, points) deleted."""
    points = 0
    point_cutoff = now - timedelta(days=settings.MONITORING_ACCOUNT_HISTORY_RETENTION_DAYS)
    while ids := list(
        MetricSnapshot.objects.filter(minute__lt=point_cutoff, account_points__isnull=False)
        .values_list("pk", flat=True)
        .distinct()
        .order_by("pk")[:PRUNE_BATCH_SNAPSHOTS]
    ):
        points += AccountMetricPoint.objects.filter(snapshot_id__in=ids).delete()[0]
    snapshots = 0
    snapshot_cutoff = now - timedelta(days=settings.MONITORING_HISTORY_RETENTION_DAYS)
    while ids := list(
        MetricSnapshot.objects.filter(minute__lt=snapshot_cutoff).values_list("pk", flat=True)[:PRUNE_BATCH_SNAPSHOTS]
    ):
        deleted = MetricSnapshot.objects.filter(pk__in=ids).delete()[1]
        snapshots += deleted.get(MetricSnapshot._meta.label, 0)
        points += deleted.get(AccountMetricPoint._meta.label, 0)
    return snapshots, points


# ---------------------------------------------------------------------------------------------- analytics
def analytics_run(*, now: datetime) -> dict[str, Any] | None:
    """Correlation of the largest accounts' daily returns and the portfolio's VaR and expected shortfall over the
    last complete days (today is not over yet), cached under `dash:analytics`; None when another run holds the
    lock."""
    with advisory_lock(ANALYTICS_LOCK) as acquired:
        if not acquired:
            return None
        today = now.date()
        since = today - timedelta(days=settings.MONITORING_ANALYTICS_WINDOW_DAYS)
        analytics = {
            "computed_at": now.isoformat(),
            "window": {"since": since.isoformat(), "until": today.isoformat(), "min_days": MIN_DAYS},
            "correlation": _correlation_json(since=since, until=today),
            "risk": _risk_json(since=since, until=today),
        }
        analytics_store(analytics)
    return analytics


def _largest_account_ids(size: int) -> list[int]:
    rows = TradingInstance.objects.filter(is_active=True).order_by("-exposure", "pk")
    return list(rows.values_list("pk", flat=True)[:size])


def _correlation_json(*, since: date, until: date) -> dict[str, Any]:
    ids = _largest_account_ids(settings.MONITORING_CORRELATION_ACCOUNTS)
    returns: dict[int, dict[date, float]] = {account_id: {} for account_id in ids}
    rows = DailyStatistic.objects.filter(instance_id__in=ids, date__gte=since, date__lt=until)
    for account_id, day, start, end in rows.values_list("instance_id", "date", "start_equity", "end_equity"):
        value = daily_return(start, end)
        if value is not None:
            returns[account_id][day] = value
    matrix = correlation_matrix(returns)
    return {
        "account_ids": list(matrix.account_ids),
        "coefficients": [[None if r is None else round(r, 6) for r in row] for row in matrix.coefficients],
        "days": [list(row) for row in matrix.days],
    }


def _risk_json(*, since: date, until: date) -> dict[str, Any]:
    """The portfolio's daily P&L (sum of every account's end - start equity of the day), then its tail."""
    days = (
        DailyStatistic.objects.filter(date__gte=since, date__lt=until)
        .values("date")
        .annotate(pnl=Sum(F("end_equity") - F("start_equity")))
        .order_by("date")
    )
    pnl = [row["pnl"] for row in days]
    figures = []
    for confidence in CONFIDENCES:
        tail = tail_risk(pnl, confidence)
        figures.append(
            {
                "confidence": amount(confidence),
                "days": tail.days,
                "tail_days": tail.tail_days,
                "value_at_risk": amount(tail.value_at_risk),
                "expected_shortfall": amount(tail.expected_shortfall),
                "enough_history": tail.value_at_risk is not None,
            }
        )
    return {"days": len(pnl), "horizon_days": 1, "method": "historical", "figures": figures}
