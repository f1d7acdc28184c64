"""POST /api/risk/check-position over HTTP, and the targets of the hot path, each a ratio measured in this one run
and printed with its verdict (`make bench`):

1. the bare authenticated, rate-limited, logged API GET (GET /api/market/BTC-USD) against a plain JSON view of the
   same project through the same middleware (no authentication, no throttle), a view with no middleware beside;
2. the reserving check against that bare GET, and against a stand-in of the earlier in-memory service (Flask,
   tests/bench/flask_standin.py, gunicorn gthread 2 x 4); our legacy `{account_id, position_size}` dry run too;
3. the portfolio row's busy share of the check slices (sum of lock-held times over their length);
4. the open loop at half the measured check throughput: p50 and p99;
5. a dry run against a reserving check, a 429 against the bare GET;
6. the reserving check against a stack started the way `make run` starts it (honcho, the Procfile's `web` line,
   the local settings, DEMO=0, default rate limits above the offered load) beside the benchmark's own server.

Run: `make bench`, or `NIJA_TEST_DB_SUFFIX=_x TEST_REDIS_PORT=6380x .venv/bin/pytest tests/bench/bench_check_endpoint.py
-s -q -o addopts=""`. It prints figures and asserts no timing (only that the answers and counters are right).

- Servers: the Procfile's `web` line (gunicorn.conf.py, gthread, 2 workers, its thread count) serving
  tests/bench/bench_wsgi.py with tests/bench/endpoint_settings.py (the test settings, persistent connections, durable
  commits, rate limits lifted but for one 429 tier); the Flask stand-in; and `honcho start -f Procfile web` with the
  local settings, as `make run` starts it. All on free ports against this run's test database and the suite's
  Redis, each stopped (TERM, then KILL) whatever happens.
- Data: ACCOUNTS funded accounts through the services (equity reports), each bot with its own token (tier
  enterprise: the default limits allow 1,200 checks a minute per token), limits with room for every check of the
  run, so most are approved; one more bot on the `pro` tier, limited to one GET an hour (the 429 slices).
- Throughput: wrk, 2 threads x 32 connections, a Lua script rotating tokens, symbols and unique client_order_ids;
  every kind runs in slices, alternating, ROUNDS times, so that load from other processes on the machine falls on
  all alike. Only 2xx answers are counted (429s for the 429 slices).
- Latency: an asyncio open-loop generator (`endpoint_load.open_loop`): each request is due at its slot and its
  latency counts from that slot, so a slow answer cannot hide the ones queued behind it.
- Profile: one check in process (Django's test client on the same database and Redis): its SQL statements, Redis
  commands, and the time spent in validation, before its statements, in the snapshot read, between, in the reserving
  statement (the rows locked) and after commit.
- Worker profile (`BENCH_PYSPY=check,bare`, any kinds): py-spy samples of the bench server's workers during those
  kinds' slices, where the CPU of a request goes (tests/bench/worker_profile.py).
"""

