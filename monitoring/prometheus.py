"""The desk's business gauges for Prometheus, read from the cached snapshot at each scrape (never a fresh
aggregation: a scrape costs one Redis GET). Registered with nija.metrics when the app is ready.

Money is exported as float (Prometheus has no other number type): these are for charts and alerts, not books.
Without a snapshot only `nija_desk_snapshot_available 0` is exported, so an alert can say the aggregation stopped.
"""

from collections.abc import Iterator
from datetime import datetime

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitoring.snapshots import age_seconds, snapshot_get

PORTFOLIO_GAUGES = {
    "equity": "Portfolio equity (the accounts counted in it).",
    "exposure": "Booked exposure (what the limits count).",
    "market_exposure": "Exposure at the cached marks.",
    "unrealized_pnl": "Unrealized P&L at the cached marks.",
    "daily_pnl": "Equity minus the start-of-day equity.",
    "drawdown": "Portfolio drawdown (fraction of the summed high-water marks).",
}


class DeskCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = snapshot_get()
        yield GaugeMetricFamily(
            "nija_desk_snapshot_available", "1 when a desk snapshot is cached.", value=int(snapshot is not None)
        )
        if snapshot is None:
            return
        yield from _snapshot_gauges(snapshot, now=timezone.now())

    def describe(self) -> list:
        return []  # collected at scrape time only: no describe-time Redis read


def _snapshot_gauges(snapshot: dict, *, now: datetime) -> Iterator[GaugeMetricFamily]:
    portfolio, accounts = snapshot["portfolio"], snapshot["accounts"]
    yield GaugeMetricFamily(
        "nija_desk_snapshot_age_seconds",
        "Seconds since the cached snapshot was computed.",
        value=age_seconds(snapshot["computed_at"], now=now),
    )
    for name, documentation in PORTFOLIO_GAUGES.items():
        yield GaugeMetricFamily(f"nija_portfolio_{name}", documentation, value=float(portfolio[name]))
    positions = GaugeMetricFamily(
        "nija_portfolio_positions", "Positions holding exposure, by status.", labels=["status"]
    )
    for status, count in portfolio["positions"].items():
        if status != "total":
            positions.add_metric([status], count)
    yield positions
    accounts_gauge = GaugeMetricFamily("nija_accounts", "Accounts by condition.", labels=["condition"])
    for condition in ("total", "active", "stale", "halted", "reducing", "near_limit", "past_limit"):
        accounts_gauge.add_metric([condition], accounts[condition])
    yield accounts_gauge
    yield GaugeMetricFamily(
        "nija_portfolio_halted", "1 when the portfolio is HALTED.", value=int(portfolio["state"] == "halted")
    )
    yield GaugeMetricFamily(
        "nija_risk_counters_consistent",
        "1 when every exposure counter equals the positions it counts.",
        value=int(snapshot["counters"]["consistent"]),
    )
    firing = (snapshot.get("alerts") or {}).get("firing")
    if firing is not None:  # absent when the run's alert step failed
        yield GaugeMetricFamily("nija_alerts_firing", "Alert rule-and-scope pairs firing now.", value=firing)
