"""Load-generation helpers of the endpoint benchmark (tests/bench/bench_check_endpoint.py).

- `ServerProcess`: a server command (the Procfile's `web` line, `procfile_web_command`; honcho; a stand-in) on a
  free port, in a session of its own; stopping it ends that session (TERM, then KILL) and nothing else.
- `run_wrk`: closed-loop throughput with wrk and a Lua script that rotates tokens and bodies and counts statuses and
  decisions per thread; it reports wrk's own CPU time, so the generator can be shown not to be the bottleneck.
- `open_loop`: a fixed request rate on schedule, whatever earlier requests are doing (asyncio over raw keep-alive
  HTTP/1.1 connections). Latency is measured from the time a request was due, not from when it was sent, so a
  late answer delays nothing and hides nothing (no coordinated omission).
- `CpuMeter` and `LockWaitSampler`: where the CPU went during a run, and how many PostgreSQL backends were active
  or waiting on a lock.
"""

import asyncio
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """File descriptor 1 to /dev/null meanwhile (log handlers hold the stream, so sys.stdout swaps miss them)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def require_wrk() -> str:
    """The wrk binary; installed from Debian when missing and running as root, else the test stops with how to."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True, timeout=300)
        found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is missing: install it with `sudo apt-get install -y wrk` (Debian/Ubuntu package).")
    return found


# ---------------------------------------------------------------------------------------------- CPU accounting
def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if fields else 0.0


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children_of(pid: int) -> list[int]:
    return [child for child in _all_pids() if (fields := _stat_fields(child)) and int(fields[1]) == pid]


def pids_matching(predicate: Callable[[str, str], bool]) -> list[int]:
    """Processes whose (comm, cmdline) satisfy `predicate`."""
    found = []
    for pid in _all_pids():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if predicate(comm, cmdline):
            found.append(pid)
    return found


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores together."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass
class CpuMeter:
    """CPU seconds used by named groups of processes between `start` and `stop` (cores = seconds / wall time)."""

    groups: dict[str, Callable[[], list[int]]]
    _before: dict[str, float] = field(default_factory=dict)
    _machine: tuple[float, float] = (0.0, 0.0)
    _wall: float = 0.0
    cores: dict[str, float] = field(default_factory=dict)

    def _sample(self) -> dict[str, float]:
        return {name: sum(process_cpu_seconds(pid) for pid in pids()) for name, pids in self.groups.items()}

    def start(self) -> None:
        self._before = self._sample()
        self._machine = machine_busy_seconds()
        self._wall = time.monotonic()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._wall
        after = self._sample()
        busy, total = machine_busy_seconds()
        self.cores = {name: (after[name] - self._before.get(name, 0.0)) / wall for name in after}
        self.cores["machine (all processes)"] = (busy - self._machine[0]) / wall
        self.cores["machine capacity"] = (total - self._machine[1]) / wall
        return self.cores


