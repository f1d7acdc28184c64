"""The replay store behind `Last-Event-ID`: bounded per channel, one read per replay, ids that carry the store's
epoch so a lost store is detected (EventDoesNotExist: the stream answers `stream-reset`), and the per-holder cap
on open streams."""

import pytest
from django_eventstream.storage import EventDoesNotExist

from nija.event_store import (
    EPOCH_KEY,
    EventPosition,
    RedisStreamStorage,
    StoredEvent,
    append_and_publish,
    stream_key,
)
from nija.stream_leases import lease_take, leases_held, leases_renew


def _append(channel: str, count: int, start: int = 0) -> list[int]:
    return append_and_publish([StoredEvent(channel, "metrics", f'{{"n": {n}}}') for n in range(start, start + count)])


@pytest.mark.parametrize("entry", ["0-0", "1-0", "1796241010208-17", f"{(1 << 44) - 1}-{(1 << 20) - 1}"])
def test_an_id_carries_its_epoch_and_entry_both_ways(entry):
    position = EventPosition(epoch=(1 << 30) - 1, entry=entry)

    assert EventPosition.from_id(position.to_id()) == position


@pytest.mark.parametrize("event_id", [-1, 1 << 94])
def test_a_number_outside_the_id_space_is_not_an_id(event_id):
    with pytest.raises(ValueError, match="not an event id"):
        EventPosition.from_id(event_id)


def test_a_replay_returns_what_came_after_the_id_oldest_first_in_one_read(redis_client):
    ids = _append("dashboard", 150)
    storage = RedisStreamStorage()
    before = redis_client.info("commandstats")

    replayed = storage.get_events("dashboard", ids[9], limit=100)

    after = redis_client.info("commandstats")
    assert [event.data for event in replayed] == [f'{{"n": {n}}}' for n in range(10, 110)]
    assert [event.id for event in replayed] == ids[10:110]
    assert storage.get_events("dashboard", ids[-1]) == []
    assert _calls(after, "xrange") - _calls(before, "xrange") == 2  # the page, the id's own entry
    assert _calls(after, "get") - _calls(before, "get") == 1


def test_each_channel_keeps_only_its_newest_events_and_an_id_trimmed_away_is_a_reset(redis_client, settings):
    settings.EVENTS_REPLAY_MAXLEN = 5
    storage = RedisStreamStorage()
    ids = _append("account-4", 8)

    assert redis_client.xlen(stream_key("account-4")) == 5
    assert [event.id for event in storage.get_events("account-4", ids[3])] == ids[4:]
    with pytest.raises(EventDoesNotExist) as trimmed:
        storage.get_events("account-4", ids[1])
    assert trimmed.value.current_id == ids[-1]
    assert 0 < redis_client.ttl(stream_key("account-4")) <= settings.EVENTS_REPLAY_TTL_SECONDS


def test_a_client_that_joined_an_empty_channel_gets_everything_since_or_a_reset_once_trimmed(redis_client, settings):
    settings.EVENTS_REPLAY_MAXLEN = 5
    storage = RedisStreamStorage()
    joined = storage.get_current_id("account-9")

    assert EventPosition.from_id(joined).entry == "0-0"
    ids = _append("account-9", 5)
    assert [event.id for event in storage.get_events("account-9", joined)] == ids
    _append("account-9", 1, start=5)
    with pytest.raises(EventDoesNotExist):
        storage.get_events("account-9", joined)


def test_a_lost_store_is_detected_and_new_events_carry_a_new_epoch(redis_client):
    storage = RedisStreamStorage()
    old = _append("dashboard", 3)
    old_epoch = EventPosition.from_id(old[0]).epoch

    redis_client.flushdb()  # what a restart without persistence leaves
    with pytest.raises(EventDoesNotExist) as lost:
        storage.get_events("dashboard", old[1])
    new = _append("dashboard", 1)

    new_epoch = int(redis_client.get(EPOCH_KEY))
    assert new_epoch != old_epoch
    assert EventPosition.from_id(lost.value.current_id) == EventPosition(new_epoch, "0-0")
    assert EventPosition.from_id(new[0]).epoch == new_epoch
    assert [event.id for event in storage.get_events("dashboard", lost.value.current_id)] == new


def test_open_streams_are_leased_per_holder_up_to_the_cap(redis_client):
    first, second = lease_take(holder="token-1", cap=2), lease_take(holder="token-1", cap=2)

    assert lease_take(holder="token-1", cap=2) is None
    assert lease_take(holder="token-2", cap=2) is not None
    assert leases_held("token-1") == 2
    first.release()
    assert leases_held("token-1") == 1
    third = lease_take(holder="token-1", cap=2)
    assert third is not None
    leases_renew([second])
    assert leases_held("token-1") == 2
    assert redis_client.zscore(second.key, second.lease_id) > redis_client.zscore(third.key, third.lease_id) - 1


def _calls(commandstats: dict, command: str) -> int:
    """Calls of `command` so far: Redis lists a command only once it has been called (a fresh server has none)."""
    return commandstats.get(f"cmdstat_{command}", {}).get("calls", 0)
