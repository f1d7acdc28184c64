"""The project package and its shared infrastructure (imports no app): settings, URLs, the ASGI/WSGI entry points,
Celery and its beat schedule, the Redis caches (`cache`), the domain error base (`errors`) and the API conventions
(`api`: JSON with Decimal money, the one error shape, pages, throttling), rate limiting, client IPs, sessions,
metrics, canonical symbols and the event store, publisher and stream machinery.
"""
