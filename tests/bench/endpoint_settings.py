"""Settings of the gunicorn server that tests/bench/bench_check_endpoint.py measures: the test settings, plus the
changes that make it serve like production rather than like a test run.

- Persistent database connections (production's CONN_MAX_AGE): the test settings close the connection after
  every request, which would add a PostgreSQL connection set-up to every check but not to the bare GET (it needs no
  query), and so measure the settings rather than the code.
- Durable commits: the test settings turn synchronous_commit off for their connections; the server commits like
  production, each commit waiting for the disk (the benchmark prints the settings its server ran with).
- Rate limits lifted: every scope and tier allows a billion requests a minute. The limiter still runs (one EVALSHA
  a request, as in production); it just never says no, so the benchmark measures the endpoints, not the limits.
  One row is the exception: the `pro` tier of the `default` scope allows one request an hour, so a `pro` bot's
  GETs measure the cost of a 429 (target 5).
- URLs: the project's plus the plain JSON view of target 1 (tests/bench/bench_urls.py, bench_wsgi.py).

The database (DATABASE_URL) and Redis (TEST_REDIS_URL) come from the environment the benchmark sets.
"""

from nija.settings.test import *  # noqa: F403
from nija.settings.test import DATABASES, RATE_LIMITS

DATABASES["default"]["CONN_MAX_AGE"] = 60
DATABASES["default"]["OPTIONS"].pop("options", None)

LIFTED_LIMIT = (1_000_000_000, 60)
LIMITED_TIER = "pro"
RATE_LIMITS = {scope: dict.fromkeys(tiers, LIFTED_LIMIT) for scope, tiers in RATE_LIMITS.items()}
RATE_LIMITS["default"][LIMITED_TIER] = (1, 3600)

ROOT_URLCONF = "tests.bench.bench_urls"