import os
import re
import statistics
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Count
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from accounts.models import TokenKind, TradingInstance
from risk.api import CheckPositionInput
from risk.models import RiskLimits
from risk.services import check as check_service
from risk.services.check import CheckInput, position_check
from tests.accounts.factories import issue_token
from tests.bench import endpoint_load
from tests.bench.database_settings import print_durability, wal_flush_seconds
from tests.bench.endpoint_settings import LIMITED_TIER
from tests.bench.worker_profile import WorkerProfile
from tests.redis_round_trips import redis_round_trips
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
WARMUP_SECONDS = 2
SLICE_SECONDS = int(os.environ.get("BENCH_SLICE_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# The open loop's rate: half the measured check throughput (target 4), or this many checks a second to compare runs.
OPEN_LOOP_RATE = float(os.environ.get("BENCH_OPEN_LOOP_RATE", "0"))
# Kinds whose slices py-spy samples in the bench server's workers (tests/bench/worker_profile.py), e.g. "check,bare".
PROFILED_KINDS = [kind for kind in os.environ.get("BENCH_PYSPY", "").split(",") if kind]
OPEN_LOOP_SECONDS = 30
PROFILE_ITERATIONS = 300
BARE_PATH = "/api/market/BTC-USD"
CHECK_PATH = "/api/risk/check-position"
LOCK_HELD_METRIC = "nija_risk_portfolio_lock_held_seconds"
PATHS_METRIC = "nija_risk_check_paths_total"


@dataclass(frozen=True)
class Kind:
    """One kind of slice: which server, which request, and which answers count."""

    label: str
    server: str  # "bench", "flask" or "makerun"
    method: str
    path: str
    mode: str = "check"
    auth: bool = True
    counted: str = "s200"
    limited: bool = False  # the pro-tier bot (429s)


KINDS = {
    "nomw": Kind("plain JSON view, no middleware", "bench", "GET", "/bench/nomw/plain", auth=False),
    "plain": Kind("plain JSON view, same middleware", "bench", "GET", "/bench/plain", auth=False),
    "bare": Kind(f"bare API GET {BARE_PATH}", "bench", "GET", BARE_PATH),
    "r429": Kind("the same GET over its limit (429)", "bench", "GET", BARE_PATH, counted="s429", limited=True),
    "check": Kind("reserving check", "bench", "POST", CHECK_PATH),
    "dry": Kind("dry-run check", "bench", "POST", CHECK_PATH, mode="dry"),
    "legacy": Kind("legacy {account_id, position_size} dry run", "bench", "POST", CHECK_PATH, mode="legacy"),
    "flask": Kind("Flask stand-in of the earlier service", "flask", "POST", CHECK_PATH, mode="legacy", auth=False),
    "makerun": Kind("reserving check, `make run` stack", "makerun", "POST", CHECK_PATH),
}


ALL_KINDS = dict(KINDS)
# BENCH_KINDS=bare,check (say) runs only those slices while trying a lever; the targets table needs them all.
if os.environ.get("BENCH_KINDS"):
    KINDS = {name: KINDS[name] for name in os.environ["BENCH_KINDS"].split(",")}


# ---------------------------------------------------------------------------------------------- data
def _roomy_default_limits() -> None:
    """Room for every check of the run: the portfolio's position count and an equity report that stays fresh."""
    RiskLimits.objects.filter(instance__isnull=True).update(max_total_positions=10_000_000, equity_max_age_seconds=3600)


def _bot(tier: str) -> tuple[int, str]:
    account = funded_account(EQUITY, permission={"max_open_positions": 100_000}, user__subscription_tier=tier)
    return account.pk, issue_token(TokenKind.BOT, instance=account)


def _bots() -> list[tuple[int, str]]:
    """(account id, raw bot token) for ACCOUNTS funded accounts, each with room for 100,000 open positions."""
    return [_bot("enterprise") for _ in range(ACCOUNTS)]


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _server_env(log_dir: Path) -> dict[str, str]:
    prometheus = log_dir / "prometheus-bench"
    prometheus.mkdir(exist_ok=True)
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "tests.bench.endpoint_settings",
        "DATABASE_URL": _database_url(),
        "TEST_REDIS_URL": django_settings.CACHES["default"]["LOCATION"],
        "MARKET_PRICE_TTL": "3600",
        "LOG_DIR": "",
        "PYTHONPATH": str(endpoint_load.REPO),
        "TMPDIR": str(log_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(prometheus),
    }


def _makerun_env(log_dir: Path, port: int) -> dict[str, str]:
    """What `make run` exports for honcho (Makefile `run`), pointed at this run's database and Redis. The settings
    read REDIS_URL and DATABASE_URL like any deployment; MARKET_PRICE_TTL keeps the benchmark's prices fresh."""
    prometheus = log_dir / "prometheus-makerun"
    prometheus.mkdir(exist_ok=True)
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "NIJA_", "TEST_REDIS"))
    }
    return environment | {
        "DJANGO_SETTINGS_MODULE": "nija.settings.local",
        "PATH": f"{endpoint_load.REPO / '.venv/bin'}:{os.environ.get('PATH', '')}",
        "WEB_PORT": str(port),
        "EVENTS_PORT": str(port + 1),
        "WEB_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(prometheus),
        "DATABASE_URL": _database_url(),
        "REDIS_URL": django_settings.CACHES["default"]["LOCATION"],
        "MARKET_PRICE_TTL": "3600",
        "DEMO": "0",
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


def _lock_held(base_url: str) -> tuple[float, float, Counter]:
    """(sum of seconds, count) of the portfolio row's lock-held times, and the checks by path (snapshot, locked),
    over every worker (GET /metrics)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    found = dict(re.findall(rf"^{LOCK_HELD_METRIC}_(sum|count) (\S+)$", text, re.MULTILINE))
    paths = Counter({path: float(n) for path, n in re.findall(rf'^{PATHS_METRIC}{{path="(\w+)"}} (\S+)$', text, re.M)})
    return float(found.get("sum", 0)), float(found.get("count", 0)), paths


# ---------------------------------------------------------------------------------------------- the benchmark
@pytest.mark.timeout(1800)  # nine kinds of slices, three rounds, the open loop and the profile: past the suite's 300 s
@pytest.mark.django_db(transaction=True)
def test_check_endpoint_targets_and_profile(tmp_path, redis_client, settings, monkeypatch):
    wrk = endpoint_load.require_wrk()
    _roomy_default_limits()
    started = time.monotonic()
    bots = _bots()
    limited = [_bot(LIMITED_TIER)]
    feed_token = issue_token(TokenKind.FEED)
    print(
        f"\n== check-position endpoint ({ACCOUNTS} accounts, tokens and equity through the services, "
        f"{time.monotonic() - started:.1f} s; load average {_load()})"
    )
    threads = os.environ.get("BENCH_THREADS")
    bench_port, flask_port, makerun_port = (endpoint_load.free_port() for _ in range(3))
    servers = {
        "bench": endpoint_load.ServerProcess(
            command=endpoint_load.procfile_web_command(
                app="tests.bench.bench_wsgi:application", port=bench_port, threads=int(threads) if threads else None
            ),
            port=bench_port,
            env=_server_env(tmp_path),
            log_path=tmp_path / "bench-server.log",
            name="bench server",
        ),
        "flask": endpoint_load.ServerProcess(
            command=[
                str(endpoint_load.REPO / ".venv/bin/gunicorn"),
                "tests.bench.flask_standin:app",
                "--worker-class",
                "gthread",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{flask_port}",
            ],
            port=flask_port,
            env=os.environ | {"PYTHONPATH": str(endpoint_load.REPO)},
            log_path=tmp_path / "flask.log",
            name="Flask stand-in",
        ),
        "makerun": endpoint_load.ServerProcess(
            command=[str(endpoint_load.REPO / ".venv/bin/honcho"), "start", "-f", "Procfile", "web"],
            port=makerun_port,
            env=_makerun_env(tmp_path, makerun_port),
            log_path=tmp_path / "makerun.log",
            name="make-run stack",
        ),
    }
    for name, server in servers.items():
        print(f"   {name:8} :{server.port}  {server.command_line}")
    servers = {
        name: server
        for name, server in servers.items()
        if name == "bench" or any(k.server == name for k in KINDS.values())
    }
    try:
        for name, server in servers.items():
            server.start(ready_path=CHECK_PATH if name == "flask" else "/api/health")
        print_durability("the bench server's connections", _dsn())
        _put_prices(servers["bench"].base_url, feed_token)
        figures = _throughput(wrk, servers, bots, limited, tmp_path)
        for name in ("makerun", "flask"):
            if name in servers:
                servers[name].stop()
        latency = _latency(servers["bench"], bots, rate=OPEN_LOOP_RATE or figures.rates.get("check", 100) / 2)
    finally:
        for server in servers.values():
            server.stop()
    print(f"(servers stopped; their logs: {tmp_path})")

    if len(KINDS) == len(ALL_KINDS):
        _print_targets(figures, latency)
    _print_mix_from_database()
    assert counter_drift() == []
    assert all(figures.totals[name]["approved"] > 0 for name in KINDS if KINDS[name].method == "POST")
    assert latency.decisions["approved"] > 0

    if os.environ.get("BENCH_PROFILE", "1") != "0":
        _profile(bots, settings, monkeypatch)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# ---------------------------------------------------------------------------------------------- 1. throughput
@dataclass
class Throughput:
    rates: dict[str, float]
    slices: dict[str, list[endpoint_load.WrkResult]]
    totals: dict[str, Counter]
    lock_busy: float  # share of the check slices' wall time the portfolio row was held
    lock_mean_ms: float
    paths: Counter  # reserving checks by the path that answered them (snapshot, locked)
    load: str


def _throughput(wrk: str, servers, bots, limited, tmp_path: Path) -> Throughput:
    run_id = uuid.uuid4().hex[:8]
    scripts = {
        name: endpoint_load.write_lua(
            tmp_path / f"{name}.lua",
            method=kind.method,
            url_path=kind.path,
            clients=limited if kind.limited else bots,
            symbols=SYMBOLS,
            run_id=f"{run_id}{name}",
            mode=kind.mode,
            auth=kind.auth,
        )
        for name, kind in KINDS.items()
    }
    database = connection.settings_dict["NAME"]
    redis_port = django_settings.CACHES["default"]["LOCATION"].rsplit(":", 1)[1].split("/")[0]
    cpu_groups = {
        "bench server (2 workers)": servers["bench"].pids,
        "Flask stand-in": servers["flask"].pids if "flask" in servers else list,
        "make-run stack": servers["makerun"].pids if "makerun" in servers else list,
        "postgres (backends of this database)": lambda: endpoint_load.pids_matching(
            lambda comm, cmdline: comm.startswith("postgres") and f" {database} " in cmdline
        ),
        f"redis :{redis_port}": lambda: endpoint_load.pids_matching(
            lambda comm, cmdline: comm.startswith("redis-server") and f":{redis_port}" in cmdline
        ),
    }

    def run(name: str, seconds: float) -> endpoint_load.WrkResult:
        return endpoint_load.run_wrk(
            wrk,
            base_url=servers[KINDS[name].server].base_url,
            script=scripts[name],
            seconds=seconds,
            connections=CONNECTIONS,
            threads=WRK_THREADS,
        )

    for name in KINDS:  # warm up: connections, caches, JIT of wrk's Lua
        run(name, WARMUP_SECONDS)

    load = _load()
    runs: dict[str, list[endpoint_load.WrkResult]] = {name: [] for name in KINDS}
    cpu: dict[str, list[dict[str, float]]] = {name: [] for name in KINDS}
    waits: list[tuple[float, float]] = []
    held_sum = held_count = 0.0
    paths: Counter = Counter()
    profile = WorkerProfile(PROFILED_KINDS, tmp_path)
    for _ in range(ROUNDS):
        for name in KINDS:
            meter = endpoint_load.CpuMeter(cpu_groups)
            if name == "check":
                held_before = _lock_held(servers["bench"].base_url)
            meter.start()
            profile.start(name, workers=servers["bench"].pids()[1:], seconds=SLICE_SECONDS)
            with endpoint_load.LockWaitSampler(_dsn(), database) as sampler:
                result = run(name, SLICE_SECONDS)
            profile.wait()
            cores = meter.stop()
            if name == "check":
                held_after = _lock_held(servers["bench"].base_url)
                held_sum += held_after[0] - held_before[0]
                held_count += held_after[1] - held_before[1]
                paths.update(held_after[2])
                paths.subtract(held_before[2])
                waits.append((sampler.mean_active, sampler.mean_lock_waiting))
            cores["wrk (load generator)"] = result.wrk_cpu_seconds / result.seconds
            ours = sum(cores[group] for group in [*cpu_groups, "wrk (load generator)"])
            cores["other processes (not this benchmark)"] = cores["machine (all processes)"] - ours
            runs[name].append(result)
            cpu[name].append(cores)

    rates = {
        name: sum(r.counts[KINDS[name].counted] for r in results) / sum(r.seconds for r in results)
        for name, results in runs.items()
    }
    totals = {name: _combined(results) for name, results in runs.items()}
    check_seconds = sum(r.seconds for r in runs.get("check", []))
    print(
        f"\n-- Throughput, {CONNECTIONS} clients (wrk -t{WRK_THREADS} -c{CONNECTIONS}), {ROUNDS} rounds of "
        f"interleaved {SLICE_SECONDS} s slices; only {'2xx'} answers counted (429 for the 429 slices); "
        f"load average before: {load}"
    )
    for name, kind in KINDS.items():
        results = runs[name]
        slices = ", ".join(f"{r.counted_rate(kind.counted):,.0f}" for r in results)
        p50, p99 = _median(r.p50_ms for r in results), _median(r.p99_ms for r in results)
        total = totals[name]
        mix = ""
        if kind.method == "POST":
            mix = f"; approved {total['approved']:,}, pending {total['pending']:,}, rejected {total['rejected']:,}"
        others = {
            status: total[status]
            for status in ("s200", "s4xx", "s429", "s5xx", "sother", "errors")
            if status != kind.counted and total[status]
        }
        print(
            f"{kind.label:46} {rates[name]:7,.0f}/s (slices {slices}; p50 {p50:.1f} ms, p99 {p99:.1f} ms{mix}"
            f"{'; NOT COUNTED ' + str(others) if others else ''})"
        )
    first = next(iter(KINDS))
    capacity = _median(c["machine capacity"] for c in cpu[first])
    print(f"CPU, cores in use (mean of the slices; the machine has {capacity:.1f}):")
    groups = [group for group in cpu[first][0] if group != "machine capacity"]
    print(f"   {'':38} " + " ".join(f"{name:>7}" for name in KINDS))
    for group in groups:
        print(f"   {group:38} " + " ".join(f"{_mean(c[group] for c in cpu[name]):7.2f}" for name in KINDS))
    print(profile.report())
    print(
        f"PostgreSQL backends of this database during checks: {_mean(a for a, _ in waits):.1f} running a statement, "
        f"{_mean(w for _, w in waits):.1f} of them waiting on a lock (sampled every 10 ms)"
    )
    # The snapshot path's held time is PostgreSQL's (lock granted -> the statement's work done): its COMMIT's WAL
    # flush, measured here, is added to each, as the rows stay locked until it is done.
    flush = wal_flush_seconds(_dsn())
    snapshot_share = paths["snapshot"] / (paths["snapshot"] + paths["fallback"] + paths["locked"] or 1)
    held_sum += flush * held_count * snapshot_share
    print(f"WAL flush of a durable COMMIT on this server: {flush * 1000:.3f} ms (added to each snapshot-path hold)")
    return Throughput(
        rates=rates,
        slices=runs,
        totals=totals,
        lock_busy=held_sum / check_seconds if check_seconds else 0.0,
        lock_mean_ms=held_sum / held_count * 1000 if held_count else 0.0,
        paths=paths,
        load=load,
    )


def _combined(results: list[endpoint_load.WrkResult]) -> Counter:
    total: Counter = Counter()
    for result in results:
        total.update({name: value for name, value in result.counts.items() if isinstance(value, int)})
        total["errors"] += result.errors
    return total


# ---------------------------------------------------------------------------------------------- 2. latency
def _latency(server: endpoint_load.ServerProcess, bots, *, rate: float) -> endpoint_load.OpenLoopResult:
    run_id = uuid.uuid4().hex[:8]

    def make_request(number: int) -> bytes:
        account_id, token = bots[number % len(bots)]
        return endpoint_load.http_request(
            "POST", CHECK_PATH, token=token, body=_check_body(account_id, number, f"ol{run_id}")
        )

    result = endpoint_load.open_loop(server.base_url, rate=rate, seconds=OPEN_LOOP_SECONDS, make_request=make_request)
    print(
        f"\n-- Open loop at {rate:,.0f} req/s (half the measured check throughput), {OPEN_LOOP_SECONDS} s "
        f"({len(result.latencies_ms):,} checks, latency from each request's due time; load average {_load()})"
    )
    print(
        f"p50 {result.percentile(result.latencies_ms, 50):.2f} ms, p99 {result.percentile(result.latencies_ms, 99):.2f}"
        f" ms, p99.9 {result.percentile(result.latencies_ms, 99.9):.2f} ms, max {max(result.latencies_ms):.2f} ms"
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


# ---------------------------------------------------------------------------------------------- targets
def _verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def _print_targets(figures: Throughput, latency: endpoint_load.OpenLoopResult) -> None:
    rate = figures.rates
    p50 = latency.percentile(latency.latencies_ms, 50)
    p99 = latency.percentile(latency.latencies_ms, 99)
    rows = [
        ("1", "bare API GET / plain view, same middleware", rate["bare"] / rate["plain"], ">= 0.50", None),
        ("1", "   (plain view, same middleware / no middleware)", rate["plain"] / rate["nomw"], "reference", None),
        ("1", "   (bare API GET / no middleware)", rate["bare"] / rate["nomw"], "reference", None),
        ("2", "reserving check / bare API GET", rate["check"] / rate["bare"], ">= 0.50", None),
        ("2", "reserving check / Flask stand-in", rate["check"] / rate["flask"], ">= 0.25", None),
        ("2", "   (legacy dry run / Flask stand-in)", rate["legacy"] / rate["flask"], "reference", None),
        ("3", "portfolio row busy share of the check slices", figures.lock_busy, "<= 0.33", None),
        ("4", "open loop p50 (ms)", p50, "<= 5", None),
        ("4", "open loop p99 (ms)", p99, "<= 25", None),
        ("5", "dry run / reserving check (throughput)", rate["dry"] / rate["check"], ">= 0.90", None),
        ("5", "429 / bare API GET (throughput)", rate["r429"] / rate["bare"], ">= 0.90", None),
        ("6", "reserving check, make-run stack / bench server", rate["makerun"] / rate["check"], "0.80-1.20", None),
    ]
    checks = {
        ">= 0.50": lambda v: v >= 0.5,
        ">= 0.25": lambda v: v >= 0.25,
        ">= 0.90": lambda v: v >= 0.9,
        "<= 0.33": lambda v: v <= 1 / 3,
        "<= 5": lambda v: v <= 5,
        "<= 25": lambda v: v <= 25,
        "0.80-1.20": lambda v: 0.8 <= v <= 1.2,
    }
    print(f"\n-- TARGETS (one run; throughput load average before {figures.load}; the ratios are what count)")
    print("   " + "; ".join(f"{KINDS[name].label} {value:,.0f}/s" for name, value in rate.items()))
    print(f"   portfolio row held {figures.lock_mean_ms:.2f} ms a reserving check (mean, lock granted -> COMMIT)")
    by_path = ", ".join(f"{path} {count:,.0f}" for path, count in sorted(figures.paths.items()))
    print(f"   reserving checks by the path that answered them: {by_path}")
    for number, label, value, target, _ in rows:
        verdict = "" if target == "reference" else _verdict(checks[target](value))
        print(f"   {number}  {label:52} {value:9.2f}   target {target:10} {verdict}")


def _print_mix_from_database() -> None:
    rows = Position.objects.values("status").annotate(n=Count("id")).order_by("-n")
    print("positions written (all phases), by status: " + ", ".join(f"{row['status']} {row['n']:,}" for row in rows))


# ---------------------------------------------------------------------------------------------- 3. profile
def _profile(bots, settings, monkeypatch) -> None:
    """One check in process: statements, Redis commands, and where its time goes. The app's log lines (stdout of
    this process) go to /dev/null meanwhile, as the server's go to its log file."""
    settings.RATE_LIMITS = {scope: dict.fromkeys(tiers, (10**9, 60)) for scope, tiers in settings.RATE_LIMITS.items()}
    settings.MARKET_PRICE_TTL = 3600
    settings.ROOT_URLCONF = "tests.bench.bench_urls"
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
        check_cpu_ms = _median_ms(post_check, PROFILE_ITERATIONS, clock=time.thread_time)
        bare_cpu_ms = _median_ms(lambda: client.get(BARE_PATH), PROFILE_ITERATIONS, clock=time.thread_time)
        plain_cpu_ms = _median_ms(lambda: client.get("/bench/plain"), PROFILE_ITERATIONS, clock=time.thread_time)
        phases = _service_phases(account_id, monkeypatch)
        body = _check_body(account_id, 0, "x")
        validation_ms = _median_ms(lambda: CheckPositionInput(data=body).is_valid(raise_exception=True), 2000)
        light_ms = _median_ms(lambda: _light_validation(body), 2000)

    print(
        f"\n-- 3. Profile of one check, in process (Django test client, same database and Redis, "
        f"medians of {PROFILE_ITERATIONS}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(f"SQL statements per check over the API: {len(one_check)} (each its own transaction, in autocommit):")
    for started, finished, sql in one_check:
        print(f"   {(finished - started) * 1000:6.3f} ms  {' '.join(sql.split())[:105]}")
    check_trips, bare_trips = redis_per_check.pop(ROUND_TRIPS), redis_per_bare.pop(ROUND_TRIPS)
    print(
        f"Redis commands per check: {sum(redis_per_check.values()):g} "
        f"({', '.join(f'{name} {calls:g}' for name, calls in sorted(redis_per_check.items()))}); "
        f"per bare GET: {sum(redis_per_bare.values()):g}; round trips of the request's thread: check {check_trips:g}, "
        f"bare GET {bare_trips:g}"
    )
    print(
        f"whole request in process: check {request_ms:.3f} ms, bare GET {bare_ms:.3f} ms "
        f"(the check's own cost: {request_ms - bare_ms:.3f} ms)"
    )
    print(
        f"CPU time of the request's thread (robust to other load on the machine): check {check_cpu_ms:.3f} ms, "
        f"bare GET {bare_cpu_ms:.3f} ms, plain view through the middleware {plain_cpu_ms:.3f} ms"
    )
    print(
        f"   validation, DRF CheckPositionInput.is_valid        {validation_ms:.3f} ms  "
        f"(a plain-Python parse of the same fields: {light_ms:.3f} ms)"
    )
    for name, value in phases.items():
        print(f"   {name:50} {value:.3f} ms")
    held = phases[HELD]
    print(
        f"   => the portfolio row is held about {held:.3f} ms a check (at most the reserving statement's round trip),"
        f" so checks serialize at <= {1000 / held:,.0f} /s however many workers run"
    )


HELD = "the reserving statement, COMMIT included (row locks held)"


class StatementClock:
    """A Django execute wrapper timing every statement."""

    def __init__(self) -> None:
        self.statements: list[tuple[float, float, str]] = []

    def reset(self) -> None:
        self.statements.clear()

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((started, time.perf_counter(), sql))


def _redis_commands(call, times: int = 100) -> dict[str, float]:
    """Redis commands per call (commandstats: every process and thread, commands run inside scripts included), and
    under ROUND_TRIPS the packets this thread sent (one per command or script, one per pipeline)."""
    redis = get_redis_connection("default")
    redis.config_resetstat()
    with redis_round_trips() as trips:
        for _ in range(times):
            call()
    stats = redis.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): data["calls"] / times
        for name, data in stats.items()
        if name != "cmdstat_config|resetstat"
    } | {ROUND_TRIPS: trips[0] / times}


