"""The demo desk's HTTP client: one kept-alive `requests.Session` for every token, paced, and patient.

- Pacing: at most `rate` requests a second in total (0: no pacing, for tests); the demo stays a light load.
- A 429 waits its `Retry-After` (capped) and counts as an answer; the caller moves on.
- No answer (connection refused or reset, a timeout) and 5xx answers back off exponentially with jitter, up to
  `max_backoff` seconds, then give up this request (`None`): the desk keeps running while the web server restarts.
- 4xx answers are returned as they are: the desk logs them and carries on.
Waits never run past the caller's deadline.
"""

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
import structlog

logger = structlog.get_logger(__name__)

RETRY_AFTER_CAP = 30.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    retry_after: float | None = None  # a 429's Retry-After header, in seconds

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str:
        """The error contract's code (`{"error": {"code"}}`), or the status as text."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code", self.status))
        return str(self.status)


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)  # money travels as JSON strings
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@dataclass
class DeskClient:
    base_url: str
    rate: float = 4.0
    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 10.0
    timeout: float = 10.0
    deadline: float | None = None  # time.monotonic() after which nothing waits
    sleep: Callable[[float], None] = time.sleep
    counts: Counter = field(default_factory=Counter)
    _session: requests.Session = field(default_factory=requests.Session, repr=False)
    _next_slot: float = 0.0
    _jitter: random.Random = field(default_factory=random.Random, repr=False)

    def call(self, method: str, path: str, token: str, body: dict | None = None) -> Answer | None:
        """One API request with `token`; the answer, or None when the server gave none after every attempt."""
        for attempt in range(self.attempts):
            self._pace()
            answer = self._send(method, path, token, body)
            if answer is not None and answer.status == 429:
                self._wait(self._retry_after(answer))
                return answer
            if answer is not None and answer.status < 500:
                return answer
            self.counts["retries"] += 1
            if attempt + 1 < self.attempts:
                self._wait(self._backoff(attempt))
        self.counts["gave_up"] += 1
        logger.warning("simulator.no_answer", method=method, path=path, attempts=self.attempts)
        return None

    def close(self) -> None:
        self._session.close()

    def pause(self, seconds: float) -> None:
        """Wait `seconds` (never past the deadline)."""
        self._wait(seconds)

    def _send(self, method: str, path: str, token: str, body: dict | None) -> Answer | None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, default=_json_default)
            headers["Content-Type"] = "application/json"
        try:
            response = self._session.request(
                method, self.base_url + path, data=data, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as error:
            self.counts["connection_errors"] += 1
            logger.info("simulator.connection_error", path=path, error=type(error).__name__)
            return None
        self.counts[f"http_{response.status_code}"] += 1
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 500:
            logger.info("simulator.server_error", path=path, status=response.status_code)
            return None
        return Answer(response.status_code, payload, _seconds(response.headers.get("Retry-After")))

    def _pace(self) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        if self._next_slot > now:
            self._wait(self._next_slot - now)
        self._next_slot = max(now, self._next_slot) + 1.0 / self.rate

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2**attempt) * self._jitter.uniform(0.5, 1.0)

    @staticmethod
    def _retry_after(answer: Answer) -> float:
        return min(RETRY_AFTER_CAP, answer.retry_after if answer.retry_after is not None else 1.0)

    def _wait(self, seconds: float) -> None:
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - time.monotonic()))
        if seconds > 0:
            self.sleep(seconds)
