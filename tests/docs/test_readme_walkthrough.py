"""The README's bot walkthrough, run as written: its marked shell blocks are executed by bash with the real curl
against live web (gunicorn) and events (uvicorn) processes, from a directory holding a `var/demo-tokens.json` of
a seeded account, so a walkthrough that stops working fails `make test`.

What the test adds to the commands: the live servers' addresses in place of `make run`'s, the two figures the README
tells the reader to copy from an answer (`EQUITY`, `POSITION`), and a `.curlrc` (through `CURL_HOME`) that makes
curl quiet and print the status code after the body. The commands themselves run unchanged.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from accounts.models import TokenKind
from tests.accounts.factories import OperatorFactory, issue_token
from tests.risk.conftest import funded_account
from tests.servers import REPO, LiveProcess, events_server, server_env, web_server
from trading.models import Position

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

README = REPO / "README.md"
MAKE_RUN_WEB, MAKE_RUN_EVENTS = "http://127.0.0.1:8000", "http://127.0.0.1:8001"
MARKER = re.compile(
    r"<!-- walkthrough: (?P<name>[a-z]+)(?: status=(?P<status>\d{3}))? -->\n```bash\n(?P<script>.*?)```", re.DOTALL
)
FENCE = re.compile(r"```(?P<language>\w*)\n(?P<body>.*?)```", re.DOTALL)
STEPS = ["account", "report", "check", "replay", "fill", "close"]
EQUITY = "100000.00000000"


@dataclass(frozen=True)
class Block:
    name: str
    status: int | None
    script: str
    example: dict | None  # the answer the README shows right after the block, if any


def readme_blocks() -> dict[str, Block]:
    text = README.read_text()
    matches = list(MARKER.finditer(text))
    blocks = {}
    for index, match in enumerate(matches):
        following = text[match.end() : matches[index + 1].start() if index + 1 < len(matches) else len(text)]
        shown = FENCE.search(following)  # the first fenced block after this one, before the next step
        blocks[match["name"]] = Block(
            name=match["name"],
            status=int(match["status"]) if match["status"] else None,
            script=match["script"],
            example=json.loads(shown["body"]) if shown and shown["language"] == "json" else None,
        )
    return blocks


@dataclass
class Walk:
    """Where the README's commands run: a directory with the tokens file, a curl configuration, the environment."""

    directory: Path
    env: dict[str, str]

    def run(self, script: str) -> tuple[int, dict]:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, f"{script}\nexit {done.returncode}: {done.stderr}"
        body, _, status = done.stdout.rstrip("\n").rpartition("\n")
        return int(status), json.loads(body)


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker) -> Iterator[tuple[LiveProcess, LiveProcess]]:
    """`make run`'s web and events commands and settings, on free ports, against the test database."""
    with django_db_blocker.unblock():
        env = server_env(settings_module="nija.settings.local")
    web = web_server(env).start()
    try:
        events = events_server(env).start()
    except Exception:
        web.stop()
        raise
    yield web, events
    events.stop()
    web.stop()


@pytest.fixture
def walk(servers, tmp_path, redis_client) -> Walk:
    """A seeded account with its bot token in `var/demo-tokens.json`, as `make run` leaves it, and the README's
    setup block run there (with the live servers' addresses): its variables are every later block's environment."""
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the README walkthrough needs {missing}: `scripts/services.sh start cli-tools` installs them")
    web, events = servers
    account = funded_account(EQUITY)
    tokens = {
        "operator_token": issue_token(TokenKind.OPERATOR, user=OperatorFactory()),
        "accounts": [{"id": account.pk, "token": issue_token(TokenKind.BOT, instance=account)}],
    }
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "demo-tokens.json").write_text(json.dumps(tokens))
    (tmp_path / ".curlrc").write_text('silent\nshow-error\nwrite-out = "\\n%{http_code}\\n"\n')
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CURL_HOME": str(tmp_path), "LANG": "C.UTF-8"}

    setup = readme_blocks()["setup"].script
    setup = setup.replace(MAKE_RUN_WEB, web.base_url).replace(MAKE_RUN_EVENTS, events.base_url)
    names = sorted(set(re.findall(r"\b([A-Z][A-Z_]*)=", setup)))
    printed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", setup + "".join(f'\nprintf "%s\\0" "${name}"' for name in names)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.split("\0")
    variables = dict(zip(names, printed, strict=False))
    assert variables["ACCOUNT"] == str(account.pk)
    assert variables["TOKEN"] == tokens["accounts"][0]["token"]
    assert (variables["BASE"], variables["EVENTS"]) == (web.base_url, events.base_url)
    return Walk(directory=tmp_path, env=env | variables)


