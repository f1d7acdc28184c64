"""How many Server-Sent Event streams one events process holds, what each costs in memory, and how long an event
takes from `publish` to a client, at 1,000 open streams, against a baseline of one stream in the same run.

The events process is the Procfile's uvicorn (`make run`'s settings, debug off) on 127.0.0.1 with a Redis server
of the bench's own; the clients are raw HTTP/1.1 connections in one asyncio loop of this process; events are
published by this process's real publisher (queue, Redis script, fan-out, the events process's listener).
Latency is measured from the `publish` call to the moment the client read the event (so the clients' own work
is included: an upper bound).

Targets: 1,000 streams at <= 64 KiB each; p99 <= 250 ms at 1,000 streams. Bounded: the ramp stops at
NIJA_BENCH_MAX_STREAMS (4,000 by default) or after RAMP_SECONDS.

Run: `.venv/bin/pytest tests/bench/bench_stream.py -s -o addopts=""` (or `make bench`). Prints figures; asserts
only that the streams opened and the events arrived.
"""

import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field

import psutil
import pytest

from accounts.models import TokenKind
from nija.events import flush_published, publish
from tests.accounts.factories import OperatorFactory, issue_token
from tests.monitoring.stream_support import start_events_process
from tests.servers import LiveProcess, RedisServer

STREAMS = 1000
MAX_STREAMS = int(os.environ.get("NIJA_BENCH_MAX_STREAMS", "4000"))
RAMP_SECONDS = 60.0
EVENTS = 20
EVENT_INTERVAL = 0.5
DELIVERY_WAIT_SECONDS = 15.0
OPEN_CONCURRENCY = 50
TOKENS = 4  # the API's own rate limit (per token) stays out of the way of the ramp
TARGET_BYTES_PER_STREAM = 64 * 1024
TARGET_P99_MS = 250.0


