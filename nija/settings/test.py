"""Test suite: real PostgreSQL and a Redis server of its own (never the one `make run` uses).

The suite's Redis runs on TEST_REDIS_PORT (default 63800) so pub/sub channels never mix with a dev server.
NIJA_TEST_DB_SUFFIX lets two checkouts run their suites against one PostgreSQL cluster side by side.
"""

import atexit
import os
import shutil
import tempfile

from .base import *  # noqa: F403
from .base import CACHES, DATABASES, _redis_db_url, env

DEBUG = False
SECRET_KEY = "test-only-not-secret"  # noqa: S105 - test settings only
ALLOWED_HOSTS = ["*"]

TEST_REDIS_URL = env("TEST_REDIS_URL", default=f"redis://127.0.0.1:{env.int('TEST_REDIS_PORT', default=63800)}/0")
REDIS_URL = TEST_REDIS_URL
CACHES["default"]["LOCATION"] = TEST_REDIS_URL
CELERY_BROKER_URL = _redis_db_url(TEST_REDIS_URL, 1)
EVENTS_REDIS_URL = TEST_REDIS_URL

DATABASES["default"]["TEST"] = {"NAME": "test_nija" + env("NIJA_TEST_DB_SUFFIX", default="")}
# Connections closed after each request, unless a test server asks to keep them as production does.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
# The suite's commits do not wait for the disk: its data is thrown away. Per connection, so the cluster it shares
# with `make run` stays durable (fsync and full_page_writes are server-wide and stay on).
DATABASES["default"]["OPTIONS"]["options"] = "-c synchronous_commit=off"

# Fixed, test-only Fernet key (never used outside the test suite).
CREDENTIALS_KEYS = ["dGVzdC1vbmx5LWNyZWRlbnRpYWxzLWtleS0wMDAwMDA="]

# The default hasher costs ~0.5 s a hash here; tests hash many passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Static files straight from the apps, as under `make run` (no collect step before the suite).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Prometheus multiprocess mode, as under `make run`: a fresh directory for this test run (set before any metric
# exists: nija.metrics is first imported when the middleware loads, after these settings).
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="nija-test-prometheus-")
    atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
METRICS_TOKEN = ""