# ---------------------------------------------------------------------------------------------- PostgreSQL waits
class LockWaitSampler:
    """Samples pg_stat_activity of one database every `interval` seconds from its own connection: the mean number
    of backends running a statement and of those waiting on a lock (the portfolio row, for checks)."""

    def __init__(self, dsn: dict, database: str, interval: float = 0.01) -> None:
        self._dsn, self._database, self._interval = dsn, database, interval
        self._stop = threading.Event()
        self._samples: list[tuple[int, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = psycopg2.connect(**self._dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                while not self._stop.is_set():
                    cursor.execute(
                        "SELECT count(*) FILTER (WHERE state = 'active'),"
                        " count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock')"
                        " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        [self._database],
                    )
                    self._samples.append(cursor.fetchone())
                    time.sleep(self._interval)
        finally:
            conn.close()

    def __enter__(self) -> "LockWaitSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def mean_active(self) -> float:
        return sum(active for active, _ in self._samples) / max(len(self._samples), 1)

    @property
    def mean_lock_waiting(self) -> float:
        return sum(waiting for _, waiting in self._samples) / max(len(self._samples), 1)


# ---------------------------------------------------------------------------------------------- the servers
def descendants_of(pid: int) -> list[int]:
    """Every process below `pid` (children, their children ...)."""
    parents = {}
    for child in _all_pids():
        fields = _stat_fields(child)
        if fields:
            parents.setdefault(int(fields[1]), []).append(child)
    found, frontier = [], [pid]
    while frontier:
        below = parents.get(frontier.pop(), [])
        found.extend(below)
        frontier.extend(below)
    return found


def procfile_command(process: str, variables: dict[str, str]) -> list[str]:
    """The Procfile's line for `process` as an argument list, `${NAME}` replaced from `variables`."""
    for line in (REPO / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            for key, value in variables.items():
                command = command.replace("${" + key + "}", value)
            return command.split()
    raise LookupError(f"no {process!r} line in the Procfile")


def procfile_web_command(*, app: str, port: int, workers: int = 2, threads: int | None = None) -> list[str]:
    """The Procfile's `web` command (what `make run` serves: gunicorn.conf.py, worker class, workers, threads,
    timeouts) on `port`, serving `app`; `threads` overrides the Procfile's thread count (BENCH_THREADS)."""
    command = procfile_command("web", {"WEB_WORKERS": str(workers), "WEB_PORT": str(port)})
    command = [app if part == "nija.wsgi:application" else part for part in command]
    if threads is not None:
        command[command.index("--threads") + 1] = str(threads)
    command[0] = str(REPO / ".venv/bin" / command[0])
    return command


class ServerProcess:
    """A server command on `port`, in a session of its own; stopping it ends that session (TERM, then KILL)."""

    def __init__(self, *, command: list[str], port: int, env: dict[str, str], log_path: Path, name: str) -> None:
        self.port = port
        self.log_path = log_path
        self.name = name
        self._env = env
        self._command = command
        self._process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def command_line(self) -> str:
        return " ".join(part.removeprefix(str(REPO) + "/") for part in self._command)

    def pids(self) -> list[int]:
        if self._process is None:
            return []
        return [self._process.pid, *descendants_of(self._process.pid)]

    def start(self, ready_path: str = "/api/health", timeout: float = 60.0) -> None:
        log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            self._command, cwd=REPO, env=self._env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self._process.returncode}):\n{self.log_tail()}")
            try:
                urllib.request.urlopen(self.base_url + ready_path, timeout=1).close()  # noqa: S310 - loopback http
                return
            except urllib.error.HTTPError:
                return  # it answers (a 503 from a health probe, a 405 from a POST-only path: still an answer)
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """TERM to the server's own session (master and workers), KILL after the graceful timeout."""
        if self._process is None or self._process.poll() is not None:
            return
        session = os.getpgid(self._process.pid)
        os.killpg(session, signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(session, signal.SIGKILL)
            self._process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> "ServerProcess":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------- wrk (closed loop)
LUA_TEMPLATE = r"""
-- Generated by tests/bench/endpoint_load.py: rotates tokens and bodies, counts statuses and decisions.
local clients = {CLIENTS}
local symbols = {SYMBOLS}
local method, path, run_id, mode, auth = "{METHOD}", "{PATH}", "{RUN_ID}", "{MODE}", {AUTH}
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  s200, s4xx, s429, s5xx, sother = 0, 0, 0, 0, 0
  approved, pending, rejected = 0, 0, 0
end

function request()
  sent = sent + 1
  local i = (thread_id * 7919 + sent) % #clients + 1
  local client = clients[i]
  local headers = {}
  if auth then headers["Authorization"] = "Bearer " .. client[2] end
  if method == "GET" then
    return wrk.format("GET", path, headers)
  end
  local s = symbols[(sent % #symbols) + 1]
  headers["Content-Type"] = "application/json"
  local body
  if mode == "legacy" then
    body = string.format('{"account_id":%d,"position_size":"%s"}', client[1], s[4])
  else
    local extra = ""
    if mode == "dry" then extra = ',"dry_run":true' end
    body = string.format(
      '{"account_id":%d,"symbol":"%s","side":"long","quantity":"%s","price":"%s","client_order_id":"%s-%d-%d"%s}',
      client[1], s[1], s[2], s[3], run_id, thread_id, sent, extra)
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    s200 = s200 + 1
    if method == "POST" then
      if string.find(body, '"decision":%s*"approved"') then approved = approved + 1
      elseif string.find(body, '"decision":%s*"pending_approval"') then pending = pending + 1
      elseif string.find(body, '"decision":%s*"rejected"') then rejected = rejected + 1 end
    end
  elseif status == 429 then s429 = s429 + 1
  elseif status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  else sother = sother + 1 end
end

function done(summary, latency, requests)
  local totals = {}
  for _, name in ipairs({"s200", "s4xx", "s429", "s5xx", "sother", "approved", "pending", "rejected"}) do
    totals[name] = 0
    for _, thread in ipairs(threads) do totals[name] = totals[name] + (thread:get(name) or 0) end
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"timeouts":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d,"s200":%d,"s4xx":%d,"s429":%d,"s5xx":%d,"sother":%d,' ..
    '"approved":%d,"pending":%d,"rejected":%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status, latency:percentile(50), latency:percentile(99),
    totals.s200, totals.s4xx, totals.s429, totals.s5xx, totals.sother,
    totals.approved, totals.pending, totals.rejected))
end
"""


def _lua_string(value: str) -> str:
    assert all(ch.isalnum() or ch in "-_.:/" for ch in value), value  # tokens, ids, symbols and decimals only
    return f'"{value}"'


def write_lua(
    path: Path,
    *,
    method: str,
    url_path: str,
    clients: list[tuple[int, str]],
    symbols: list[tuple[str, str, str]] = (),
    run_id: str = "r",
    mode: str = "check",
    auth: bool = True,
) -> Path:
    """A wrk script: `clients` are (account_id, raw token); `symbols` are (symbol, quantity, price) for POSTs.
    `mode`: "check" (a reserving check body), "dry" (the same with dry_run), "legacy" (`{account_id,
    position_size}`, the notional quantity x price). `auth` False: no Authorization header."""
    assert mode in ("check", "dry", "legacy"), mode
    lua_clients = ",".join(f"{{{account_id},{_lua_string(token)}}}" for account_id, token in clients)
    lua_symbols = ",".join(
        "{" + ",".join(_lua_string(part) for part in (*row, format(Decimal(row[1]) * Decimal(row[2]), "f"))) + "}"
        for row in symbols
    )
    script = (
        LUA_TEMPLATE.replace("{CLIENTS}", "{" + lua_clients + "}")
        .replace("{SYMBOLS}", "{" + lua_symbols + "}")
        .replace("{METHOD}", method)
        .replace("{PATH}", url_path)
        .replace("{RUN_ID}", run_id)
        .replace("{MODE}", mode)
        .replace("{AUTH}", "true" if auth else "false")
    )
    path.write_text(script)
    return path


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    counts: dict[str, int]
    p50_ms: float
    p99_ms: float
    wrk_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def counted_rate(self, status: str = "s200") -> float:
        """Answers of one status class a second (`s200`: only 2xx count; `s429` for the limited slices)."""
        return self.counts[status] / self.seconds

    @property
    def errors(self) -> int:
        return sum(self.counts[name] for name in ("connect_errors", "read_errors", "write_errors", "timeouts"))


def run_wrk(
    wrk: str, *, base_url: str, script: Path, seconds: float, connections: int = 32, threads: int = 2
) -> WrkResult:
    """One closed-loop run: `connections` clients, each sending its next request as soon as the last one answered."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [
            wrk,
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base_url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((row for row in completed.stdout.splitlines() if row.startswith("WRK_JSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        counts=data,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        wrk_cpu_seconds=cpu,
    )


# ---------------------------------------------------------------------------------------------- open loop
@dataclass
class OpenLoopResult:
    rate: float
    seconds: float
    latencies_ms: list[float]
    send_lag_ms: list[float]
    statuses: Counter
    decisions: Counter
    connections_opened: int
    elapsed: float = 0.0
    unanswered: int = 0

    def percentile(self, values: list[float], pct: float) -> float:
        """Nearest rank."""
        ordered = sorted(values)
        return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)] if ordered else 0.0


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.idle_since = reader, writer, time.monotonic()

    async def exchange(self, payload: bytes) -> tuple[int, bytes]:
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


async def _open_loop(
    host: str,
    port: int,
    rate: float,
    seconds: float,
    make_request: Callable[[int], bytes],
    *,
    warm: int,
    limit: int,
    grace: float,
) -> OpenLoopResult:
    idle: list[_Connection] = []
    every: list[_Connection] = []
    opened = 0
    # At most `limit` connections at once: past that, due requests queue here (their latency still counts from
    # their due time), as clients behind a connection pool would.
    slots = asyncio.Semaphore(limit)

    async def connect() -> _Connection:
        nonlocal opened
        opened += 1
        every.append(_Connection(*await asyncio.open_connection(host, port)))
        return every[-1]

    for _ in range(warm):
        idle.append(await connect())
    result = OpenLoopResult(rate, seconds, [], [], Counter(), Counter(), 0)
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate
    total = int(rate * seconds)
    start = loop.time() + 0.05
    pending: list[asyncio.Task] = []
    due_of: dict[asyncio.Task, float] = {}

    async def one(number: int, due: float) -> None:
        result.send_lag_ms.append((loop.time() - due) * 1000)
        async with slots:
            await send(number, due)

    async def send(number: int, due: float) -> None:
        # Most recently used first; a connection idle past the server's keep-alive (2 s) may be closed: drop it.
        connection = None
        while idle:
            candidate = idle.pop()
            if time.monotonic() - candidate.idle_since < 1.0:
                connection = candidate
                break
            candidate.close()
        if connection is None:
            connection = await connect()
        try:
            status, body = await connection.exchange(make_request(number))
        except (OSError, asyncio.IncompleteReadError):
            connection.close()
            result.statuses["connection error"] += 1
            return
        result.latencies_ms.append((loop.time() - due) * 1000)
        result.statuses[status] += 1
        if status == 200:
            decision = json.loads(body).get("decision")
            result.decisions[decision or "none"] += 1
        connection.idle_since = time.monotonic()
        idle.append(connection)

    for number in range(total):
        due = start + number * interval
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(number, due))
        due_of[task] = due
        pending.append(task)
    # Requests still unanswered `grace` seconds after the last one was due are given up (the server could not
    # keep the rate): each counts with the time it had waited, a lower bound of its latency.
    _, late = await asyncio.wait(pending, timeout=grace) if pending else (set(), set())
    cutoff = loop.time()
    for task in late:
        task.cancel()
    result.unanswered = len(late)
    result.latencies_ms.extend((cutoff - due_of[task]) * 1000 for task in late)
    for connection in every:
        connection.close()
    result.connections_opened = opened
    return result


def open_loop(
    base_url: str,
    *,
    rate: float,
    seconds: float,
    make_request: Callable[[int], bytes],
    warm: int = 8,
    max_connections: int = 64,
    grace: float = 10.0,
) -> OpenLoopResult:
    """Send `rate` requests a second for `seconds`, each at its due time; latency counts from the due time."""
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    result = asyncio.run(
        _open_loop(host, int(port), rate, seconds, make_request, warm=warm, limit=max_connections, grace=grace)
    )
    result.elapsed = time.monotonic() - started
    return result


def http_request(method: str, path: str, *, token: str, body: dict | None = None) -> bytes:
    """One HTTP/1.1 keep-alive request as bytes."""
    payload = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
    head = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {token}",
        "Connection: keep-alive",
    ]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload
