"""Secret redaction: the structlog processor every log line passes before it reaches any sink.

Two rules, applied at any depth of mappings, lists, tuples and sets:
- a value whose key looks sensitive (token, secret, password, api key, authorization, passphrase, cookie ...)
  is replaced whole, whatever its type;
- inside every string (the event, stdlib messages, exception messages, request paths), `Bearer <token>`
  and `key=value` / `"key": "value"` pairs with a sensitive key lose their value (query strings included:
  `?access_token=...&api_key=...`).
Any other object (a request, a model instance ...) is turned into its `str()` and that text is redacted, so
the renderer never prints an object it has not seen.

Over-redacting a harmless field is accepted; leaking a secret is not.
"""

import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

REDACTED = "[REDACTED]"
# Values rendered as they are; everything else that is not a container becomes redacted text.
_PLAIN_SCALARS = (int, float, bool, Decimal)

_SENSITIVE_WORDS = (
    r"token|secret|password|passwd|pwd|api[_-]?key|apikey|authorization|passphrase|cookie|credential"
    r"|private[_-]?key|signature|session[_-]?id|csrf"
)
_SENSITIVE_KEY = re.compile(_SENSITIVE_WORDS, re.IGNORECASE)
# Cheap substring triggers (on the lower-cased text) before any regex runs: most strings contain none.
_TRIGGERS = (
    "token",
    "secret",
    "passw",
    "pwd",
    "key",
    "authorization",
    "passphrase",
    "cookie",
    "credential",
    "signature",
    "session",
    "csrf",
    "bearer",
)
_BEARER = re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=:-]+", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?:" + _SENSITIVE_WORDS + r")[\w.-]*"
    r"[\"']?\s*[:=]\s*"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&}\])]+)",
    re.IGNORECASE,
)
# Keys structlog and our own pipeline add: never sensitive names; the values of the last four are not scanned.
_SAFE_KEYS = frozenset(
    {"event", "request_id", "user_id", "account_id", "task_id", "level", "logger", "timestamp", "pid"}
)
_UNSCANNED_KEYS = frozenset({"level", "logger", "timestamp", "pid"})


@functools.lru_cache(maxsize=4096)
def _is_sensitive_name(key: str) -> bool:
    return key not in _SAFE_KEYS and _SENSITIVE_KEY.search(key) is not None


def is_sensitive_key(key: object) -> bool:
    return isinstance(key, str) and _is_sensitive_name(key)


def _redact_pair(match: re.Match) -> str:
    """Keeps the key and separator of a `key=value` match, replaces the value."""
    return match.group(0)[: match.start("value") - match.start()] + REDACTED


def redact_text(text: str) -> str:
    """Secrets inside free text: bearer tokens, then sensitive key/value pairs (one cheap scan when neither)."""
    if not text:
        return text
    lowered = text.lower()
    if not any(trigger in lowered for trigger in _TRIGGERS):
        return text
    text = _BEARER.sub(f"Bearer {REDACTED}", text)
    return _KEY_VALUE.sub(_redact_pair, text)


def _redact_key(key: Any) -> Any:
    """A mapping key as JSON can carry it: plain scalars kept, anything else as redacted text."""
    return key if isinstance(key, _PLAIN_SCALARS) else redact_text(str(key))


def redact_value(value: Any) -> Any:
    """A copy of `value` with every secret removed, made of JSON-ready parts only.

    Any `Mapping` (dict, Django's `HttpHeaders`, `QueryDict` ...) is rebuilt like a dict, iterables like lists;
    every other object (a `WSGIRequest`, a model, a URL object) becomes its redacted `str()` here, before any
    renderer could print its unredacted form.
    """
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, _PLAIN_SCALARS):
        return value
    if isinstance(value, Mapping):
        return {
            _redact_key(key): REDACTED if is_sensitive_key(key) else redact_value(item) for key, item in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(item) for item in value]
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return redact_text(str(value))


def redact_secrets(logger: object, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redact every key and string of the event dict (internal `_` keys are kept)."""
    return {
        key: value if key.startswith("_") else REDACTED if is_sensitive_key(key) else redact_value(value)
        for key, value in event_dict.items()
    }
