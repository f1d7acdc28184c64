"""ASGI entry point: uvicorn serves the Server-Sent Events stream through it (a WSGI worker cannot hold
hundreds of open streams). Every other path is faster under WSGI.

Production settings unless DJANGO_SETTINGS_MODULE names others (`make run` names nija.settings.local)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nija.settings.production")

application = get_asgi_application()
