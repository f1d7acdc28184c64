"""The events process's fan-out listener, supervised: it survives Redis restarts without a process restart.

One asyncio task per events process subscribes to `nija:events:fanout` and hands every event to
django-eventstream's listener manager, which wakes the open streams of its channel. django-eventstream's own
listener is not used: it dies with its connection and is never restarted, and redis-py's silent reconnection
would hide the events lost meanwhile. This one:

- reads with a timeout and pings the server every EVENTS_LISTENER_PING_SECONDS; silence past three pings is a
  dead connection, as is any error (redis-py's own retries are off, so nothing reconnects behind its back);
- reconnects with exponential backoff and jitter (0.1 s doubling to 5 s), subscribes again and counts it;
- after a reconnect, tells every open stream that it may have missed events: each channel with open streams gets a
  `stream-reset` event carrying the store's current position, so clients re-read state (a client that reconnects
  with an older `Last-Event-ID` is told the same by the storage);
- reports its state in this process (`listener_status`) and, every few seconds, in Redis under
  `nija:events:listener:<host>:<pid>` (`listener_reports`), so any process can show every events process's state.
"""

import asyncio
import json
import logging
import os
import random
import socket
import time
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis
from django.conf import settings
from django_eventstream.event import Event
from django_eventstream.views import get_listener_manager
from redis.backoff import NoBackoff
from redis.retry import Retry

from nija.event_store import FANOUT_CHANNEL, current_positions, decode_fanout, events_redis

logger = logging.getLogger(__name__)

REPORT_PREFIX = "nija:events:listener:"
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0
_SILENT_PINGS = 3


class ListenerStalled(Exception):
    """No reply from Redis, not even to a ping, for several ping intervals."""


@dataclass
class ListenerStatus:
    running: bool = False
    connected: bool = False
    reconnects: int = 0
    last_error: str | None = None
    connected_since: float | None = None


class FanoutListener:
    def __init__(self) -> None:
        self.status = ListenerStatus()
        self._task: asyncio.Task | None = None
        self._ever_connected = False
        self._process = f"{socket.gethostname()}:{os.getpid()}"

    def ensure_running(self) -> None:
        """Start the listener on the running event loop unless it already runs there."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name="nija-fanout-listener")
            self.status.running = True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        self.status.running = self.status.connected = False

    async def _supervise(self) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - any failure of a session is answered with a new one
                self.status.last_error = f"{type(error).__name__}: {error}"
                if self.status.connected:
                    logger.warning("event_listener_disconnected", extra={"error": self.status.last_error})
                    backoff = _BACKOFF_FIRST
            self.status.connected = False
            await asyncio.sleep(random.uniform(backoff / 2, backoff))  # noqa: S311 - jitter, not a secret
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _session(self) -> None:
        timeout = settings.REDIS_SOCKET_TIMEOUT
        client = aioredis.Redis.from_url(
            settings.EVENTS_REDIS_URL, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(FANOUT_CHANNEL)
            await self._until_subscribed(pubsub)
            if self._ever_connected:
                self.status.reconnects += 1
                await self._reset_open_streams()
                logger.info("event_listener_reconnected", extra={"reconnects": self.status.reconnects})
            self._ever_connected = True
            self.status.connected, self.status.connected_since = True, time.time()
            await self._pump(pubsub)
        finally:
            await pubsub.aclose()
            await client.aclose()

    @staticmethod
    async def _until_subscribed(pubsub: aioredis.client.PubSub) -> None:
        deadline = time.monotonic() + settings.EVENTS_LISTENER_PING_SECONDS
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "subscribe":
                return
        raise ListenerStalled("no subscription confirmation")

    async def _pump(self, pubsub: aioredis.client.PubSub) -> None:
        interval = settings.EVENTS_LISTENER_PING_SECONDS
        last_heard = last_ping = time.monotonic()
        await self._report()
        while True:
            message = await pubsub.get_message(timeout=min(1.0, interval))
            now = time.monotonic()
            if message is not None:
                last_heard = now
                if message["type"] == "message":
                    self._deliver(message["data"])
            if now - last_heard > interval * _SILENT_PINGS:
                raise ListenerStalled(f"no reply from Redis for {now - last_heard:.1f} s")
            if now - last_ping >= interval:
                last_ping = now
                await pubsub.ping()
                await self._report()

    @staticmethod
    def _deliver(data: bytes) -> None:
        try:
            event = decode_fanout(data)
        except (ValueError, KeyError, TypeError):
            logger.warning("event_listener_bad_message", extra={"size": len(data)})
            return
        get_listener_manager().add_to_queues(event.channel, event)

    async def _reset_open_streams(self) -> None:
        """Queue a `stream-reset` at the store's current position on every channel that has open streams."""
        manager = get_listener_manager()
        with manager.lock:
            channels = list(manager.listeners_by_channel)
        if not channels:
            return
        positions = await asyncio.to_thread(current_positions, channels)
        for channel, position in positions.items():
            data = json.dumps({"channels": [channel]})
            manager.add_to_queues(channel, Event(channel, "stream-reset", data, id=position.to_id()))

    async def _report(self) -> None:
        """Publish this listener's state in Redis for other processes' health pages (best effort)."""
        report = {**asdict(self.status), "process": self._process, "reported_at": time.time()}
        ttl = int(settings.EVENTS_LISTENER_PING_SECONDS * _SILENT_PINGS) + 1
        try:
            await asyncio.to_thread(events_redis().set, REPORT_PREFIX + self._process, json.dumps(report), ex=ttl)
        except Exception:  # a report is informational; the next ping tries again
            logger.debug("event_listener_report_failed", exc_info=True)


fanout_listener = FanoutListener()


def listener_status() -> dict:
    """This process's listener: running, connected, reconnects (since the process started), last error."""
    return asdict(fanout_listener.status)


def listener_reports() -> list[dict]:
    """The state every live events process last reported (each report expires after a few silent pings)."""
    client = events_redis()
    keys = sorted(client.scan_iter(match=REPORT_PREFIX + "*", count=100))
    values = client.mget(keys) if keys else []
    return [json.loads(value) for value in values if value is not None]
