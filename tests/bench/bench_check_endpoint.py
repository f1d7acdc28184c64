"""POST /api/risk/check-position over HTTP: throughput under 32 clients against a bare authenticated DRF GET on the
same server in the same run, latency at a fixed 200 requests a second (open loop), and a profile of one check.

Run: `make bench`, or `NIJA_TEST_DB_SUFFIX=_x TEST_REDIS_PORT=6380x .venv/bin/pytest tests/bench/bench_check_endpoint.py
-s -q -o addopts=""`. It prints figures and asserts no timing (only that the answers and counters are right).

- Server: the Procfile's `web` line (gunicorn gthread, 2 workers x 8 threads) on a free port, with
  tests/bench/endpoint_settings.py (the test settings, persistent connections, rate limits lifted) against this
  run's test database and the suite's Redis. It is stopped (TERM, then KILL) whatever happens.
- Data: ACCOUNTS funded accounts through the services (equity reports), each bot with its own token, limits with
  room for every check of the run, so most are approved. The bare endpoint is GET /api/market/BTC-USD after a feed
  PUT: token authentication, the limiter and one cache read, like every API call, and nothing else.
- Throughput: wrk (Debian package; installed when missing and running as root), 2 threads x 32 connections, a Lua
  script rotating tokens, symbols and unique client_order_ids. Bare and check runs alternate in slices so that
  load from other processes on the machine falls on both alike. wrk's own CPU time is printed: it must stay a
  small share of the 2 cores for the figure to be the server's.
- Latency: an asyncio open-loop generator (`endpoint_load.open_loop`): each request is due at its slot and its
  latency counts from that slot, so a slow answer cannot hide the ones queued behind it.
- Profile: one check in process (Django's test client on the same database and Redis): its SQL statements, Redis
  commands, and the time spent in validation, before the transaction, under the portfolio lock and after commit.
"""

import os
import statistics
import time
import urllib.request
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from accounts.models import TokenKind, TradingInstance
from risk.api import CheckPositionInput
from risk.models import RiskLimits
from risk.services import check as check_service
from risk.services.check import CheckInput, position_check
from tests.accounts.factories import issue_token
from tests.bench import endpoint_load
from tests.bench.database_settings import print_durability
from tests.risk.conftest import counter_drift, funded_account
from trading.models import Position

ACCOUNTS = 256
EQUITY = Decimal("10000000")
# (symbol, quantity, price): notionals of 300 to 600, far below every limit and the approval threshold.
SYMBOLS = [
    ("BTC-USD", "0.01", "50000"),
    ("ETH-USD", "0.2", "3000"),
    ("SOL-USD", "3", "150"),
    ("XRP-USD", "800", "0.6"),
    ("ADA-USD", "900", "0.45"),
    ("DOGE-USD", "3000", "0.12"),
    ("AVAX-USD", "15", "30"),
    ("LINK-USD", "25", "14"),
]
CONNECTIONS = 32
WRK_THREADS = 2
WARMUP_SECONDS = 3
SLICE_SECONDS = 6
ROUNDS = 3
OPEN_LOOP_RATE = 200
OPEN_LOOP_SECONDS = 30
PROFILE_ITERATIONS = 300
TARGETS = {"ratio": 0.5, "p50_ms": 5.0, "p99_ms": 20.0}
BARE_PATH = "/api/market/BTC-USD"
CHECK_PATH = "/api/risk/check-position"


# ---------------------------------------------------------------------------------------------- data
def _roomy_default_limits() -> None:
    """Room for every check of the run: the portfolio's position count and an equity report that stays fresh."""
    RiskLimits.objects.filter(instance__isnull=True).update(max_total_positions=10_000_000, equity_max_age_seconds=3600)


def _bots() -> list[tuple[int, str]]:
    """(account id, raw bot token) for ACCOUNTS funded accounts, each with room for 100,000 open positions."""
    bots = []
    for _ in range(ACCOUNTS):
        account = funded_account(EQUITY, permission={"max_open_positions": 100_000})
        bots.append((account.pk, issue_token(TokenKind.BOT, instance=account)))
    return bots


def _server_env(log_dir: Path) -> dict[str, str]:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "tests.bench.endpoint_settings",
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TEST_REDIS_URL": django_settings.CACHES["default"]["LOCATION"],
        "MARKET_PRICE_TTL": "3600",
        "LOG_DIR": "",
        "PYTHONPATH": str(endpoint_load.REPO),
        "TMPDIR": str(log_dir),
    }


