"""The background publisher of live events: no request, task or service ever waits on Redis to publish.

`submit` puts an event's messages (one per channel) on a bounded in-process queue and returns at once. One
daemon thread per process drains the queue in batches and writes each batch with one script call
(`nija.event_store.append_and_publish`: store and fan-out together, in order). A batch Redis refuses is tried
again briefly (a restarting server), then dropped; a full queue drops too. Every dropped event is counted and
logged, never raised into the caller: the database is the record, clients re-read it (and a client that missed
events is told so by the stream's `stream-reset`).

After a fork (gunicorn workers, Celery prefork) the child starts its own queue and thread on its first event.
At exit the queue is given a moment to drain, so a management command's last events are not lost.
"""

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence

from redis import RedisError

from nija.event_store import StoredEvent, append_and_publish

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
_RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0)
_EXIT_FLUSH_SECONDS = 2.0


class EventPublisher:
    """A bounded queue in, one writer thread out, drop-and-count when Redis cannot keep up."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._queue: queue.Queue[tuple[StoredEvent, ...]] = queue.Queue(maxsize=self.queue_size)
        self._start_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.dropped = 0

    def submit(self, events: Sequence[StoredEvent]) -> bool:
        """Queue one event's messages (kept together and in order); False when the queue is full (counted)."""
        if self._pid != os.getpid():
            self._reset()
        self._ensure_thread()
        try:
            self._queue.put_nowait(tuple(events))
        except queue.Full:
            self._count(dropped=len(events))
            logger.warning("event_publish_dropped", extra={"reason": "queue_full", "events": len(events)})
            return False
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was written or dropped; True if that happened in time."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": self.dropped, "queued": self._queue.qsize()}

    def _count(self, *, published: int = 0, dropped: int = 0) -> None:
        with self._counts_lock:
            self.published += published
            self.dropped += dropped

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="nija-event-publisher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            events = [event for group in batch for event in group]
            self._write(events)
            for _ in batch:
                self._queue.task_done()

    def _next_batch(self) -> list[tuple[StoredEvent, ...]]:
        batch = [self._queue.get()]
        while len(batch) < BATCH_SIZE:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, events: list[StoredEvent]) -> None:
        for delay in (*_RETRY_DELAYS, None):
            try:
                append_and_publish(events)
            except RedisError as error:
                if delay is not None:
                    time.sleep(delay)
                    continue
                self._count(dropped=len(events))
                logger.warning("event_publish_failed", extra={"events": len(events), "error": repr(error)})
                return
            self._count(published=len(events))
            return


_publisher: EventPublisher | None = None
_publisher_lock = threading.Lock()


def publisher() -> EventPublisher:
    """This process's publisher (created on first use, with EVENTS_PUBLISH_QUEUE_SIZE)."""
    global _publisher
    if _publisher is None:
        from django.conf import settings

        with _publisher_lock:
            if _publisher is None:
                _publisher = EventPublisher(settings.EVENTS_PUBLISH_QUEUE_SIZE)
    return _publisher


@atexit.register
def _drain_at_exit() -> None:
    if _publisher is not None and _publisher._pid == os.getpid():
        _publisher.flush(timeout=_EXIT_FLUSH_SECONDS)
