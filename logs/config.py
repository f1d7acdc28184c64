"""The one logging configuration of every process (web, events, worker, beat, management commands).

structlog loggers and plain `logging` loggers (Django, Celery, third-party libraries) end in the same
`JsonFormatter`: one JSON object per line with timestamp (UTC ISO-8601), level, logger, event, the bound
context (request_id, user_id, account_id, task_id ...) and exceptions as structured tracebacks, with secrets
redacted before the line exists, so no sink can ever see them.

`build_logging()` returns the `LOGGING` dict the settings use; `configure_structlog()` is called once, from
the settings module, so it runs in every process before anything logs.
"""

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer

from logs.redaction import redact_secrets, redact_text
from logs.sinks import DEFAULT_DROPS_KEY, DEFAULT_MAXLEN, DEFAULT_QUEUE_SIZE, DEFAULT_STREAM_KEY

FILE_MAX_BYTES = 10 * 1024 * 1024
FILE_BACKUP_COUNT = 10
DAILY_BACKUP_COUNT = 14

# Locals of a traceback frame can hold anything (a token, a decrypted key): never rendered.
_render_exception = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))


def _json_default(value: Any) -> Any:
    """Decimal as a string; any other object the redaction processor let through as redacted text (a backstop)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return redact_text(str(value))


_LEADING_KEYS = ("timestamp", "level", "logger", "event", "request_id", "user_id", "account_id")


def _render_json(logger: object, method_name: str, event_dict: dict[str, Any]) -> str:
    """One line of JSON, the keys every line shares first (easier to read in a terminal)."""
    ordered = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    try:
        return orjson.dumps(ordered, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what orjson refuses (a lone surrogate, an integer beyond 64 bits): the standard library
        return json.dumps(ordered, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _add_pid(logger: object, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """The writing process: lines from several gunicorn or Celery children interleave in every sink."""
    record = event_dict.get("_record")
    if record is not None:
        event_dict.setdefault("pid", record.process)
    return event_dict


def _add_request_id_of_record(logger: object, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """django.request logs a 4xx/5xx after every middleware has returned, when the request's bound context is
    already cleared: the request it attaches still carries the id `RequestIdMiddleware` gave it."""
    request_id = getattr(getattr(event_dict.get("_record"), "request", None), "request_id", None)
    if isinstance(request_id, str):
        event_dict.setdefault("request_id", request_id)
    return event_dict


# Run for every line, structlog or stdlib, before the formatter's own processors.
SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
]
# stdlib records only: their `extra={...}` fields become keys of the line (and pass redaction like any key).
FOREIGN_PRE_CHAIN: list[Any] = [*SHARED_PROCESSORS, structlog.stdlib.ExtraAdder()]


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """Renders a record once, whatever the number of handlers (stdout, files, stream) it goes through."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            processors=[
                _add_pid,
                _add_request_id_of_record,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _render_exception,
                redact_secrets,
                _render_json,
            ],
            foreign_pre_chain=FOREIGN_PRE_CHAIN,
            **kwargs,
        )

    def format(self, record: logging.LogRecord) -> str:
        line = record.__dict__.get("_nija_json")
        if line is None:
            line = super().format(record)
            record._nija_json = line  # type: ignore[attr-defined]
        return line


def configure_structlog() -> None:
    """structlog hands its event dicts to stdlib logging, so both share handlers, formatter and levels."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _file_handlers(log_dir: str) -> dict[str, dict[str, Any]]:
    """Rotating files, safe with several processes writing (concurrent-log-handler locks around each write)."""
    directory = Path(log_dir)
    directory.mkdir(parents=True, exist_ok=True)
    common = {"formatter": "json", "encoding": "utf-8"}
    return {
        "file": {
            **common,
            "class": "concurrent_log_handler.ConcurrentRotatingFileHandler",
            "filename": str(directory / "nija.log"),
            "maxBytes": FILE_MAX_BYTES,
            "backupCount": FILE_BACKUP_COUNT,
        },
        "daily": {
            **common,
            "class": "concurrent_log_handler.ConcurrentTimedRotatingFileHandler",
            "filename": str(directory / "nija-daily.log"),
            "when": "midnight",
            "utc": True,
            "backupCount": DAILY_BACKUP_COUNT,
        },
        "errors": {
            **common,
            "class": "concurrent_log_handler.ConcurrentRotatingFileHandler",
            "filename": str(directory / "nija-error.log"),
            "maxBytes": FILE_MAX_BYTES,
            "backupCount": FILE_BACKUP_COUNT,
            "level": "ERROR",
        },
    }


# Loggers that others give handlers of their own: stripped, so their lines reach only ours (JSON, redacted).
# Django's DEFAULT_LOGGING (applied before LOGGING) puts a plain stderr "console" handler (DEBUG on) and
# mail_admins on "django" and a plain handler on "django.server" (propagate off): left there, every django.*
# line would print twice, once unredacted, and the plain formatter's `record.message` would leak into the JSON.
_LOGGERS_ROUTED_TO_ROOT = (
    "django",
    "django.request",
    "django.server",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "gunicorn.error",
    "gunicorn.access",
    "celery",
)


def build_logging(
    *,
    level: str = "INFO",
    log_dir: str = "",
    stream_enabled: bool = True,
    stream_key: str = DEFAULT_STREAM_KEY,
    drops_key: str = DEFAULT_DROPS_KEY,
    stream_maxlen: int = DEFAULT_MAXLEN,
    queue_size: int = DEFAULT_QUEUE_SIZE,
) -> dict[str, Any]:
    """The `LOGGING` dict: stdout always, the recent-log stream unless disabled, files when `log_dir` is set."""
    handlers: dict[str, dict[str, Any]] = {"stdout": {"class": "logs.sinks.StdoutHandler", "formatter": "json"}}
    if stream_enabled:
        handlers["stream"] = {
            "class": "logs.sinks.RedisStreamHandler",
            "formatter": "json",
            "stream_key": stream_key,
            "drops_key": drops_key,
            "maxlen": stream_maxlen,
            "queue_size": queue_size,
        }
    if log_dir:
        handlers.update(_file_handlers(log_dir))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "logs.config.JsonFormatter"}},
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": {name: {"handlers": [], "propagate": True} for name in _LOGGERS_ROUTED_TO_ROOT},
    }


def build_gunicorn_logging() -> dict[str, Any]:
    """gunicorn's `logconfig_dict` (see gunicorn.conf.py): its master process never loads Django, so without this
    its own lines (starting, listening, booting and reaping workers, timeouts) would be plain text.

    The same `JsonFormatter` on stdout (neither imports Django; no stream sink, which needs the settings). Each
    worker replaces this with `settings.LOGGING` when it loads the app. `gunicorn.error` keeps the level of
    gunicorn's `--log-level`; access lines stay off (WARNING), as django-structlog's `request_finished` already
    records every request with its request id.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "logs.config.JsonFormatter"}},
        "handlers": {"stdout": {"class": "logs.sinks.StdoutHandler", "formatter": "json"}},
        "root": {"handlers": ["stdout"], "level": "INFO"},
        "loggers": {
            "gunicorn.error": {"handlers": [], "propagate": True},
            "gunicorn.access": {"handlers": [], "propagate": True, "level": "WARNING"},
        },
    }
