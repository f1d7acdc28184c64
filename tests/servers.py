"""Real server processes for tests that need them: the web process (gunicorn), the events process (uvicorn) and
throwaway Redis servers, each on a free 127.0.0.1 port, pointed at the suite's test database.

Every process runs in a session of its own; stopping it ends that session (TERM, then KILL) and nothing else.
Their output goes to var/test-artifacts/servers/, kept for a failed run to be read.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "var" / "test-artifacts"
BIN = REPO / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database this test run uses (the test database once pytest-django has set it up)."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def server_env(*, redis_url: str | None = None, settings_module: str = "nija.settings.test", **extra: str) -> dict:
    """Environment of a server process: the test database, a Redis (the suite's by default), no log files."""
    redis_url = redis_url or settings.REDIS_URL
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": test_database_url(),
        "TEST_REDIS_URL": redis_url,
        "REDIS_URL": redis_url,
        "CREDENTIALS_KEYS": ",".join(settings.CREDENTIALS_KEYS),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "LOG_DIR": "",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
        **extra,
    }


class LiveProcess:
    """One server process on a free port, answering HTTP once `start` returns."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int) -> None:
        self.name = name
        self.port = port
        self.command = command
        self.env = env
        self.log_path = ARTIFACTS / "servers" / f"{name}-{port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, ready_path: str = "/api/health", timeout: float = 30.0) -> "LiveProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.log_tail()}")
            if _answers(self.base_url + ready_path):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(os.getpgid(self.process.pid), signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(os.getpgid(self.process.pid), signal.SIGKILL)
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()  # noqa: S310 - loopback http only
    except urllib.error.HTTPError:
        return True  # an error status is still an answer
    except OSError:
        return False
    return True


def web_server(env: dict[str, str], *, threads: int = 4, port: int | None = None) -> LiveProcess:
    """The Procfile's `web` command (gunicorn, gthread), one worker."""
    port = port or free_port()
    command = [
        str(BIN / "gunicorn"),
        "-c",
        "gunicorn.conf.py",
        "nija.wsgi:application",
        "--worker-class",
        "gthread",
        "--workers",
        "1",
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "30",
        "--graceful-timeout",
        "2",
    ]
    return LiveProcess("web", command, env, port)


def events_server(env: dict[str, str], *, port: int | None = None) -> LiveProcess:
    """The Procfile's `events` command (uvicorn serving nija.asgi)."""
    port = port or free_port()
    command = [
        str(BIN / "uvicorn"),
        "nija.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--no-proxy-headers",
        "--timeout-graceful-shutdown",
        "1",
    ]
    return LiveProcess("events", command, env, port)


class RedisServer:
    """A throwaway redis-server of a test's own (no persistence), which the test may stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"nija-redis-{self.port}-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is missing: `scripts/services.sh start test-redis` installs it.")
        command = [server, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [*command, "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Stop the server (every connection drops, every key is gone) and start a fresh one on the same port."""
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
