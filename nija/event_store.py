"""The live events' Redis side: the bounded replay store and the fan-out channel, written together in one script.

Every event is appended to a capped Redis stream of its channel (`nija:events:stream:<channel>`, exactly the
newest EVENTS_REPLAY_MAXLEN entries, expiring EVENTS_REPLAY_TTL_SECONDS after the channel's last event) and, in
the same script, published on one pub/sub channel (`nija:events:fanout`) that every events process listens to.
The store is what `Last-Event-ID` replays from: one XRANGE a channel, however many events are replayed.

Event ids carry the store's epoch: a random number kept in `nija:events:epoch` and created again by the first
write after the store was lost (a Redis restart without persistence, a flush, an eviction). An id is one integer
(django-eventstream parses ids with `int()`) packing the epoch and the stream entry id `<ms>-<seq>`. A client
whose last id names another epoch, or an entry the cap has already trimmed, missed events the store no longer
holds: the storage says so (`EventDoesNotExist`) and the stream answers with a `stream-reset` event.

This module implements django-eventstream's storage interface (`RedisStreamStorage`, the
EVENTSTREAM_STORAGE_CLASS) and the batch append the background publisher uses (`append_and_publish`).
"""

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from django_eventstream.event import Event
from django_eventstream.storage import EventDoesNotExist, StorageBase

EPOCH_KEY = "nija:events:epoch"
STREAM_PREFIX = "nija:events:stream:"
FANOUT_CHANNEL = "nija:events:fanout"
_EPOCH_BITS = 30
_SEQ_BITS = 20
_MS_BITS = 44
_START = "0-0"  # the position before a channel's first event

