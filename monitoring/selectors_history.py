"""Reads of the minute history: the portfolio's series over any range, downsampled in SQL to at most
`MAX_POINTS` points.

The range is cut into equal buckets (at least a minute wide, as many as MAX_POINTS at most) and each bucket
answers its last row: a value the desk really had at that time, never an average no one saw. One query, an index
range scan on the unique `minute` column.
"""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

MAX_POINTS = 500
MIN_BUCKET_SECONDS = 60
COLUMNS = (
    "minute",
    "equity",
    "day_start_equity",
    "peak_equity",
    "exposure",
    "market_exposure",
    "unrealized_pnl",
    "position_count",
    "account_count",
    "stale_account_count",
)
_SERIES_SQL = f"""
    SELECT DISTINCT ON (bucket) floor(extract(epoch FROM minute - %(since)s) / %(width)s) AS bucket,
        {", ".join(COLUMNS)}
    FROM monitoring_metricsnapshot
    WHERE minute >= %(since)s AND minute < %(until)s
    ORDER BY bucket, minute DESC
"""  # noqa: S608 - the columns are ours; values are parameters


@dataclass(frozen=True)
class Series:
    since: datetime
    until: datetime
    bucket_seconds: int
    rows: list[dict[str, Any]]


def bucket_seconds(since: datetime, until: datetime) -> int:
    """The bucket width that cuts [since, until) into at most MAX_POINTS buckets (never under a minute)."""
    return max(MIN_BUCKET_SECONDS, math.ceil((until - since).total_seconds() / MAX_POINTS))


def portfolio_series(*, since: datetime, until: datetime) -> Series:
    """The last snapshot of each bucket in [since, until), oldest first."""
    width = bucket_seconds(since, until)
    with connection.cursor() as cursor:
        cursor.execute(_SERIES_SQL, {"since": since, "until": until, "width": width})
        rows = [dict(zip(COLUMNS, row[1:], strict=True)) for row in cursor.fetchall()]
    return Series(since=since, until=until, bucket_seconds=width, rows=rows)
