"""Threads for the risk gate's concurrency and fault tests: released together, or holding row locks.

A `Crowd` is a fixed set of worker threads that live for a whole test: each round hands every worker one call,
a `threading.Barrier` releases them at the same instant, and the round returns every call's result (or the
exception it raised) in call order. Each worker keeps one PostgreSQL connection across rounds (Django's
connections are per thread) and closes it when the crowd ends, so a transactional test's flush and the test
database's teardown never wait on a connection left open by a thread.
"""

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection, connections, transaction

BARRIER_TIMEOUT_SECONDS = 60
_STOP = object()


class Crowd:
    """`size` threads; `run(calls)` runs exactly `size` calls at once and returns their results."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._start = threading.Barrier(size)
        self._jobs: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(size)]
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, args=(slot,), name=f"crowd-{slot}", daemon=True) for slot in range(size)
        ]

    def __enter__(self) -> "Crowd":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for jobs in self._jobs:
            jobs.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=BARRIER_TIMEOUT_SECONDS)

    def run(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        """Every call in its own thread, all released together; results (or raised exceptions) in call order."""
        if len(calls) != self.size:
            raise ValueError(f"a round of this crowd takes exactly {self.size} calls, got {len(calls)}")
        for jobs, call in zip(self._jobs, calls, strict=True):
            jobs.put(call)
        results: list[Any] = [None] * self.size
        for _ in range(self.size):
            slot, result = self._results.get(timeout=BARRIER_TIMEOUT_SECONDS * 2)
            results[slot] = result
        return results

    def _work(self, slot: int) -> None:
        try:
            while (call := self._jobs[slot].get()) is not _STOP:
                self._results.put((slot, self._released(call)))
        finally:
            connection.close()

    def _released(self, call: Callable[[], Any]) -> Any:
        try:
            self._start.wait(timeout=BARRIER_TIMEOUT_SECONDS)
            return call()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each call raised
            return exc


def run_in_thread(call: Callable[[], Any]) -> Any:
    """`call()` in a new thread with a new database connection (closed after); its result or its exception."""
    with Crowd(1) as crowd:
        return crowd.run([call])[0]


def raised(results: Sequence[Any]) -> list[BaseException]:
    """The exceptions among a round's results."""
    return [result for result in results if isinstance(result, BaseException)]


@contextmanager
def rows_locked(lock: Callable[[], Any]) -> Iterator[None]:
    """Inside the block, another thread (its own connection) holds the row locks `lock()` takes, in an open
    transaction that ends (rolls back nothing: it wrote nothing) when the block exits."""
    locked, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                lock()
                locked.set()
                release.wait(timeout=BARRIER_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - reported to the test below
            failures.append(exc)
        finally:
            locked.set()
            connection.close()

    holder = threading.Thread(target=hold, name="row-holder", daemon=True)
    holder.start()
    locked.wait(timeout=BARRIER_TIMEOUT_SECONDS)
    if failures:
        raise failures[0]
    try:
        yield
    finally:
        release.set()
        holder.join(timeout=BARRIER_TIMEOUT_SECONDS)


def lock_waiters(query_part: str) -> int:
    """How many backends running a statement that contains `query_part` wait on a lock now (the activity snapshot
    is taken afresh: within a transaction PostgreSQL would otherwise answer the one it took first)."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            [f"%{query_part}%"],
        )
        return cursor.fetchone()[0]
