"""Settings shared by every environment, read from environment variables (12-factor).

Local runs also read `var/.env` (written by `make run` / `make test` with a development credentials key),
so a fresh clone works without exporting anything.
"""

import logging
from decimal import Decimal
from pathlib import Path

import environ

from logs.config import build_logging, configure_structlog

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (VAR_DIR / ".env").exists():
    # Values already in the environment win over the file.
    env.read_env(str(VAR_DIR / ".env"), overwrite=False)

# ------------------------------------------------------------------------------------------------
# Core
# ------------------------------------------------------------------------------------------------
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
ROOT_URLCONF = "nija.urls"
# JSON under /api/, Django's page elsewhere (nija/urls.py).
CSRF_FAILURE_VIEW = "nija.urls.csrf_failure"
WSGI_APPLICATION = "nija.wsgi.application"
ASGI_APPLICATION = "nija.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# Paths have no trailing slash: never redirect to add one.
APPEND_SLASH = False
# How many proxies of ours stand in front of the server: X-Forwarded-For is read that far and no further
# (nija/client_ip.py). 0 (the default, `make run`): the header is ignored. 1: the compose proxy (docker/).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True


# ------------------------------------------------------------------------------------------------
# Applications
# ------------------------------------------------------------------------------------------------
DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "django_structlog",
    "django_eventstream",
    "drf_spectacular_sidecar",
    "corsheaders",
]
LOCAL_APPS = [
    "accounts",
    "trading",
    "risk",
    "monitoring",
    "logs",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    # Outermost: Prometheus request counts and latency by route (nija/metrics.py), the 413s below included.
    "nija.metrics.MetricsMiddleware",
    # Then: sets and echoes X-Request-ID, also on the 413 the next middleware answers before any other layer.
    "logs.middleware.RequestIdMiddleware",
    "nija.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the process itself (no CDN, no separate file server needed), before any other work.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # django-csp's, the headers built once while no view changes the policy (nija/middleware.py).
    "nija.middleware.CachedPolicyCSPMiddleware",
    # Credentialed CORS for the event stream only (the page on the web origin reads the events origin).
    "corsheaders.middleware.CorsMiddleware",
    # Sessions, session authentication and messages: Django's, skipped by /api/ requests that carry a bearer
    # token (DRF authenticates those by the token alone; nija/middleware.py). The pages and admin keep them.
    "nija.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "nija.middleware.BrowserAuthenticationMiddleware",
    # After authentication, so session users are bound (user_id) from the request's first line.
    "django_structlog.middlewares.RequestMiddleware",
    "nija.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # X-RateLimit-* headers from the API throttle's decision (nija/api/throttling.py).
    "nija.api.throttling.RateLimitHeadersMiddleware",
    # POSTs to the admin login page, per client address (RATE_LIMITS["admin_login"]).
    "nija.admin_login.AdminLoginRateLimitMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide templates (the API docs pages); apps keep their own under <app>/templates.
        "DIRS": [BASE_DIR / "nija" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ------------------------------------------------------------------------------------------------
# Local services (scripts/services.sh): used only when DATABASE_URL / REDIS_URL are not set.
# ------------------------------------------------------------------------------------------------
PG_PORT = env.int("PG_PORT", default=54329)
REDIS_PORT = env.int("REDIS_PORT", default=63799)

# ------------------------------------------------------------------------------------------------
# Database: PostgreSQL is the only system of record (no SQLite, tests included).
# ------------------------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"postgres://nija@127.0.0.1:{PG_PORT}/nija"),
}
DATABASES["default"].setdefault("OPTIONS", {})
# Django's PostgreSQL backend, whose health check below asks the socket before the server (nija/db/postgresql).
DATABASES["default"]["ENGINE"] = "nija.db.postgresql"
# A dead server must fail fast (the health probe and the fail-closed risk gate depend on it).
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=3))
# psycopg2 has no pool in Django: keep connections, and check them before reuse (no round trip for a healthy one).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# ------------------------------------------------------------------------------------------------
# Redis: cache (db 0 by default) and Celery broker (db 1 by default), separate database numbers.
# ------------------------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default=f"redis://127.0.0.1:{REDIS_PORT}/0")
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.5)
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=50)
# Seconds a request waits for a free pooled connection before a Redis error (then: fail soft / open / closed).
REDIS_POOL_TIMEOUT = env.float("REDIS_POOL_TIMEOUT", default=1.0)


