"""The project package and its shared infrastructure (imports no app): settings, URLs, the ASGI/WSGI entry points,
Celery and its beat schedule, the Redis caches (`cache`), the domain error base (`errors`) and the API conventions
(`api`: JSON with Decimal money, the one error shape, pages, throttling), rate limiting, client IPs, sessions,
metrics, canonical symbols and the event store, publisher and stream machinery.
"""

# Django loads this package first: the Celery app (its broker and settings) must be configured before any
# shared_task is sent, or apply_async falls back to Celery's default AMQP broker on localhost.
from .celery import app as celery_app

__all__ = ("celery_app",)