ROUND_TRIPS = "round trips of the request's thread"


def _service_phases(account_id: int, monkeypatch) -> dict[str, float]:
    """position_check called directly (no HTTP, no DRF), as the API calls it (no explicit time: the snapshot path),
    its time split at its two statements: the unlocked read and the reserving statement (autocommit: it holds the
    rows from its lock to its COMMIT, within its own round trip)."""
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
            outcome = position_check(request=request, user_id=user_id, correlation_id="bench")
            end = time.perf_counter()
            assert outcome.decision == "approved"
            (read_start, read_end, _), (reserve_start, reserve_end, reserve_sql) = clock.statements
            assert "risk_check_reserve(" in reserve_sql  # the snapshot path, as the API takes it
            for name, value in {
                "position_check, the whole service call": end - start,
                "before the first statement (permission, mark)": read_start - start,
                "the snapshot read (no lock)": read_end - read_start,
                "Python between (engine, bounds, the position)": reserve_start - read_end,
                "   of which the pure engine (evaluate)": engine["seconds"],
                HELD: reserve_end - reserve_start,
                "after COMMIT (publish the event, return)": end - reserve_end,
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
def _median_ms(call, iterations: int, clock=time.perf_counter) -> float:
    samples = []
    for _ in range(iterations):
        start = clock()
        call()
        samples.append((clock() - start) * 1000)
    return statistics.median(samples)


def _median(values) -> float:
    return statistics.median(list(values))


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