# KEYS: epoch, then one stream per event. ARGV: candidate epoch, maxlen, ttl, fan-out channel, then per event its
# channel, type and JSON data. Creates the epoch when missing, appends (exact cap) and publishes each event with
# its entry id, returns the epoch and the entry ids.
_APPEND_AND_PUBLISH = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local ids = {}
for i = 2, #KEYS do
  local base = 5 + (i - 2) * 3
  local channel, event_type, data = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  local id = redis.call('XADD', KEYS[i], 'MAXLEN', ARGV[2], '*', 't', event_type, 'd', data)
  redis.call('EXPIRE', KEYS[i], ARGV[3])
  redis.call('PUBLISH', ARGV[4], cjson.encode({c = channel, t = event_type, d = data, e = epoch, i = id}))
  ids[#ids + 1] = id
end
return {epoch, ids}
"""

# KEYS: epoch, then one stream per channel. ARGV: candidate epoch. The epoch (created when missing) and each
# channel's newest entry id (`0-0` for an empty channel).
_POSITIONS = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local positions = {}
for i = 2, #KEYS do
  local last = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
  positions[#positions + 1] = last[1] and last[1][1] or '0-0'
end
return {epoch, positions}
"""


@dataclass(frozen=True)
class EventPosition:
    """Where a client is in one channel: the store's epoch and the stream entry id of its last event."""

    epoch: int
    entry: str

    def to_id(self) -> int:
        milliseconds, sequence = (int(part) for part in self.entry.split("-"))
        return (self.epoch << (_MS_BITS + _SEQ_BITS)) | (milliseconds << _SEQ_BITS) | sequence

    @classmethod
    def from_id(cls, event_id: int) -> "EventPosition":
        if event_id < 0 or event_id >> (_EPOCH_BITS + _MS_BITS + _SEQ_BITS):
            raise ValueError(f"not an event id: {event_id}")
        sequence = event_id & ((1 << _SEQ_BITS) - 1)
        milliseconds = (event_id >> _SEQ_BITS) & ((1 << _MS_BITS) - 1)
        return cls(epoch=event_id >> (_MS_BITS + _SEQ_BITS), entry=f"{milliseconds}-{sequence}")


@dataclass(frozen=True)
class StoredEvent:
    channel: str
    event_type: str
    data: str  # JSON text, sent as the SSE `data:` line


def stream_key(channel: str) -> str:
    return STREAM_PREFIX + channel


def new_epoch() -> int:
    return 1 + secrets.randbelow((1 << _EPOCH_BITS) - 1)


@cache
def _client(url: str) -> redis.Redis:
    timeout = settings.REDIS_SOCKET_TIMEOUT
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def events_redis() -> redis.Redis:
    """This process's client of the events' Redis (EVENTS_REDIS_URL), shared by its threads."""
    return _client(settings.EVENTS_REDIS_URL)


def append_and_publish(events: Sequence[StoredEvent], client: redis.Redis | None = None) -> list[int]:
    """Append events to their channels' streams and publish them to every events process, in one round trip.
    Returns their ids. Raises redis errors (the caller counts what it could not publish)."""
    if not events:
        return []
    client = client or events_redis()
    keys = [EPOCH_KEY, *(stream_key(event.channel) for event in events)]
    args: list[object] = [
        new_epoch(),
        settings.EVENTS_REPLAY_MAXLEN,
        settings.EVENTS_REPLAY_TTL_SECONDS,
        FANOUT_CHANNEL,
    ]
    for event in events:
        args.extend((event.channel, event.event_type, event.data))
    epoch, entries = client.eval(_APPEND_AND_PUBLISH, len(keys), *keys, *args)
    return [EventPosition(int(epoch), entry.decode()).to_id() for entry in entries]


def current_positions(channels: Sequence[str], client: redis.Redis | None = None) -> dict[str, EventPosition]:
    """Each channel's newest position in the store (its start when it has no event yet), in one round trip."""
    client = client or events_redis()
    keys = [EPOCH_KEY, *(stream_key(channel) for channel in channels)]
    epoch, entries = client.eval(_POSITIONS, len(keys), *keys, new_epoch())
    return {
        channel: EventPosition(int(epoch), entry.decode()) for channel, entry in zip(channels, entries, strict=True)
    }


def decode_fanout(message: bytes) -> Event:
    """The django-eventstream Event carried by one fan-out message."""
    body = json.loads(message)
    position = EventPosition(int(body["e"]), body["i"])
    return Event(body["c"], body["t"], body["d"], id=position.to_id())


class RedisStreamStorage(StorageBase):
    """django-eventstream's storage interface over the capped streams (see the module docstring)."""

    def append_event(self, channel: str, event_type: str, data: str) -> Event:
        (event_id,) = append_and_publish([StoredEvent(channel, event_type, data)])
        return Event(channel, event_type, data, id=event_id)

    def get_current_id(self, channel: str) -> int:
        return current_positions([channel])[channel].to_id()

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list[Event]:
        """Events after `last_id`, oldest first, at most `limit`; EventDoesNotExist when the store cannot tell
        what came after it (another epoch, or an entry already trimmed)."""
        try:
            position = EventPosition.from_id(last_id)
        except ValueError:
            return self._reset(channel, f"malformed event id {last_id}")
        key = stream_key(channel)
        with events_redis().pipeline(transaction=False) as pipe:
            pipe.get(EPOCH_KEY)
            pipe.xrange(key, f"({position.entry}", "+", count=limit)
            if position.entry == _START:
                pipe.xlen(key)
                pipe.xinfo_stream(key)
            else:
                pipe.xrange(key, position.entry, position.entry, count=1)
            epoch, after, *check = pipe.execute(raise_on_error=False)
        if isinstance(epoch, Exception) or epoch is None or int(epoch) != position.epoch:
            return self._reset(channel, "the event store was reset")
        if position.entry == _START and _was_trimmed(*check):
            return self._reset(channel, "events since the channel's start were trimmed")
        if position.entry != _START and not check[0]:
            return self._reset(channel, f"event {last_id} is no longer stored")
        return [self._event(channel, position.epoch, entry, fields) for entry, fields in after]

    @staticmethod
    def _event(channel: str, epoch: int, entry: bytes, fields: dict[bytes, bytes]) -> Event:
        event_id = EventPosition(epoch, entry.decode()).to_id()
        return Event(channel, fields[b"t"].decode(), fields[b"d"].decode(), id=event_id)

    def _reset(self, channel: str, reason: str) -> list[Event]:
        raise EventDoesNotExist(reason, self.get_current_id(channel))


def _was_trimmed(length: object, info: object) -> bool:
    """Whether a channel's stream has dropped entries (XINFO's `entries-added` counts every entry ever added)."""
    return isinstance(info, dict) and isinstance(length, int) and info.get("entries-added", 0) > length
