"""scripts/services.sh keeps the local PostgreSQL cluster durable: a new cluster is, and one an earlier version
of the script made with fsync, synchronous_commit and full_page_writes off is fixed at the next start, whether
it was stopped or still running.

A cluster of its own: the script copied into a temporary checkout (its cluster lives where that checkout says)
on a free port; stopped and removed at the end. The suite's shared cluster is never touched.
"""

import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")
NOT_DURABLE = "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"


def _pg_bindir() -> Path | None:
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(os.path.realpath(pg_ctl)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_pg(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class Checkout:
    """A throwaway checkout holding only the script, and the cluster it starts."""

    def __init__(self, root: Path, port: int, bindir: Path) -> None:
        self.root, self.port, self.bindir = root, port, bindir

    def services(self, *args: str) -> subprocess.CompletedProcess:
        env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "PG_PORT")}
        env["PG_PORT"] = str(self.port)
        return subprocess.run(
            [str(self.root / "scripts" / "services.sh"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )

    @property
    def data(self) -> Path:
        return (self.root / "var" / "postgres").resolve() / "data"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(_as_pg(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", *args), check=True, timeout=60)

    def append_to_conf(self, text: str) -> None:
        subprocess.run(
            _as_pg("tee", "-a", str(self.data / "postgresql.conf")),
            input=text,
            text=True,
            check=True,
            capture_output=True,
        )

    def conf_lines_setting_durability(self) -> list[str]:
        lines = (self.data / "postgresql.conf").read_text().splitlines()
        return [line for line in lines if line.split("=")[0].strip() in DURABILITY]

    def durability(self) -> dict[str, str]:
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(DURABILITY)])
                return dict(cursor.fetchall())
        finally:
            conn.close()


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries on this machine")
    (tmp_path / "scripts").mkdir()
    shutil.copy2(Path(settings.BASE_DIR) / "scripts" / "services.sh", tmp_path / "scripts" / "services.sh")
    if os.geteuid() == 0:
        tmp_path.chmod(0o755)  # the `postgres` user follows var/postgres into its own directory
    made = Checkout(tmp_path, _free_port(), bindir)
    yield made
    if (made.data / "PG_VERSION").exists():
        subprocess.run(_as_pg(str(bindir / "pg_ctl"), "-D", str(made.data), "-m", "immediate", "stop"), check=False)
        shutil.rmtree(made.data.parent, ignore_errors=True)


def test_a_new_cluster_is_durable(checkout):
    checkout.services("start", "postgres")

    assert checkout.durability() == dict.fromkeys(DURABILITY, "on")
    assert checkout.conf_lines_setting_durability() == []


def test_a_stopped_cluster_made_without_durability_is_fixed_before_it_starts(checkout):
    checkout.services("start", "postgres")
    checkout.pg_ctl("stop")
    checkout.append_to_conf(NOT_DURABLE)  # what the former script wrote at initdb

    result = checkout.services("start", "postgres")

    assert checkout.durability() == dict.fromkeys(DURABILITY, "on")
    assert "turning on" not in result.stderr  # fixed in the file, before the first connection
    assert checkout.conf_lines_setting_durability() == []


def test_a_running_cluster_without_durability_is_fixed_without_a_restart(checkout):
    checkout.services("start", "postgres")
    checkout.append_to_conf(NOT_DURABLE)
    checkout.pg_ctl("reload")
    for _ in range(50):  # the reload is asynchronous
        if checkout.durability()["fsync"] == "off":
            break
        time.sleep(0.1)
    assert checkout.durability() == dict.fromkeys(DURABILITY, "off")

    result = checkout.services("start", "postgres")

    assert "already running" in result.stderr
    assert "turning on fsync full_page_writes synchronous_commit" in result.stderr
    assert checkout.durability() == dict.fromkeys(DURABILITY, "on")


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_stop_stops_only_the_services_it_names(tmp_path):
    """`stop test-redis` stops the test Redis alone (it used to stop every service of the checkout, the development
    Redis included); `stop` with no name still stops them all, and an unknown name is refused."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(Path(settings.BASE_DIR) / "scripts" / "services.sh", tmp_path / "scripts" / "services.sh")
    redis_port, test_redis_port = _free_port(), _free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "TEST_REDIS_URL")}
    env |= {"REDIS_PORT": str(redis_port), "TEST_REDIS_PORT": str(test_redis_port), "PG_PORT": str(_free_port())}

    def services(*args: str) -> subprocess.CompletedProcess:
        script = str(tmp_path / "scripts" / "services.sh")
        return subprocess.run([script, *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    try:
        assert services("start", "redis", "test-redis").returncode == 0
        assert _redis_answers(redis_port)
        assert _redis_answers(test_redis_port)

        assert services("stop", "test-redis").returncode == 0
        assert not _redis_answers(test_redis_port)
        assert _redis_answers(redis_port)

        refused = services("stop", "redis", "no-such-service")
        assert refused.returncode != 0
        assert "unknown service: no-such-service" in refused.stderr

        assert services("start", "test-redis").returncode == 0
        assert services("stop").returncode == 0
        assert not _redis_answers(redis_port)
        assert not _redis_answers(test_redis_port)
    finally:
        for port in (redis_port, test_redis_port):
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, check=False)
