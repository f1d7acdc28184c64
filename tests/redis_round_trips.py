"""Counting the round trips redis-py makes: one packet sent per command, one per pipeline or script call.

Command statistics (INFO commandstats) count every process and thread and each command a script runs, so a single
EVALSHA reads as many commands; the packets a connection sends are the round trips the caller waits on.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from redis.connection import AbstractConnection


@contextmanager
def redis_round_trips(*, this_thread_only: bool = True) -> Iterator[list[int]]:
    """Counts (in `count[0]`) the packets redis-py sends meanwhile: from this thread only, or from every thread."""
    count = [0]
    me = threading.get_ident()
    real = AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        if not this_thread_only or threading.get_ident() == me:
            count[0] += 1
        return real(self, command, check_health)

    AbstractConnection.send_packed_command = counted
    try:
        yield count
    finally:
        AbstractConnection.send_packed_command = real