def _redis_db_url(url: str, db: int) -> str:
    """The same Redis server as `url`, another database number."""
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "nija",
        # Keys are `nija:<namespace>:<key>` (nija/cache.py), no version segment.
        "KEY_FUNCTION": "nija.cache.make_key",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            # Blocking: a burst beyond max_connections queues up to REDIS_POOL_TIMEOUT for a free connection
            # (redis-py's default ConnectionPool raises "Too many connections" at once instead).
            "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
            "CONNECTION_POOL_KWARGS": {"max_connections": REDIS_MAX_CONNECTIONS, "timeout": REDIS_POOL_TIMEOUT},
            # JSON only: pickle is never read back from Redis.
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
        },
    }
}

# Sessions: cached_db (PostgreSQL is the record, so a Redis restart logs nobody out), cached under
# `nija:session:<key>` on the default cache (nija/sessions.py).
SESSION_ENGINE = "nija.sessions"
SESSION_CACHE_ALIAS = "default"
# A session's cache entry lives at most this long (PostgreSQL is the record): an entry that outlives its row
# (a logout during a Redis hiccup) stops authenticating within this many seconds.
SESSION_CACHE_TTL = env.int("SESSION_CACHE_TTL", default=300)

# Market prices (trading/market.py): a price older than this many seconds reads as missing.
MARKET_PRICE_TTL = env.int("MARKET_PRICE_TTL", default=60)

# ------------------------------------------------------------------------------------------------
# Rate limits (nija/api/throttling.py): (requests, window_seconds) per scope and tier, exact sliding windows.
# A view picks its scope with `throttle_scope`; `operator` is operator tokens and staff sessions.
# ------------------------------------------------------------------------------------------------
RATE_LIMITS = {
    "default": {
        "anonymous": (60, 60),
        "free": (120, 60),
        "basic": (600, 60),
        "pro": (1200, 60),
        "enterprise": (6000, 60),
        "operator": (6000, 60),
    },
    # POST /api/risk/check-position: tighter, and fail closed.
    "risk_check": {
        "free": (60, 60),
        "basic": (300, 60),
        "pro": (600, 60),
        "enterprise": (1200, 60),
        "operator": (1200, 60),
    },
    # GET /api/health: anyone may ask, per client address.
    "health": {"anonymous": (60, 60)},
    # POST /admin/login/ (nija/admin_login.py, not a DRF throttle): attempts per client address.
    "admin_login": {"anonymous": (10, 300)},
    # PUT /api/market/{symbol}: price feeds write often.
    "market_write": {
        "free": (1200, 60),
        "basic": (3000, 60),
        "pro": (6000, 60),
        "enterprise": (12000, 60),
        "operator": (12000, 60),
    },
}
# With Redis unreachable these scopes answer 503 `rate_limiter_unavailable`; the others let requests through
# (logged and counted).
RATE_LIMIT_FAIL_CLOSED_SCOPES = ["risk_check"]

# ------------------------------------------------------------------------------------------------
# Celery (broker on its own Redis database; results are not stored: tasks write to PostgreSQL)
# ------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=_redis_db_url(REDIS_URL, 1))


CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
# The schedule lives in django-celery-beat's tables (editable in admin), never in a static setting,
# which beat would copy over admin edits at every start.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# ------------------------------------------------------------------------------------------------
# Broker credentials encryption (accounts/crypto.py): Fernet keys, comma-separated, newest first.
# The first encrypts, every key decrypts. Missing or malformed: start-up stops (accounts.apps).
# ------------------------------------------------------------------------------------------------
CREDENTIALS_KEYS = env.list("CREDENTIALS_KEYS", default=[])