class StreamReader:
    """The README's stream command, running in the background; its output collected line by line."""

    def __init__(self, walk: Walk, script: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=walk.directory,
            env=walk.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, line: str, *, count: int = 1, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.lines.count(line) < count:
            assert time.monotonic() < deadline, f"no {line!r} x{count} in the stream:\n" + "\n".join(self.lines)
            assert self.process.poll() is None, "the stream ended:\n" + "\n".join(self.lines)
            time.sleep(0.05)

    def events(self, name: str) -> list[dict]:
        found = []
        for index, line in enumerate(self.lines):
            if line == f"event: {name}":
                data = next(text for text in self.lines[index:] if text.startswith("data: "))
                found.append(json.loads(data.removeprefix("data: ")))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=10)


def assert_shown_keys_are_real(example: dict | None, answer: dict) -> None:
    """The answer the README shows has no field the API does not answer (a shown "..." stands for the rest)."""
    if example is None:
        return
    assert set(example) - {"..."} <= set(answer), (example, answer)
    for key, value in example.items():
        if isinstance(value, dict) and isinstance(answer.get(key), dict):
            assert_shown_keys_are_real(value, answer[key])


def test_the_readme_marks_the_whole_walkthrough():
    blocks = readme_blocks()

    assert list(blocks) == ["setup", "stream", *STEPS]
    assert all(blocks[name].status == 200 for name in STEPS)


def test_the_readme_bot_walkthrough_runs_as_written(walk):
    blocks = readme_blocks()
    stream = StreamReader(walk, blocks["stream"].script)
    try:
        stream.wait_for("event: stream-open")
        answers = {}
        for name in STEPS:
            block = blocks[name]
            status, answers[name] = walk.run(block.script)
            assert status == block.status, (name, answers[name])
            assert_shown_keys_are_real(block.example, answers[name])
            if name == "account":
                walk.env["EQUITY"] = answers[name]["equity"]  # "export EQUITY=<equity from the answer>"
            if name == "check":
                walk.env["POSITION"] = str(answers[name]["position_id"])  # "export POSITION=<position_id ...>"
        stream.wait_for("event: position", count=3)
    finally:
        stream.stop()

    account, report, check, replay, fill, close = (answers[name] for name in STEPS)
    account_id = int(walk.env["ACCOUNT"])
    assert (account["id"], account["equity"], account["state"]) == (account_id, EQUITY, "active")
    assert (report["equity"], report["state"], report["emergency"]) == (
        EQUITY,
        {"portfolio": "active", "account": "active"},
        [],
    )
    assert (check["decision"], check["allowed"], check["reasons"], check["notional"]) == (
        "approved",
        True,
        [],
        "600.00000000",
    )
    assert (replay["replayed"], replay["decision"], replay["position_id"]) == (True, "approved", check["position_id"])
    assert (fill["status"], fill["filled_quantity"], fill["open_cost"]) == ("open", "0.01000000", "599.90000000")
    assert (close["trade"]["pnl"], close["position"]["status"], close["position"]["realized_pnl"]) == (
        "4.50000000",
        "closed",
        "4.50000000",
    )
    position = Position.objects.get(pk=check["position_id"])
    assert (position.instance_id, position.status, position.client_order_id) == (
        account_id,
        "closed",
        walk.env["ORDER"],
    )
    streamed = [(event["position_id"], event["status"]) for event in stream.events("position")]
    assert streamed == [(position.pk, "approved"), (position.pk, "open"), (position.pk, "closed")]
