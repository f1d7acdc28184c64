"""Where a server's workers spend their time under the benchmark's load: py-spy samples of each worker process
during a slice, summed over a kind's slices (`make bench` with `BENCH_PYSPY=check,bare`, say).

py-spy reads the workers' stacks from outside (no code in the server, no pause with `--nonblocking`). By default it
samples the thread that holds the GIL (`--gil`): in a threaded Python server that is where the CPU a request costs
goes, and the sum of a function's share is what the workers would save without it. `BENCH_PYSPY_ALL=1` samples
every thread that is not idle instead (waits on a socket or a lock included), to see where requests wait.

Printed per kind: the functions with the most samples of their own, then the frames with the most samples under
them (inclusive), each as a share of the kind's samples.
"""

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

SAMPLE_RATE = 250  # a second, per worker process
# A frame as py-spy's raw format names it, "function (path/to/file.py:line)", shortened to the package's path.
_PREFIX = re.compile(r" \((?:/[^ ]*/(?:site-packages|lib/python3\.\d+)/|" + re.escape(str(Path.cwd())) + "/)")


def py_spy() -> str | None:
    """The py-spy binary of the project's environment (requirements/local.txt), or None."""
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


class WorkerProfile:
    """py-spy on a server's workers during the slices of the kinds asked for; `report()` sums them per kind."""

    def __init__(self, kinds: list[str], directory: Path) -> None:
        self.kinds = kinds
        self.directory = directory
        self.binary = py_spy() if kinds else None
        self.idle_too = os.environ.get("BENCH_PYSPY_ALL") == "1"
        self._running: list[subprocess.Popen] = []
        self._count = 0

    def start(self, kind: str, workers: list[int], seconds: float) -> None:
        """Sample each of `workers` for `seconds`, in the background (no-op for a kind not asked for)."""
        if kind not in self.kinds or self.binary is None:
            return
        for pid in workers:
            self._count += 1
            output = self.directory / f"py-spy-{kind}-{self._count}.txt"
            command = [self.binary, "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE), "--format", "raw"]
            command += ["--nonblocking", "--duration", str(max(1, round(seconds))), "--output", str(output)]
            if not self.idle_too:
                command.append("--gil")
            self._running.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def wait(self) -> None:
        for process in self._running:
            process.wait(timeout=60)
        self._running.clear()

    def report(self, *, own: int = 25, inclusive: int = 60) -> str:
        if not self.kinds:
            return ""
        if self.binary is None:
            return "\n-- py-spy: not installed (pip install -r requirements/local.txt), no worker profile"
        lines = []
        for kind in self.kinds:
            own_samples, under, total = _summed(sorted(self.directory.glob(f"py-spy-{kind}-*.txt")))
            what = "every thread not idle" if self.idle_too else "the thread holding the GIL"
            lines.append(f"\n-- py-spy of the bench server's workers in the {kind} slices ({what}): {total:,} samples")
            if not total:
                continue
            lines.append("   own samples:")
            lines += [f"   {n / total:6.1%}  {frame}" for frame, n in own_samples.most_common(own)]
            lines.append("   inclusive (the frame and what it called):")
            lines += [f"   {n / total:6.1%}  {frame}" for frame, n in under.most_common(inclusive)]
        return "\n".join(lines)


def _summed(paths: list[Path]) -> tuple[Counter, Counter, int]:
    """(samples by leaf frame, samples under each frame, all samples) of py-spy raw files: `a;b;c count` lines."""
    own: Counter = Counter()
    under: Counter = Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [_PREFIX.sub(" (", frame) for frame in stack.split(";") if frame]
            samples = int(count)
            total += samples
            if frames:
                own[frames[-1]] += samples
            for frame in set(frames):
                under[frame] += samples
    return own, under, total