def _dsn() -> dict[str, str]:
    """psycopg2 keywords for this run's database, as the server reaches it (no per-connection options)."""
    db = connection.settings_dict
    dsn = {
        "host": db["HOST"],
        "port": db["PORT"],
        "user": db["USER"],
        "password": db.get("PASSWORD"),
        "dbname": db["NAME"],
    }
    return {key: value for key, value in dsn.items() if value}


def _put_prices(base_url: str, feed_token: str) -> None:
    for symbol, _, price in SYMBOLS:
        request = urllib.request.Request(  # noqa: S310 - an http:// loopback URL built here
            f"{base_url}/api/market/{symbol}",
            data=f'{{"price": "{price}"}}'.encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {feed_token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - same
            assert response.status == 200


def _check_body(account_id: int, number: int, run_id: str) -> dict:
    symbol, quantity, price = SYMBOLS[number % len(SYMBOLS)]
    return {
        "account_id": account_id,
        "symbol": symbol,
        "side": "long",
        "quantity": quantity,
        "price": price,
        "client_order_id": f"{run_id}-{number}",
    }


# ---------------------------------------------------------------------------------------------- the benchmark
@pytest.mark.django_db(transaction=True)
def test_check_endpoint_throughput_latency_and_profile(tmp_path, redis_client, settings, monkeypatch):
    wrk = endpoint_load.require_wrk()
    _roomy_default_limits()
    started = time.monotonic()
    bots = _bots()
    feed_token = issue_token(TokenKind.FEED)
    print(
        f"\n== check-position endpoint ({ACCOUNTS} accounts, tokens and equity through the services, "
        f"{time.monotonic() - started:.1f} s)"
    )

    server = endpoint_load.GunicornServer(
        env=_server_env(tmp_path), log_path=tmp_path / "gunicorn.log", threads=int(os.environ.get("BENCH_THREADS", "8"))
    )
    with server:
        print_durability("the gunicorn server's connections", _dsn())
        _put_prices(server.base_url, feed_token)
        throughput = _throughput(wrk, server, bots, tmp_path)
        latency = _latency(server, bots)
    print(f"(server stopped; its log: {server.log_path})")

    _print_mix_from_database()
    assert counter_drift() == []
    assert throughput["check"]["approved"] > 0
    assert latency.decisions["approved"] > 0

    _profile(bots, settings, monkeypatch)


# ---------------------------------------------------------------------------------------------- 1. throughput
def _throughput(wrk: str, server: endpoint_load.GunicornServer, bots, tmp_path: Path) -> dict[str, Counter]:
    run_id = uuid.uuid4().hex[:8]
    scripts = {
        "bare": endpoint_load.write_lua(tmp_path / "bare.lua", method="GET", url_path=BARE_PATH, clients=bots),
        "check": endpoint_load.write_lua(
            tmp_path / "check.lua", method="POST", url_path=CHECK_PATH, clients=bots, symbols=SYMBOLS, run_id=run_id
        ),
    }
    database = connection.settings_dict["NAME"]
    redis_port = django_settings.CACHES["default"]["LOCATION"].rsplit(":", 1)[1].split("/")[0]
    cpu_groups = {
        "gunicorn (2 workers)": server.pids,
        "postgres (backends of this database)": lambda: endpoint_load.pids_matching(
            lambda comm, cmdline: comm.startswith("postgres") and f" {database} " in cmdline
        ),
        f"redis :{redis_port}": lambda: endpoint_load.pids_matching(
            lambda comm, cmdline: comm.startswith("redis-server") and f":{redis_port}" in cmdline
        ),
    }
    dsn = _dsn()

    for kind in ("bare", "check"):  # warm up: connections, caches, JIT of wrk's Lua
        endpoint_load.run_wrk(
            wrk,
            base_url=server.base_url,
            script=scripts[kind],
            seconds=WARMUP_SECONDS,
            connections=CONNECTIONS,
            threads=WRK_THREADS,
        )

    runs: dict[str, list[endpoint_load.WrkResult]] = {"bare": [], "check": []}
    cpu: dict[str, list[dict[str, float]]] = {"bare": [], "check": []}
    waits: list[tuple[float, float]] = []
    for _ in range(ROUNDS):
        for kind in ("bare", "check"):
            meter = endpoint_load.CpuMeter(cpu_groups)
            meter.start()
            with endpoint_load.LockWaitSampler(dsn, connection.settings_dict["NAME"]) as sampler:
                result = endpoint_load.run_wrk(
                    wrk,
                    base_url=server.base_url,
                    script=scripts[kind],
                    seconds=SLICE_SECONDS,
                    connections=CONNECTIONS,
                    threads=WRK_THREADS,
                )
            cores = meter.stop()
            cores["wrk (load generator)"] = result.wrk_cpu_seconds / result.seconds
            ours = sum(cores[name] for name in [*cpu_groups, "wrk (load generator)"])
            cores["other processes (not this benchmark)"] = cores["machine (all processes)"] - ours
            runs[kind].append(result)
            cpu[kind].append(cores)
            if kind == "check":
                waits.append((sampler.mean_active, sampler.mean_lock_waiting))

    totals = {kind: _combined(results) for kind, results in runs.items()}
    rate = {kind: sum(r.requests for r in results) / sum(r.seconds for r in results) for kind, results in runs.items()}
    ratio = rate["check"] / rate["bare"]
    print(
        f"\n-- 1. Throughput, {CONNECTIONS} clients (wrk -t{WRK_THREADS} -c{CONNECTIONS}), "
        f"{ROUNDS} interleaved slices of {SLICE_SECONDS} s each"
    )
    for kind, label in (("bare", f"bare DRF GET {BARE_PATH}"), ("check", f"POST {CHECK_PATH} (reserving)")):
        slices = ", ".join(f"{r.rate:,.0f}" for r in runs[kind])
        p50, p99 = _median(r.p50_ms for r in runs[kind]), _median(r.p99_ms for r in runs[kind])
        print(f"{label:48} {rate[kind]:8,.0f} req/s  (slices {slices}; wrk p50 {p50:.1f} ms, p99 {p99:.1f} ms)")
    verdict = "ok" if ratio >= TARGETS["ratio"] else "BELOW TARGET"
    print(f"{'ratio check / bare':48} {ratio:8.2f}        (target >= {TARGETS['ratio']}) {verdict}")
    check = totals["check"]
    print(
        f"check answers: {check['s200']:,} x 200 (approved {check['approved']:,}, pending_approval "
        f"{check['pending']:,}, rejected {check['rejected']:,}), 429 {check['s429']}, other 4xx {check['s4xx']}, "
        f"5xx {check['s5xx']}, other {check['sother']}, socket errors {check['errors']}"
    )
    bare = totals["bare"]
    print(
        f"bare answers:  {bare['s200']:,} x 200, 4xx {bare['s4xx'] + bare['s429']}, 5xx {bare['s5xx']}, "
        f"socket errors {bare['errors']}"
    )
    print(
        "CPU, cores in use (mean of the slices; the machine has "
        f"{_median(c['machine capacity'] for c in cpu['check']):.1f}):"
    )
    for name in cpu["check"][0]:
        if name != "machine capacity":
            print(
                f"   {name:40} bare {_mean(c[name] for c in cpu['bare']):5.2f}   "
                f"check {_mean(c[name] for c in cpu['check']):5.2f}"
            )
    print(
        f"PostgreSQL backends of this database during checks: {_mean(a for a, _ in waits):.1f} running a statement, "
        f"{_mean(w for _, w in waits):.1f} of them waiting on a row lock (sampled every 10 ms)"
    )
    return totals


def _combined(results: list[endpoint_load.WrkResult]) -> Counter:
    total: Counter = Counter()
    for result in results:
        total.update({name: value for name, value in result.counts.items() if isinstance(value, int)})
        total["errors"] += result.errors
    return total


# ---------------------------------------------------------------------------------------------- 2. latency
def _latency(server: endpoint_load.GunicornServer, bots) -> endpoint_load.OpenLoopResult:
    run_id = uuid.uuid4().hex[:8]

    def make_request(number: int) -> bytes:
        account_id, token = bots[number % len(bots)]
        return endpoint_load.http_request(
            "POST", CHECK_PATH, token=token, body=_check_body(account_id, number, f"ol{run_id}")
        )

    result = endpoint_load.open_loop(
        server.base_url, rate=OPEN_LOOP_RATE, seconds=OPEN_LOOP_SECONDS, make_request=make_request
    )
    p50 = result.percentile(result.latencies_ms, 50)
    p99 = result.percentile(result.latencies_ms, 99)
    print(
        f"\n-- 2. Latency at a fixed {OPEN_LOOP_RATE} req/s, open loop, {OPEN_LOOP_SECONDS} s "
        f"({len(result.latencies_ms):,} checks, measured from each request's due time)"
    )
    print(
        f"p50 {p50:.2f} ms (target < {TARGETS['p50_ms']}) {'ok' if p50 < TARGETS['p50_ms'] else 'ABOVE TARGET'}   "
        f"p99 {p99:.2f} ms (target < {TARGETS['p99_ms']}) {'ok' if p99 < TARGETS['p99_ms'] else 'ABOVE TARGET'}   "
        f"p99.9 {result.percentile(result.latencies_ms, 99.9):.2f} ms   max {max(result.latencies_ms):.2f} ms"
    )
    print(
        f"answers: {dict(result.statuses)}; decisions: {dict(result.decisions)}; "
        f"unanswered 10 s after the last was due: {result.unanswered:,} (counted with the time they had waited)"
    )
    print(
        f"generator: send lag behind schedule p50 {result.percentile(result.send_lag_ms, 50):.2f} ms, "
        f"p99 {result.percentile(result.send_lag_ms, 99):.2f} ms; {result.connections_opened} connections opened"
    )
    return result


def _print_mix_from_database() -> None:
    rows = Position.objects.values("status").annotate(n=Count("id")).order_by("-n")
    print("positions written (both phases), by status: " + ", ".join(f"{row['status']} {row['n']:,}" for row in rows))


# ---------------------------------------------------------------------------------------------- 3. profile
def _profile(bots, settings, monkeypatch) -> None:
    """One check in process: statements, Redis commands, and where its time goes. The app's log lines (stdout of
    this process) go to /dev/null meanwhile, as the server's go to its log file."""
    settings.RATE_LIMITS = {scope: dict.fromkeys(tiers, (10**9, 60)) for scope, tiers in settings.RATE_LIMITS.items()}
    settings.MARKET_PRICE_TTL = 3600
    account_id, token = bots[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    run_id = uuid.uuid4().hex[:8]
    numbers = iter(range(10**9))

    def post_check():
        return client.post(CHECK_PATH, _check_body(account_id, next(numbers), f"pf{run_id}"), format="json")

    with endpoint_load.stdout_to_devnull():
        for _ in range(20):  # warm: token and permission caches, connection
            assert post_check().status_code == 200
            assert client.get(BARE_PATH).status_code == 200
        clock = StatementClock()
        with connection.execute_wrapper(clock):
            assert post_check().status_code == 200
        one_check = list(clock.statements)
        redis_per_check, redis_per_bare = _redis_commands(post_check), _redis_commands(lambda: client.get(BARE_PATH))
        request_ms = _median_ms(post_check, PROFILE_ITERATIONS)
        bare_ms = _median_ms(lambda: client.get(BARE_PATH), PROFILE_ITERATIONS)
        phases = _service_phases(account_id, monkeypatch)
        body = _check_body(account_id, 0, "x")
        validation_ms = _median_ms(lambda: CheckPositionInput(data=body).is_valid(raise_exception=True), 2000)
        light_ms = _median_ms(lambda: _light_validation(body), 2000)

    print(
        f"\n-- 3. Profile of one check, in process (Django test client, same database and Redis, "
        f"medians of {PROFILE_ITERATIONS}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(f"SQL statements per check over the API: {len(one_check)} (BEGIN rides on the first one of the transaction):")
    for started, finished, sql in one_check:
        print(f"   {(finished - started) * 1000:6.3f} ms  {' '.join(sql.split())[:105]}")
    print(
        f"Redis commands per check: {sum(redis_per_check.values()):g} "
        f"({', '.join(f'{name} {calls:g}' for name, calls in sorted(redis_per_check.items()))}); "
        f"per bare GET: {sum(redis_per_bare.values()):g}"
    )
    print(
        f"whole request in process: check {request_ms:.3f} ms, bare GET {bare_ms:.3f} ms "
        f"(the check's own cost: {request_ms - bare_ms:.3f} ms)"
    )
    print(
        f"   validation, DRF CheckPositionInput.is_valid        {validation_ms:.3f} ms  "
        f"(a plain-Python parse of the same fields: {light_ms:.3f} ms)"
    )
    for name, value in phases.items():
        print(f"   {name:50} {value:.3f} ms")
    held = phases[HELD]
    print(
        f"   => the portfolio row is held about {held:.3f} ms a check (from the transaction's first statement to"
        f" COMMIT), so checks serialize at <= {1000 / held:,.0f} /s however many workers run"
    )


HELD = "transaction: first statement to COMMIT (row locks held)"


class StatementClock:
    """A Django execute wrapper timing every statement; inside an atomic block it also notes the first statement
    and, through an on_commit callback registered there (the first to run), the moment COMMIT returned."""

    def __init__(self) -> None:
        self.statements: list[tuple[float, float, str]] = []
        self.first_in_transaction: float | None = None
        self.committed: float | None = None

    def reset(self) -> None:
        self.statements.clear()
        self.first_in_transaction = self.committed = None

    def _mark_commit(self) -> None:
        self.committed = time.perf_counter()

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        if self.first_in_transaction is None and context["connection"].in_atomic_block:
            self.first_in_transaction = started
            transaction.on_commit(self._mark_commit)
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((started, time.perf_counter(), sql))


def _redis_commands(call, times: int = 100) -> dict[str, float]:
    redis = get_redis_connection("default")
    redis.config_resetstat()
    for _ in range(times):
        call()
    stats = redis.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): data["calls"] / times
        for name, data in stats.items()
        if name != "cmdstat_config|resetstat"
    }


def _service_phases(account_id: int, monkeypatch) -> dict[str, float]:
    """position_check called directly (no HTTP, no DRF), its time split at the transaction's boundaries."""
    engine = {"seconds": 0.0}
    real_evaluate = getattr(check_service, "evaluate", None)
    if real_evaluate is not None:

        def evaluate(*args, **kwargs):
            before = time.perf_counter()
            try:
                return real_evaluate(*args, **kwargs)
            finally:
                engine["seconds"] = time.perf_counter() - before

        monkeypatch.setattr(check_service, "evaluate", evaluate)
    user_id = TradingInstance.objects.get(pk=account_id).user_id
    run_id = uuid.uuid4().hex[:8]
    samples: dict[str, list[float]] = {}
    clock = StatementClock()
    with connection.execute_wrapper(clock):
        for number in range(PROFILE_ITERATIONS):
            symbol, quantity, price = SYMBOLS[number % len(SYMBOLS)]
            request = CheckInput(
                account_id=account_id,
                symbol=symbol,
                side="long",
                quantity=Decimal(quantity),
                price=Decimal(price),
                client_order_id=f"sv{run_id}-{number}",
            )
            clock.reset()
            start = time.perf_counter()
            outcome = position_check(request=request, user_id=user_id, now=timezone.now(), correlation_id="bench")
            end = time.perf_counter()
            assert outcome.decision == "approved"
            begin, committed = clock.first_in_transaction, clock.committed
            inside = [(a, b) for a, b, _ in clock.statements if begin <= a < committed]
            in_sql = sum(b - a for a, b in inside)
            for name, value in {
                "position_check, the whole service call": end - start,
                "before the transaction (permission, mark)": begin - start,
                HELD: committed - begin,
                f"   in {len(inside)} SQL statements (round trips)": in_sql,
                "   in Python between them, and COMMIT": committed - begin - in_sql,
                "      of which the pure engine (evaluate)": engine["seconds"],
                "after COMMIT (publish the event, return)": end - committed,
            }.items():
                samples.setdefault(name, []).append(value * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def _light_validation(body: dict) -> dict:
    """What a check's validation needs, in plain Python (the lever's size, not a proposal for the code)."""
    out = {"account_id": body["account_id"], "symbol": body["symbol"].upper(), "side": body["side"]}
    if type(out["account_id"]) is not int or out["side"] not in ("long", "short"):
        raise ValueError
    for name in ("quantity", "price"):
        value = Decimal(body[name])
        if not value.is_finite() or value <= 0 or value.as_tuple().exponent < -8 or value > Decimal("9999999999"):
            raise ValueError
        out[name] = value
    return out


# ---------------------------------------------------------------------------------------------- small helpers
def _median_ms(call, iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _median(values) -> float:
    return statistics.median(list(values))


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
