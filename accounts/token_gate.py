"""One Redis round trip for what a warm bearer request needs: its token's cache entry, its rate-limit count and, for
a bot, its heartbeat (accounts.authentication calls it; the throttle then uses the count, nija.api.throttling).

The limiter counts a request in its token's window (`<scope>:tok:<id>`) against its tier's limit, and both are
known only once the token is read. This process therefore remembers, per token digest, the cache entry it last read
(the exact bytes) and what it resolved to (bounded, `MEMO_MAX_ENTRIES`). The request's window and heartbeat are
computed from that, and one script reads the token's entry and, only when it is byte for byte the remembered one
(the same principal, tier and activity), counts the request and records the heartbeat. Anything else (no entry, a
revocation's tombstone, an edit rewritten, an entry never seen) is returned unread-into: nothing is counted or
recorded, and the request goes on as before (decoded, resolved, counted by the throttle in a round trip of its own),
and its entry is remembered for the next request.

The memory never decides anything: it is the expectation Redis's current entry is compared with, inside the script.
Every request still reads its token's entry in Redis, so a revoked token is refused at once.

The same round trip also reads the cache entries the view has said it will read (`prefetch`: a bot's limits and
the mark its check prices at, the mark a market GET answers with), returned to it through nija.cache's
`prefetched_reads`. Only when the entry was the remembered one: otherwise the view reads them itself.
"""

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from redis import RedisError

from accounts.liveness import HEARTBEAT_LUA, lost_key, seen_key
from accounts.tokens import CachedToken
from nija.api.throttling import RateWindow
from nija.cache import TOKEN, LuaScript, Prefetched, raw_client
from nija.ratelimit import SLIDING_WINDOW_LUA, RateDecision, rate_decision_from, rate_key

__all__ = ["GateReading", "RedisError", "Remembered", "entry_data", "remember", "remembered", "token_gate"]

MEMO_MAX_ENTRIES: Final = 10_000

# KEYS: the token's entry, the rate window, the heartbeat's seen and lost keys, then the keys to read ahead. ARGV:
# the remembered entry ('' for none), the limit ('' not to count) and window in ms, the heartbeat's second ('' not
# to record) and account id. Reply: {} without an entry; {entry} when it is not the remembered one; else {entry,
# counted, allowed, remaining, retry_ms, was_lost, the values read ahead (nil for a missing key)...}.
GATE: Final = LuaScript(
    SLIDING_WINDOW_LUA
    + HEARTBEAT_LUA
    + """
local entry = redis.call('GET', KEYS[1])
if not entry then
    return {}
end
if entry ~= ARGV[1] then
    return {entry}
end
local reply = {entry, 0, 0, 0, 0, 0}
if ARGV[2] ~= '' then
    local decision = sliding_window(KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3]))
    reply[2], reply[3], reply[4], reply[5] = 1, decision[1], decision[2], decision[3]
end
if ARGV[4] ~= '' then
    reply[6] = heartbeat_record(KEYS[3], KEYS[4], ARGV[4], ARGV[5])
end
if #KEYS > 4 then
    local values = redis.call('MGET', unpack(KEYS, 5))
    for i = 1, #values do
        reply[6 + i] = values[i]
    end
end
return reply
"""
)


@dataclass(frozen=True)
class Remembered:
    """A token's cache entry as this process last read it, and what it resolved to."""

    entry: bytes
    cached: CachedToken


@dataclass(frozen=True)
class GateReading:
    """What the round trip found: the token's entry (None: none cached); when it was the remembered one, the rate
    decision (None when no window was asked for), whether the bot's account was marked lost (None when no
    heartbeat was asked for) and the entries read ahead, by raw key (None: no such key)."""

    entry: bytes | None
    matched: bool
    decision: RateDecision | None = None
    was_lost: bool | None = None
    prefetched: Prefetched = field(default_factory=dict)


_memo: dict[str, Remembered] = {}
_memo_lock = threading.Lock()


def remembered(digest: str) -> Remembered | None:
    return _memo.get(digest)


def remember(digest: str, entry: bytes, cached: CachedToken) -> None:
    with _memo_lock:
        if len(_memo) >= MEMO_MAX_ENTRIES:
            _memo.clear()
        _memo[digest] = Remembered(entry, cached)


def entry_data(entry: bytes) -> dict | None:
    """A token entry's JSON object, or None when it is not one (read as a miss, as nija.cache reads it)."""
    try:
        data = json.loads(entry)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def token_gate(
    digest: str,
    *,
    expected: bytes | None,
    window: RateWindow | None = None,
    heartbeat: tuple[int, int] | None = None,
    prefetch: Sequence[str] = (),
) -> GateReading:
    """Read the token's entry; when it equals `expected`, also count the request in `window`, record the heartbeat
    `(account id, second)` and read the raw keys `prefetch`, in the same script. Raises `redis.RedisError`."""
    keys = [
        TOKEN.raw_key(digest),
        rate_key(window.identifier) if window else "",
        seen_key() if heartbeat else "",
        lost_key() if heartbeat else "",
        *prefetch,
    ]
    args = [
        expected or b"",
        window.limit if window else "",
        window.window_ms if window else "",
        heartbeat[1] if heartbeat else "",
        heartbeat[0] if heartbeat else "",
    ]
    reply = GATE(raw_client(), keys, args)
    if not reply:
        return GateReading(entry=None, matched=False)
    if len(reply) == 1:
        return GateReading(entry=reply[0], matched=False)
    entry, counted, allowed, remaining, retry_ms, was_lost, *values = reply
    # MGET's missing keys reach the script as false, which comes back as nil (RESP2) or False (RESP3): one value a key.
    prefetched = {key: value if isinstance(value, bytes) else None for key, value in zip(prefetch, values, strict=True)}
    decision = rate_decision_from(window.limit, [allowed, remaining, retry_ms]) if window and counted else None
    return GateReading(
        entry=entry,
        matched=True,
        decision=decision,
        was_lost=bool(was_lost) if heartbeat else None,
        prefetched=prefetched,
    )