# ------------------------------------------------------------------------------------------------
# API conventions (nija/api/)
# ------------------------------------------------------------------------------------------------
API_MAX_BODY_BYTES = 64 * 1024
# Django's own check applies to form posts (admin); the API middleware answers 413 before it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["nija.api.renderers.DecimalJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["nija.api.parsers.DecimalJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["nija.api.throttling.SlidingWindowThrottle"],
    "DEFAULT_PAGINATION_CLASS": "nija.api.pagination.CappedPageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "nija.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Money travels as strings both ways.
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # DRF's own client address (BaseThrottle.get_ident) agrees with nija.client_ip.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "NIJA control plane API",
    "DESCRIPTION": "Risk, monitoring, persistence and logging backbone of the NIJA trading platform.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from the project's own static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets that share the field name `status` get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "LimitUsageStatusEnum": ["ok", "near", "breached"],
        "HealthStatusEnum": ["ok", "unavailable"],
    },
}

# ------------------------------------------------------------------------------------------------
# Static files: served by every process itself through WhiteNoise (admin, API docs, the dashboard page).
# Production collects them (`collectstatic`, done in the image) into STATIC_ROOT with hashed, compressed names;
# local and test settings serve them straight from the apps (no collect step).
# ------------------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "nija" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# ------------------------------------------------------------------------------------------------
# Origins: the web process (API, admin, pages) and the events process (the SSE stream). Under `make run` they
# are two ports of 127.0.0.1; behind the production proxy both are the one public origin (set both to it).
# ------------------------------------------------------------------------------------------------
WEB_PORT = env.int("WEB_PORT", default=env.int("PORT", default=8000))
EVENTS_PORT = env.int("EVENTS_PORT", default=8001)
WEB_ORIGINS = env.list("WEB_ORIGINS", default=[f"http://127.0.0.1:{WEB_PORT}", f"http://localhost:{WEB_PORT}"])
EVENTS_ORIGINS = env.list(
    "EVENTS_ORIGINS", default=[f"http://127.0.0.1:{EVENTS_PORT}", f"http://localhost:{EVENTS_PORT}"]
)

# Content-Security-Policy (django-csp): pages load only the project's own files and talk only to the project's
# own origins. ReDoc runs its search in a `blob:` worker (its page alone also allows inline styles: nija/api/docs.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'", *EVENTS_ORIGINS],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# CORS (django-cors-headers) only for the event stream: the page on a web origin opens it with its session
# cookie (EventSource `withCredentials`), so the answer names the origin and allows credentials.
CORS_ALLOWED_ORIGINS = WEB_ORIGINS
CORS_ALLOW_CREDENTIALS = True
CORS_URLS_REGEX = r"^/api/metrics/stream$"

# ------------------------------------------------------------------------------------------------
# Live events (Server-Sent Events on the events process; nija/events.py publishes, monitoring/stream.py serves)
# ------------------------------------------------------------------------------------------------
# Pub/sub ignores database numbers: every process that shares this Redis shares the fan-out channel.
EVENTS_REDIS_URL = env("EVENTS_REDIS_URL", default=REDIS_URL)
# Events kept per channel for `Last-Event-ID` replays, and how long a silent channel's events are kept.
EVENTS_REPLAY_MAXLEN = env.int("EVENTS_REPLAY_MAXLEN", default=1000)
EVENTS_REPLAY_TTL_SECONDS = env.int("EVENTS_REPLAY_TTL_SECONDS", default=24 * 3600)
# Events waiting in a process for the background publisher; past it they are dropped and counted.
EVENTS_PUBLISH_QUEUE_SIZE = env.int("EVENTS_PUBLISH_QUEUE_SIZE", default=10_000)
# Open streams one token (or one operator's session) may hold at once, across every events process.
EVENTS_MAX_STREAMS_PER_TOKEN = env.int("EVENTS_MAX_STREAMS_PER_TOKEN", default=5)
# How often each events process asks whether its open streams' credentials still stand (a revoked token, a
# logged-out session, a deactivated account or user, an operator no longer staff): those streams are then ended.
EVENTS_CREDENTIALS_RECHECK_SECONDS = env.float("EVENTS_CREDENTIALS_RECHECK_SECONDS", default=15.0)
# The fan-out listener pings Redis this often; silence for three pings counts as a dead connection.
EVENTS_LISTENER_PING_SECONDS = env.float("EVENTS_LISTENER_PING_SECONDS", default=5.0)
EVENTSTREAM_STORAGE_CLASS = "nija.event_store.RedisStreamStorage"
EVENTSTREAM_CHANNELMANAGER_CLASS = "monitoring.stream.StreamChannelManager"