@dataclass
class Clients:
    """Open streams and when each read each event (sequence number -> receive times)."""

    host: str
    port: int
    tokens: list[str]
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    readers: list[asyncio.Task] = field(default_factory=list)
    received: dict[int, list[float]] = field(default_factory=dict)

    async def open(self, number: int) -> bool:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            return False
        token = self.tokens[number % len(self.tokens)]
        request = (
            f"GET /api/metrics/stream?channel=dashboard HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        )
        writer.write(request.encode())
        try:
            status = await asyncio.wait_for(reader.readline(), timeout=30)
            while (line := await asyncio.wait_for(reader.readline(), timeout=30)) and b"stream-open" not in line:
                pass
        except (OSError, TimeoutError):
            writer.close()
            return False
        if b" 200 " not in status or not line:
            writer.close()
            return False
        self.writers.append(writer)
        self.readers.append(asyncio.create_task(self._read(reader)))
        return True

    async def _read(self, reader: asyncio.StreamReader) -> None:
        marker = b'data: {"seq": '
        while line := await reader.readline():
            if line.startswith(marker):
                sequence = int(line[len(marker) :].split(b"}")[0])
                self.received.setdefault(sequence, []).append(time.perf_counter())

    async def open_many(self, count: int, deadline: float) -> int:
        semaphore = asyncio.Semaphore(OPEN_CONCURRENCY)

        async def one(number: int) -> bool:
            async with semaphore:
                return time.monotonic() < deadline and await self.open(number)

        start = len(self.writers)
        results = await asyncio.gather(*(one(start + number) for number in range(count)))
        return sum(results)

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


async def _latencies(clients: Clients, first_sequence: int) -> list[list[float]]:
    """Publish EVENTS events EVENT_INTERVAL apart; for each event, every client's publish-to-read time, in ms
    (waiting up to DELIVERY_WAIT_SECONDS after the last for every client to have read every event)."""
    sent: dict[int, float] = {}
    for sequence in range(first_sequence, first_sequence + EVENTS):
        sent[sequence] = time.perf_counter()
        publish(event_type="metrics", data={"seq": sequence})
        await asyncio.sleep(EVENT_INTERVAL)
    expected = len(clients.writers) * EVENTS
    deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
    while sum(len(clients.received.get(seq, [])) for seq in sent) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return [
        [(received - sent[sequence]) * 1000 for received in clients.received.get(sequence, [])] for sequence in sent
    ]


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _run(events: LiveProcess, tokens: list[str]) -> dict:
    process = psutil.Process(events.pid)
    clients = Clients("127.0.0.1", events.port, tokens)
    figures: dict = {"rss_idle": process.memory_info().rss, "threads_idle": process.num_threads()}

    assert await clients.open_many(1, time.monotonic() + 30) == 1
    baseline = await _latencies(clients, 0)
    await asyncio.sleep(0.5)
    figures["rss_one"] = process.memory_info().rss

    started = time.monotonic()
    opened = await clients.open_many(STREAMS - 1, started + RAMP_SECONDS)
    figures["open_seconds"] = time.monotonic() - started
    await asyncio.sleep(1.0)
    figures.update(streams=1 + opened, rss_many=process.memory_info().rss, threads_many=process.num_threads())
    server_cpu, client_cpu = _cpu_seconds(process), _cpu_seconds(psutil.Process())
    loaded = await _latencies(clients, EVENTS)
    figures["server_cpu"] = _cpu_seconds(process) - server_cpu
    figures["client_cpu"] = _cpu_seconds(psutil.Process()) - client_cpu

    deadline = time.monotonic() + RAMP_SECONDS
    while len(clients.writers) < MAX_STREAMS and time.monotonic() < deadline:
        if await clients.open_many(min(500, MAX_STREAMS - len(clients.writers)), deadline) == 0:
            break
    await asyncio.sleep(1.0)
    figures.update(max_streams=len(clients.writers), rss_max=process.memory_info().rss)
    await clients.close()
    return figures | {"baseline": baseline, "loaded": loaded}


@pytest.mark.django_db(transaction=True)
def test_streams_per_process_memory_per_stream_and_latency_at_1000(settings, redis_client):
    redis_server = RedisServer().start()
    settings.EVENTS_REDIS_URL = redis_server.url
    operator = OperatorFactory()
    tokens = [issue_token(TokenKind.OPERATOR, user=operator) for _ in range(TOKENS)]
    events = start_events_process(redis_server.url, DJANGO_DEBUG="0", EVENTS_MAX_STREAMS_PER_TOKEN="100000")
    try:
        figures = asyncio.run(_run(events, tokens))
    finally:
        flush_published()
        events.stop()
        redis_server.remove()

    per_event = figures["loaded"]
    baseline = [ms for event in figures["baseline"] for ms in event]
    loaded = [ms for event in per_event for ms in event]
    assert figures["streams"] == STREAMS
    assert len(loaded) == STREAMS * EVENTS, f"every stream received every event ({len(loaded)})"
    _print(figures, baseline, loaded)
    _print_events(per_event)


def _print(figures: dict, baseline: list[float], loaded: list[float]) -> None:
    mib = 2**20
    streams, held = figures["streams"], figures["max_streams"]
    per_stream = (figures["rss_many"] - figures["rss_one"]) / (streams - 1)
    per_stream_held = (figures["rss_max"] - figures["rss_one"]) / (held - 1)
    p50, p99 = _percentile(loaded, 0.50), _percentile(loaded, 0.99)
    base_p50, base_p99 = _percentile(baseline, 0.50), _percentile(baseline, 0.99)
    rss = [figures[key] / mib for key in ("rss_idle", "rss_one", "rss_many", "rss_max")]
    cpu = [figures[key] / len(loaded) * 1e6 for key in ("server_cpu", "client_cpu")]
    print()
    print("stream bench: one events process (uvicorn), 127.0.0.1, a Redis of its own")
    print(f"  streams held              : {held} (the ramp stops at {MAX_STREAMS} or after {RAMP_SECONDS:.0f} s)")
    print(f"  opening {streams} streams      : {figures['open_seconds']:.2f} s")
    print(
        f"  process RSS (MiB)         : idle {rss[0]:.1f}, 1 stream {rss[1]:.1f},"
        f" {streams} streams {rss[2]:.1f}, {held} streams {rss[3]:.1f}"
    )
    print(
        f"  memory per stream         : {per_stream / 1024:.1f} KiB at {streams}, {per_stream_held / 1024:.1f} KiB at"
        f" {held} (target <= {TARGET_BYTES_PER_STREAM // 1024} KiB: ratio {per_stream / TARGET_BYTES_PER_STREAM:.2f})"
    )
    print(
        f"  threads                   : {figures['threads_idle']} idle, {figures['threads_many']} at {streams} streams"
    )
    print(f"  CPU per delivery          : events process {cpu[0]:.0f} us, bench clients {cpu[1]:.0f} us")
    print(f"  publish->receive, 1 stream : p50 {base_p50:.1f} ms, p99 {base_p99:.1f} ms ({len(baseline)} deliveries)")
    print(
        f"  publish->receive, {streams} : p50 {p50:.1f} ms, p99 {p99:.1f} ms, mean {statistics.fmean(loaded):.1f} ms"
        f" ({len(loaded)} deliveries); p99 / 1 stream's {p99 / base_p99:.1f},"
        f" p99 / target {TARGET_P99_MS:.0f} ms {p99 / TARGET_P99_MS:.2f}"
    )


def _print_events(per_event: list[list[float]]) -> None:
    """Each event's spread over the streams: a tail made of a few events delayed to every stream (the events
    process stopped: a full garbage collection) looks different from a tail spread over all of them."""
    late = [(number, event) for number, event in enumerate(per_event) if event and max(event) > TARGET_P99_MS]
    medians = sorted(statistics.median(event) for event in per_event if event)
    print(
        f"  per event at {STREAMS}       : median of each event's p50 {statistics.median(medians):.1f} ms,"
        f" worst event's p50 {medians[-1]:.1f} ms; {len(late)} of {len(per_event)} events reached a stream"
        f" after {TARGET_P99_MS:.0f} ms"
    )
    for number, event in late:
        print(
            f"    event {number}: first stream {min(event):.1f} ms, p50 {statistics.median(event):.1f} ms,"
            f" last {max(event):.1f} ms"
        )
