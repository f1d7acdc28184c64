"""ASGI entry point: uvicorn serves the Server-Sent Events stream through it (a WSGI worker cannot hold
hundreds of open streams). Every other path is faster under WSGI.

Production settings unless DJANGO_SETTINGS_MODULE names others (`make run` names nija.settings.local).

Three departures from Django's stock ASGI entry point, all for long-lived streams:

- The ASGI lifespan protocol is answered here (Django's handler speaks HTTP only), so the events process starts
  its supervised fan-out listener (nija.event_listener) before the first client connects, and stops it on
  shutdown.
- Requests are handled without Django's per-request ThreadSensitiveContext. Under it every request gets a
  thread of its own for its synchronous parts (the middleware, the view) that lives as long as the request: for a
  stream, as long as the client stays, so each open stream would hold an idle thread. Here the synchronous parts
  of every request share asgiref's one thread-sensitive thread instead; they are short (authorization reads the
  database once), and the stream itself is a coroutine.
- Once started, the loaded application (Django, the URL conf, every module: about 127,000 objects) is moved out
  of the cyclic garbage collector's reach with `gc.freeze()`. Every full collection stops the event loop, so
  every open stream, for as long as it takes to traverse the heap: make bench measured 90 to 330 ms a full
  collection at 1,000 streams, and each one delays the event published meanwhile to every stream (the whole
  tail of publish->receive). Frozen, that part no longer costs (about 70 ms a collection); the streams' own
  objects still do.
"""

import gc
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nija.settings.production")

django_application = get_asgi_application()

from nija.event_listener import fanout_listener  # noqa: E402 - needs the settings configured above

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "http":
        await django_application.handle(scope, receive, send)
    else:
        await django_application(scope, receive, send)  # Django refuses it with a clear error


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            fanout_listener.ensure_running()
            gc.freeze()  # the loaded application is permanent: full collections no longer traverse it
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await fanout_listener.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
