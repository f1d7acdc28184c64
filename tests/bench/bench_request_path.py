"""The request machinery of a bearer-token API request, in process: what a bare authenticated GET costs on top of a
plain JSON view through the same middleware (`make bench`'s target 1, without the servers).

Prints, for a bare GET of /api/market/BTC-USD with a bot token, the same GET by FLEET bots in turn (each request then
also a heartbeat, as under load), the same GET with a cookie session, and the plain
view of tests/bench/bench_urls.py: the median CPU time of the request's thread (robust to other load on the
machine), Redis commands (Redis's own commandstats, commands run inside scripts included) and Redis round trips
(packets the client sent) per request. `BENCH_CPROFILE=1` also prints the bare GET's cProfile, by own time and
cumulative time.

Run: `NIJA_TEST_DB_SUFFIX=_x TEST_REDIS_PORT=6380x .venv/bin/pytest tests/bench/bench_request_path.py -s -q
-o addopts=""`. It asserts only that the answers are right.
"""

import cProfile
import itertools
import os
import pstats
import statistics
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from accounts.models import TokenKind
from tests.accounts.factories import OperatorFactory, issue_token
from tests.bench import endpoint_load
from tests.redis_round_trips import redis_round_trips
from tests.risk.conftest import funded_account
from trading.market import market_price_set

ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "1000"))
FLEET = 512
BARE_PATH = "/api/market/BTC-USD"
PLAIN_PATH = "/bench/plain"


@pytest.mark.django_db(transaction=True)
def test_request_path_profile(redis_client, settings):
    settings.ROOT_URLCONF = "tests.bench.bench_urls"
    settings.RATE_LIMITS = {scope: dict.fromkeys(tiers, (10**9, 60)) for scope, tiers in settings.RATE_LIMITS.items()}
    settings.MARKET_PRICE_TTL = 3600
    account = funded_account(Decimal("1000000"))
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(TokenKind.BOT, instance=account)}")
    # As under load: many bots, each request's heartbeat due (at most one write a second per bot).
    fleet = [f"Bearer {issue_token(TokenKind.BOT)}" for _ in range(FLEET)]
    turns = itertools.cycle(fleet)
    session = Client()
    session.force_login(OperatorFactory())
    plain = Client()
    market_price_set(symbol="BTC-USD", price=Decimal("50000"))
    calls: dict[str, Callable[[], object]] = {
        "bare GET, bearer token": lambda: _ok(bearer.get(BARE_PATH)),
        f"bare GET, {FLEET} bots in turn": lambda: _ok(plain.get(BARE_PATH, HTTP_AUTHORIZATION=next(turns))),
        "bare GET, session cookie": lambda: _ok(session.get(BARE_PATH)),
        "plain view through the middleware": lambda: _ok(plain.get(PLAIN_PATH)),
    }
    with endpoint_load.stdout_to_devnull():
        for call in calls.values():
            for _ in range(50):  # warm: token cache, connections, imports
                call()
        figures = {name: _figures(call) for name, call in calls.items()}
        profile = _cprofile(calls["bare GET, bearer token"]) if os.environ.get("BENCH_CPROFILE") else None
    print(f"\n== request path in process (medians of {ITERATIONS}; load average {os.getloadavg()[0]:.1f})")
    for name, (cpu_ms, commands, trips) in figures.items():
        print(
            f"   {name:34} thread CPU {cpu_ms:.3f} ms   Redis round trips {trips:5.2f}   "
            f"commands {sum(commands.values()):5.2f} ({', '.join(f'{c} {n:g}' for c, n in sorted(commands.items()))})"
        )
    bare, plain_cpu = figures["bare GET, bearer token"][0], figures["plain view through the middleware"][0]
    print(f"   plain view / bare GET, CPU: {plain_cpu / bare:.2f} (target 1 wants the throughput ratio >= 0.5)")
    if profile is not None:
        for key in ("tottime", "cumulative"):
            print(f"\n-- cProfile of {ITERATIONS} bare GETs, by {key}")
            pstats.Stats(profile).sort_stats(key).print_stats(35)


def _ok(response) -> None:
    assert response.status_code == 200, response.content


def _figures(call: Callable[[], object]) -> tuple[float, dict[str, float], float]:
    samples = []
    for _ in range(ITERATIONS):
        start = time.thread_time()
        call()
        samples.append((time.thread_time() - start) * 1000)
    redis = get_redis_connection("default")
    redis.config_resetstat()
    with redis_round_trips(this_thread_only=False) as trips:
        for _ in range(100):
            call()
    stats = redis.info("commandstats")
    by_name = {name.removeprefix("cmdstat_"): data["calls"] / 100 for name, data in stats.items()}
    by_name.pop("config|resetstat", None)
    return statistics.median(samples), by_name, trips[0] / 100


def _cprofile(call: Callable[[], object]) -> cProfile.Profile:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(ITERATIONS):
        call()
    profile.disable()
    return profile