# ------------------------------------------------------------------------------------------------
# Health probes
# ------------------------------------------------------------------------------------------------
HEALTH_PROBE_TIMEOUT = env.float("HEALTH_PROBE_TIMEOUT", default=1.0)
# /api/health reuses a probe round this many seconds (one round at a time per process, however many callers).
HEALTH_CACHE_SECONDS = env.float("HEALTH_CACHE_SECONDS", default=1.0)

# ------------------------------------------------------------------------------------------------
# Logging (the logs/ app owns it): one JSON object per line on stdout, rotating files
# when LOG_DIR is set, the recent-log Redis stream (nija:logs:recent, exactly the newest 10,000 entries).
# ------------------------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_DIR = env("LOG_DIR", default="")
LOG_STREAM_ENABLED = env.bool("LOG_STREAM_ENABLED", default=True)
LOG_STREAM_QUEUE_SIZE = env.int("LOG_STREAM_QUEUE_SIZE", default=10_000)
LOGGING = build_logging(
    level=LOG_LEVEL, log_dir=LOG_DIR, stream_enabled=LOG_STREAM_ENABLED, queue_size=LOG_STREAM_QUEUE_SIZE
)
configure_structlog()

# django-structlog: the request id comes from logs.middleware.RequestIdMiddleware, which has already replaced
# a missing or unsafe X-Request-ID with a fresh uuid4, so trusting the (rewritten) header here is deliberate.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True
# The `ip` of every line is bound by logs.middleware.RequestIdMiddleware from nija.client_ip; django-structlog's
# own (django-ipware) believes X-Forwarded-For from anyone.
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# An SSE client going away is normal operation, not a warning.
DJANGO_STRUCTLOG_REQUEST_CANCELLED_LOG_LEVEL = logging.INFO
# One line per request: `request_finished` (status, request id, user, account, and for a check its decision). The
# start line is DEBUG, below LOG_LEVEL's default, so it costs a level test instead of a formatted, redacted line.
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG
# Celery must keep Django's logging (logs/celery.py answers its setup_logging signal) and the real stdout.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS = False

# ------------------------------------------------------------------------------------------------
# Risk gate: how long a check may wait for a row lock or run a statement before it fails closed (503)
# ------------------------------------------------------------------------------------------------
RISK_LOCK_TIMEOUT_MS = env.int("RISK_LOCK_TIMEOUT_MS", default=2000)
RISK_STATEMENT_TIMEOUT_MS = env.int("RISK_STATEMENT_TIMEOUT_MS", default=5000)
# How often beat expires reservations past their TTL (seconds).
RISK_EXPIRY_INTERVAL_SECONDS = env.int("RISK_EXPIRY_INTERVAL_SECONDS", default=15)
# How often beat takes accounts with a stale equity report (or deactivated) out of portfolio equity (seconds).
RISK_ACCOUNT_SWEEP_INTERVAL_SECONDS = env.int("RISK_ACCOUNT_SWEEP_INTERVAL_SECONDS", default=15)

