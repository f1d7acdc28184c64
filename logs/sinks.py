"""Log sinks: stdout, and the recent-log Redis stream fed by one background thread per process.

The stream sink never touches Redis on the caller's thread: `emit` formats the line (once per record, see
`logs.config.JsonFormatter`) and `put_nowait`s it on a bounded queue. One daemon thread per process drains the
queue in batches and writes them with `XADD ... MAXLEN 10000` (exact, no `~`), so the stream never holds more
than the newest 10,000 entries across every process writing it.

A line that cannot be written (queue full, Redis down or slow) is dropped and counted in this process; the
count is added to the shared Redis counter `nija:logs:drops` as soon as a write succeeds again. After a fork
(gunicorn, Celery prefork) the child starts its own thread, queue and client on its first log line.
"""

import contextlib
import logging
import os
import queue
import sys
import threading
import time
import weakref

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

DEFAULT_STREAM_KEY = "nija:logs:recent"
DEFAULT_DROPS_KEY = "nija:logs:drops"
DEFAULT_MAXLEN = 10_000
DEFAULT_QUEUE_SIZE = 10_000
STREAM_FIELD = "e"
_BATCH_SIZE = 1000
# The writer waits this long between batches, so one call carries many lines instead of one call per line.
_LINGER_SECONDS = 0.05
# One round trip and one command to pack per batch (a pipeline of XADDs costs the writer thread, and through the
# GIL the request threads, about ten times more Python time). Exact MAXLEN on every XADD: never over the bound.
_XADD_BATCH = """
local maxlen = ARGV[1]
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', maxlen, '*', 'e', ARGV[i])
end
return #ARGV - 1
"""
_RETRY_AFTER_FAILURE_SECONDS = 1.0
_CONNECT_TIMEOUT_SECONDS = 0.2
_SOCKET_TIMEOUT_SECONDS = 0.5

_active: "weakref.ref[RedisStreamHandler] | None" = None


class StdoutHandler(logging.StreamHandler):
    """Writes to the process's real stdout, even where a runner swapped `sys.stdout` (Celery's redirect).

    The line is made before the handler's lock is taken (the formatter keeps it on the record), so the lock is held
    for the write alone: with 8 request threads a worker, a thread that lost the GIL while formatting under the
    lock kept every other thread's log line waiting (py-spy under make bench's load: a tenth of the plain view's
    samples waited in Handler.acquire)."""

    def __init__(self) -> None:
        super().__init__(stream=sys.__stdout__ or sys.stdout)

    def handle(self, record: logging.LogRecord) -> logging.LogRecord | bool:
        """logging.Handler.handle, with the line made between the filters and the lock."""
        passed = self.filter(record)
        if isinstance(passed, logging.LogRecord):  # Python 3.12+: a filter may hand back another record
            record = passed
        if passed:
            # A line that cannot be made fails again in emit, under the lock, and is reported as logging does.
            with contextlib.suppress(Exception):
                self.format(record)
            with self.lock:
                self.emit(record)
        return passed


