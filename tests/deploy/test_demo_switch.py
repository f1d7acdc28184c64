"""`make run` starts the demo desk as the Procfile's `demo` process; `DEMO=0 make run` starts every other one.

Read from what make would run (`make -n`: nothing is executed), so the test follows the Makefile and the Procfile.
"""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def honcho_command(*variables: str) -> list[str]:
    dry_run = subprocess.run(
        ["make", "-n", "--no-print-directory", "run", *variables], cwd=ROOT, capture_output=True, text=True, check=True
    )
    line = next(line for line in dry_run.stdout.splitlines() if "honcho start" in line)
    return line.split("honcho start", 1)[1].split()


def procfile_names() -> list[str]:
    return re.findall(r"^([a-z]+):", (ROOT / "Procfile").read_text(), flags=re.MULTILINE)


def test_the_procfile_runs_the_desk_simulator_against_the_web_port():
    demo = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("demo:"))
    assert "manage.py simulate_desk" in demo
    assert "--base-url http://127.0.0.1:${WEB_PORT}" in demo


def test_make_run_starts_every_process_and_demo_0_leaves_the_desk_out():
    assert "demo" in procfile_names()
    assert honcho_command() == ["-f", "Procfile"]  # no names: honcho starts them all
    assert honcho_command("DEMO=0") == ["-f", "Procfile", *(name for name in procfile_names() if name != "demo")]
