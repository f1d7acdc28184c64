"""WSGI entry point: gunicorn (gthread) serves the API, admin and dashboard page through it.

Production settings unless DJANGO_SETTINGS_MODULE names others (`make run` names nija.settings.local): a server
started without it must never come up with development defaults."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nija.settings.production")

application = get_wsgi_application()
