"""Secret redaction: the structlog processor every log line passes before it reaches any sink.

Three rules, applied at any depth of mappings, lists, tuples and sets:
- a value whose key looks sensitive (token, secret, password, api key, authorization, passphrase, cookie ...)
  is replaced whole, whatever its type; so is the value of a `(name, value)` pair whose name looks sensitive
  (headers as ASGI and most HTTP clients list them: `[(b"authorization", b"Basic ...")]`);
- inside every string (the event, stdlib messages, exception messages, request paths), `key=value` /
  `"key": "value"` / `Key: value` pairs with a sensitive key lose their whole value, an authentication scheme
  included (`Authorization: Basic <secret>` and `Authorization: Token <secret>` keep neither; query strings too:
  `?access_token=...&api_key=...`);
- `Bearer <token>` is redacted wherever it appears, and so is the password of a URL (`scheme://user:password@`).
Any other object (a request, a model instance ...) is turned into its `str()` and that text is redacted, so
the renderer never prints an object it has not seen.

Cost: linear in the text, whatever it holds (log lines carry what clients send: a User-Agent is attacker text),
and a text longer than MAX_TEXT_CHARS is cut there first, so one field costs a bounded amount of work. The
patterns are possessive and every key is read once from its first character, so no input makes a scan go back
over what it has read.

Over-redacting a harmless field is accepted; leaking a secret is not.
"""

import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

REDACTED = "[REDACTED]"
# A text longer than this is cut before redaction (gunicorn already refuses headers over 8,190 bytes).
MAX_TEXT_CHARS = 16_384
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
    "://",
)
_BEARER = re.compile(r"\bBearer\s++[A-Za-z0-9._~+/=:-]++", re.IGNORECASE)
# A URL's authority (`scheme://user:password@host:port`), whose password `_url_password` replaces.
_URL_AUTHORITY = re.compile(r"://([^\s/?#]++)")
# A sensitive key (a whole run of word characters, dots and dashes holding a sensitive word, tried from the run's
# first character only), an optional closing quote, a separator, and the value: a quoted string (to its closing
# quote, or to the end when there is none), or an optional authentication scheme and the credential after it.
_KEY_VALUE = re.compile(
    r"(?<![\w.-])(?=[\w.-]*?(?:" + _SENSITIVE_WORDS + r"))[\w.-]++[\"']?\s*+[:=]\s*+"
    r"(?P<value>\"[^\"]*+\"?|'[^']*+'?"
    r"|(?:(?:basic|bearer|token|digest|negotiate|ntlm|apikey|api-key|hmac|signature)[ \t]++)?[^\s,;&}\])]++)",
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
    """A mapping key or header name (str or bytes) whose value is a secret."""
    if isinstance(key, bytes):
        key = key.decode("latin-1")
    return isinstance(key, str) and _is_sensitive_name(key)


def _redact_pair(match: re.Match) -> str:
    """Keeps the key and separator of a `key=value` match, replaces the value."""
    return match.group(0)[: match.start("value") - match.start()] + REDACTED


def _url_password(match: re.Match) -> str:
    """A URL authority without its password: the user information ends at the last `@`, the user at its first `:`."""
    userinfo, at, host = match.group(1).rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"://{user}:{REDACTED}@{host}" if at and colon else match.group(0)


def redact_text(text: str) -> str:
    """Secrets inside free text: sensitive key/value pairs, then bearer tokens (one cheap scan when neither)."""
    if not text:
        return text
    if len(text) > MAX_TEXT_CHARS:
        text = f"{text[:MAX_TEXT_CHARS]}... [{len(text) - MAX_TEXT_CHARS} characters cut]"
    lowered = text.lower()
    if not any(trigger in lowered for trigger in _TRIGGERS):
        return text
    text = _BEARER.sub(f"Bearer {REDACTED}", _KEY_VALUE.sub(_redact_pair, text))
    return _URL_AUTHORITY.sub(_url_password, text) if "://" in text else text


def _redact_key(key: Any) -> Any:
    """A mapping key as JSON can carry it: plain scalars kept, anything else as redacted text."""
    return key if isinstance(key, _PLAIN_SCALARS) else redact_text(str(key))


def _redact_sequence(items: list | tuple | set | frozenset) -> list[Any]:
    """A list of its items redacted; a `(name, value)` pair whose name is sensitive keeps only its name."""
    if isinstance(items, (list, tuple)) and len(items) == 2 and is_sensitive_key(items[0]):
        return [_redact_key(items[0]), REDACTED]
    return [redact_value(item) for item in items]


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
        return _redact_sequence(value)
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return redact_text(str(value))


def redact_secrets(logger: object, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redact every key and string of the event dict (internal `_` keys are kept)."""
    return {key: _redact_entry(key, value) for key, value in event_dict.items()}


def _redact_entry(key: str, value: Any) -> Any:
    if key.startswith("_") or key in _UNSCANNED_KEYS:
        return value
    return REDACTED if is_sensitive_key(key) else redact_value(value)