# ------------------------------------------------------------------------------------------------
# Alerts (monitoring.alerts): delivery of notifications to webhooks and Apprise targets
# ------------------------------------------------------------------------------------------------
# Targets resolving to private, loopback or link-local addresses are refused unless this is set.
ALERT_ALLOW_PRIVATE_TARGETS = env.bool("ALERT_ALLOW_PRIVATE_TARGETS", default=False)
ALERT_DELIVERY_TIMEOUT_SECONDS = env.float("ALERT_DELIVERY_TIMEOUT_SECONDS", default=5.0)
ALERT_DELIVERY_MAX_ATTEMPTS = env.int("ALERT_DELIVERY_MAX_ATTEMPTS", default=6)
# Retry n waits base x 2^(n-1) seconds (capped), jittered between half of that and all of it.
ALERT_DELIVERY_BACKOFF_SECONDS = env.float("ALERT_DELIVERY_BACKOFF_SECONDS", default=10.0)
ALERT_DELIVERY_BACKOFF_CAP_SECONDS = env.float("ALERT_DELIVERY_BACKOFF_CAP_SECONDS", default=600.0)
# Window of the rejection_rate and critical_events figures (seconds).
ALERT_FIGURE_WINDOW_SECONDS = env.int("ALERT_FIGURE_WINDOW_SECONDS", default=900)

# ------------------------------------------------------------------------------------------------
# Monitoring: the desk aggregation, its history and the analytics (monitoring/)
# ------------------------------------------------------------------------------------------------
# Beat intervals written by `sync_schedule` on first sync (the schedule then belongs to admin).
MONITORING_INTERVAL_SECONDS = env.int("MONITORING_INTERVAL_SECONDS", default=5)
MONITORING_ANALYTICS_INTERVAL_SECONDS = env.int("MONITORING_ANALYTICS_INTERVAL_SECONDS", default=900)
MONITORING_PRUNE_INTERVAL_SECONDS = env.int("MONITORING_PRUNE_INTERVAL_SECONDS", default=3600)
MONITORING_HEARTBEAT_INTERVAL_SECONDS = env.int("MONITORING_HEARTBEAT_INTERVAL_SECONDS", default=10)
# The heartbeat watchdog releases at most this many reservations of silent bots a run (the next run goes on).
MONITORING_HEARTBEAT_RELEASE_BATCH = env.int("MONITORING_HEARTBEAT_RELEASE_BATCH", default=500)
# How long the cached snapshot lives in Redis (readers show its age; past this it is gone: 503).
MONITORING_SNAPSHOT_TTL_SECONDS = env.int("MONITORING_SNAPSHOT_TTL_SECONDS", default=3600)
# A limit used at this fraction or more is "near" (1 or more: breached).
MONITORING_NEAR_LIMIT = Decimal(env.str("MONITORING_NEAR_LIMIT", default="0.80"))
# How many accounts the snapshot lists (nearest their limits, largest exposure).
MONITORING_SNAPSHOT_LIST_SIZE = env.int("MONITORING_SNAPSHOT_LIST_SIZE", default=20)
# Retention of the once-a-minute history: the portfolio's rows, and each account's points (10,000 accounts write
# 14.4 million points a day).
MONITORING_HISTORY_RETENTION_DAYS = env.int("MONITORING_HISTORY_RETENTION_DAYS", default=90)
MONITORING_ACCOUNT_HISTORY_RETENTION_DAYS = env.int("MONITORING_ACCOUNT_HISTORY_RETENTION_DAYS", default=7)
# Analytics: days of daily statistics they read, and how many accounts (largest exposure) are correlated.
MONITORING_ANALYTICS_WINDOW_DAYS = env.int("MONITORING_ANALYTICS_WINDOW_DAYS", default=90)
MONITORING_CORRELATION_ACCOUNTS = env.int("MONITORING_CORRELATION_ACCOUNTS", default=50)

# ------------------------------------------------------------------------------------------------
# Prometheus (nija/metrics.py): /metrics needs `Authorization: Bearer <METRICS_TOKEN>` when set; unset, it is
# served to loopback peers only. PROMETHEUS_MULTIPROC_DIR (read by prometheus_client from the environment) is
# set and emptied before the processes start (`make run`, docker/compose.yml).
# ------------------------------------------------------------------------------------------------
METRICS_TOKEN = env("METRICS_TOKEN", default="")
