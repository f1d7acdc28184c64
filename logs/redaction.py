"""Secret redaction: the structlog processor every log line passes before it reaches any sink.

Two rules, applied at any depth of dicts, lists, tuples and sets:
- a value whose key looks sensitive (token, secret, password, api key, authorization, passphrase, cookie ...)
  is replaced whole, whatever its type;
- inside every string (the event, stdlib messages, exception messages, request paths), `Bearer <token>`
  and `key=value` / `"key": "value"` pairs with a sensitive key lose their value.

Over-redacting a harmless field is accepted; leaking a secret is not.
"""

import re
from typing import Any

REDACTED = "[REDACTED]"

_SENSITIVE_WORDS = (
    r"token|secret|password|passwd|pwd|api[_-]?key|apikey|authorization|passphrase|cookie|credential"
    r"|private[_-]?key|signature|session[_-]?id|csrf"
)
_SENSITIVE_KEY = re.compile(_SENSITIVE_WORDS, re.IGNORECASE)
_BEARER = re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=:-]+", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?P<key>[\w.-]*(?:" + _SENSITIVE_WORDS + r")[\w.-]*)"
    r"(?P<sep>[\"']?\s*[:=]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&}\])]+)",
    re.IGNORECASE,
)
# Keys structlog and our own pipeline add: never sensitive, skipped for speed.
_SAFE_KEYS = frozenset({"event", "level", "logger", "timestamp", "request_id", "user_id", "account_id", "task_id"})


def is_sensitive_key(key: object) -> bool:
    return isinstance(key, str) and key not in _SAFE_KEYS and _SENSITIVE_KEY.search(key) is not None


def redact_text(text: str) -> str:
    """Secrets inside free text: bearer tokens, then sensitive key/value pairs."""
    if not text:
        return text
    text = _BEARER.sub(f"Bearer {REDACTED}", text)
    return _KEY_VALUE.sub(lambda match: f"{match.group('key')}{match.group('sep')}{REDACTED}", text)


def redact_value(value: Any) -> Any:
    """A copy of `value` with every secret removed; containers are rebuilt, other objects left as they are."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: REDACTED if is_sensitive_key(key) else redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(item) for item in value]
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redact_secrets(logger: object, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redact every key and string of the event dict (internal `_` keys are kept)."""
    return {
        key: value if key.startswith("_") else REDACTED if is_sensitive_key(key) else redact_value(value)
        for key, value in event_dict.items()
    }
