"""A small Server-Sent Events client over http.client, for tests against a real events process.

A thread per stream reads and parses events as they come (a socket read that timed out cannot be resumed), so a
test waits for the next event with a timeout of its choosing.
"""

import contextlib
import http.client
import json
import queue
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None

    def json(self) -> dict:
        return json.loads(self.data)


class SseStream:
    """One GET of the stream: the status and headers at once, then events one by one (keep-alives skipped)."""

    def __init__(self, base_url: str, *, channels: list[str], headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        query = urlencode([("channel", channel) for channel in channels])
        headers = {"Accept": "text/event-stream"} | (headers or {})  # what EventSource sends
        self.connection.request("GET", f"/api/metrics/stream?{query}", headers=headers)
        self._socket = self.connection.sock
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self._socket.settimeout(None)  # the reader thread blocks; callers wait on its queue with their timeout
        self._events: queue.Queue | None = None

    @property
    def content_type(self) -> str:
        return self.response.getheader("Content-Type", "")

    def header(self, name: str) -> str | None:
        return self.response.getheader(name)

    def json(self) -> dict:
        return json.loads(self.response.read())

    def next_event(self, timeout: float = 10.0) -> SseEvent | None:
        """The next event (not a keep-alive), or None when none came within `timeout` seconds."""
        if self._events is None:
            self._events = queue.Queue()
            threading.Thread(target=self._read, daemon=True).start()
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(event, Exception):
            raise ConnectionError("the stream ended") from event
        return event

    def _read(self) -> None:
        fields: dict[str, list[str]] = {}
        try:
            while line := self.response.readline():
                text = line.decode().rstrip("\r\n")
                if text.startswith(":"):
                    continue
                if text:
                    name, _, value = text.partition(":")
                    fields.setdefault(name, []).append(value.removeprefix(" "))
                    continue
                if fields and fields.get("event", [""])[0] != "keep-alive":
                    data = "\n".join(fields.get("data", []))
                    self._events.put(SseEvent(fields.get("event", ["message"])[0], data, _id(fields)))
                fields = {}
            self._events.put(EOFError("end of stream"))
        except Exception as error:  # noqa: BLE001 - any failure ends the stream, and a closed one fails this way
            self._events.put(error)

    def events_until(self, event_type: str, timeout: float = 10.0) -> list[SseEvent]:
        """Every event up to and including the first of `event_type` (AssertionError if it never comes)."""
        seen: list[SseEvent] = []
        deadline = time.monotonic() + timeout
        while (event := self.next_event(max(0.0, deadline - time.monotonic()))) is not None:
            seen.append(event)
            if event.event == event_type:
                return seen
        raise AssertionError(f"no {event_type!r} event within {timeout} s; got {[e.event for e in seen]}")

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already closed by the server
            self._socket.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        self.response.close()


def _id(fields: dict[str, list[str]]) -> str | None:
    values = fields.get("id")
    return values[0] if values else None
