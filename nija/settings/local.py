"""Local development: `make run` names these settings. Everything bound to 127.0.0.1; debug off unless asked for
(DJANGO_DEBUG=1), so the stack runs as it will in production."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-development-only-not-secret")

# Static files straight from the apps (no collect step before `make run`), picked up as they change.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