class RedisStreamHandler(logging.Handler):
    """The recent-log sink: bounded queue in, one writer thread out, drop-and-count when it cannot keep up."""

    def __init__(
        self,
        stream_key: str = DEFAULT_STREAM_KEY,
        drops_key: str = DEFAULT_DROPS_KEY,
        maxlen: int = DEFAULT_MAXLEN,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        redis_url: str | None = None,
        level: int = logging.NOTSET,
        register: bool = True,
    ) -> None:
        super().__init__(level=level)
        self.stream_key = stream_key
        self.drops_key = drops_key
        self.maxlen = maxlen
        self.queue_size = queue_size
        self._redis_url = redis_url
        self._closed = False
        self._reset_process_state()
        self_ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset_in_child(self_ref))
        if register:
            global _active
            _active = weakref.ref(self)

    # ----------------------------------------------------------------------------------- caller side
    def emit(self, record: logging.LogRecord) -> None:
        if self._closed or threading.get_ident() == self._thread_ident:
            return  # never log our own Redis client's records back into Redis
        if self._pid != os.getpid():
            self._reset_process_state()
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a broken record must not fail the caller
            self.handleError(record)
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._count_drops(1)

    @property
    def dropped(self) -> int:
        """Lines this process has dropped since it started (or forked)."""
        return self._dropped_total

    @property
    def unreported_drops(self) -> int:
        """Drops not yet added to the shared Redis counter."""
        return self._unreported

    def flush_queue(self, timeout: float = 5.0) -> bool:
        """Wait until every queued line was written or dropped; True if the queue drained in time."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def set_redis_url(self, url: str | None) -> None:
        """Point the writer at another Redis (None: `settings.REDIS_URL`); takes effect on the next batch."""
        self._redis_url = url
        self._client = None
        self._retry_at = 0.0

    def close(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            self.flush_queue(timeout=1.0)  # the last lines before a reconfiguration or exit
        self._closed = True
        self._stop.set()
        super().close()

    # ----------------------------------------------------------------------------------- process state
    def _reset_process_state(self) -> None:
        """Fresh queue, lock, counters and client: at start, and in a forked child (never the parent's)."""
        self._pid = os.getpid()
        self._queue: queue.Queue[str] = queue.Queue(maxsize=self.queue_size)
        self._start_lock = threading.Lock()
        self._drops_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_ident: int | None = None
        self._client: redis.Redis | None = None
        self._retry_at = 0.0
        self._dropped_total = 0
        self._unreported = 0

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="nija-log-stream", daemon=True)
                thread.start()
                self._thread = thread

    def _count_drops(self, count: int) -> None:
        with self._drops_lock:
            self._dropped_total += count
            self._unreported += count

    # ----------------------------------------------------------------------------------- writer thread
    def _run(self) -> None:
        self._thread_ident = threading.get_ident()
        while not self._stop.is_set():
            batch = self._next_batch()
            if batch:
                self._write(batch)
                for _ in batch:
                    self._queue.task_done()
                self._stop.wait(_LINGER_SECONDS)

    def _next_batch(self) -> list[str]:
        try:
            batch = [self._queue.get(timeout=0.5)]
        except queue.Empty:
            return []
        while len(batch) < _BATCH_SIZE:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[str]) -> None:
        if time.monotonic() < self._retry_at:
            self._count_drops(len(batch))
            return
        try:
            client = self._redis()
            self._xadd_batch(keys=[self.stream_key], args=[self.maxlen, *batch], client=client)
            self._report_drops(client)
        except Exception:  # noqa: BLE001 - Redis down, slow or misconfigured: drop and count, never raise
            self._count_drops(len(batch))
            self._client = None
            self._retry_at = time.monotonic() + _RETRY_AFTER_FAILURE_SECONDS

    def _report_drops(self, client: redis.Redis) -> None:
        with self._drops_lock:
            pending = self._unreported
        if pending:
            client.incrby(self.drops_key, pending)
            with self._drops_lock:
                self._unreported -= pending

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(
                self._redis_url or _settings_redis_url(),
                socket_connect_timeout=_CONNECT_TIMEOUT_SECONDS,
                socket_timeout=_SOCKET_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 0),
            )
            self._xadd_batch = self._client.register_script(_XADD_BATCH)
        return self._client


def _reset_in_child(handler_ref: "weakref.ref[RedisStreamHandler]") -> None:
    handler = handler_ref()
    if handler is not None:
        handler._reset_process_state()


def _settings_redis_url() -> str:
    from django.conf import settings

    return settings.REDIS_URL


def active_sink() -> RedisStreamHandler | None:
    """This process's recent-log sink, if logging is configured with one."""
    handler = _active() if _active is not None else None
    return None if handler is None or handler._closed else handler


def process_drop_count() -> int:
    sink = active_sink()
    return sink.dropped if sink else 0
