"""gunicorn settings for the web process (read with `-c gunicorn.conf.py`; the command line sets the rest).

- Logging: gunicorn's master never loads Django, so its own lines are made JSON by the logs app's formatter
  (`logs.config.build_gunicorn_logging`), like every other line of every process.
- The GIL switch interval: with 8 threads a worker, a thread that holds the portfolio row lock can wait up to the
  default 5 ms for the GIL while the others run, and every check waits behind it. 0.5 ms measured (make bench, 2
  cores): check-position 358 req/s instead of 300, p50 at 200 req/s 6.2 ms instead of 10.4, p99 113 ms instead of
  279. Set here, in the master, so every forked worker inherits it.
- Prometheus: a worker that exits is marked dead in the multiprocess metrics directory (nija.metrics).
- Garbage collection: once a worker has loaded the application and its URL configuration (every view module),
  everything loaded is moved out of the cyclic collector's reach with `gc.freeze()`. A full collection stops every
  thread of the worker for as long as it takes to traverse the heap: under make bench's load each worker ran one
  every 20 s or so, 150 to 250 ms each (gc.callbacks timing), a stall every check in flight waits out (the open
  loop's p99). Frozen, a full collection traverses only what requests left behind: at most 76 ms, the open loop at
  120 checks/s p99 16 ms instead of 56 (one A/B pair on a busy machine).
- No control socket: gunicorn 27 opens one at $HOME/.gunicorn/gunicorn.ctl by default, shared by every gunicorn a
  user runs on the host (the bench's servers and `make run` would collide); we do not use it.
"""

import gc
import sys

from logs.config import build_gunicorn_logging

logconfig_dict = build_gunicorn_logging()

sys.setswitchinterval(0.0005)

control_socket_disable = True


def child_exit(server: object, worker: object) -> None:
    """A worker exited: drop its live gauges from the shared Prometheus directory (its counters still count)."""
    from nija.metrics import process_dead

    process_dead(worker.pid)


def post_worker_init(worker: object) -> None:
    """The worker has loaded the application: load the URL configuration too (Django imports it on the first
    request), then freeze every object loaded so far (the module docstring: garbage collection). gunicorn also reads
    this file by default for any application started from this directory (the benchmark's Flask stand-in): one that
    is not Django's is left alone."""
    from django.apps import apps
    from django.urls import get_resolver

    if not apps.ready:
        return

    get_resolver().url_patterns  # noqa: B018 - imports every view module and its serializers
    gc.collect()
    gc.freeze()
