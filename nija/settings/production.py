"""Production: every secret from the environment, HTTPS only, secure cookies, no debug.

`python manage.py check --deploy --fail-level WARNING` is clean with these settings (a test runs it).

Behind a TLS-terminating proxy, Django sees plain HTTP: either the proxy redirects to HTTPS itself
(DJANGO_SECURE_SSL_REDIRECT=false), or it overwrites X-Forwarded-Proto on every request and the app is told to
believe it (DJANGO_SECURE_PROXY_SSL_HEADER=true; docker/nginx.conf does). Never tell it that behind a proxy that
passes the header through: any client could then claim HTTPS.
"""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# ------------------------------------------------------------------------------------------------
# HTTPS
# ------------------------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# A load balancer's health probe and Prometheus's scrape (token-protected) speak plain HTTP inside the network:
# they get their answer, not a redirect.
SECURE_REDIRECT_EXEMPT = [r"^api/health$", r"^metrics$"]
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Browsers keep to HTTPS for this long once they have seen the site over it (they ignore the header over HTTP).
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True

# ------------------------------------------------------------------------------------------------
# Cookies: sent over HTTPS only, out of reach of scripts
# ------------------------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True

# ------------------------------------------------------------------------------------------------
# Static files: collected at image build (`collectstatic`), hashed names cached for a year, gzip variants.
# ------------------------------------------------------------------------------------------------
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
