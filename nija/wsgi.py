"""WSGI entry point: gunicorn (gthread) serves the API, admin and dashboard page through it."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nija.settings.local")

application = get_wsgi_application()
