"""gunicorn settings for the web process (read with `-c gunicorn.conf.py`; the command line sets the rest).

- Logging: gunicorn's master never loads Django, so its own lines are made JSON by the logs app's formatter
  (`logs.config.build_gunicorn_logging`), like every other line of every process.
- The GIL switch interval: with 8 threads a worker, a thread that holds the portfolio row lock can wait up to the
  default 5 ms for the GIL while the others run, and every check waits behind it. 0.5 ms measured (make bench, 2
  cores): check-position 358 req/s instead of 300, p50 at 200 req/s 6.2 ms instead of 10.4, p99 113 ms instead of
  279. Set here, in the master, so every forked worker inherits it.
- Prometheus: a worker that exits is marked dead in the multiprocess metrics directory (nija.metrics).
- No control socket: gunicorn 27 opens one at $HOME/.gunicorn/gunicorn.ctl by default, shared by every gunicorn a
  user runs on the host (the bench's servers and `make run` would collide); we do not use it.
"""

import sys

from logs.config import build_gunicorn_logging

logconfig_dict = build_gunicorn_logging()

sys.setswitchinterval(0.0005)

control_socket_disable = True


def child_exit(server: object, worker: object) -> None:
    """A worker exited: drop its live gauges from the shared Prometheus directory (its counters still count)."""
    from nija.metrics import process_dead

    process_dead(worker.pid)
