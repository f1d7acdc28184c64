"""Production settings pass Django's deployment checks, keep HTTPS and secure cookies on by default, and are what
the WSGI, ASGI and Celery entry points load when nothing says otherwise; the local settings keep debug off unless
asked. Each case runs in a fresh interpreter (settings are read once per process)."""

import json
import os
import secrets
import subprocess
import sys

from django.conf import settings

# Environment a deployment sets; nothing else from this process (its DJANGO_SETTINGS_MODULE is the test settings).
DEPLOYMENT = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "CREDENTIALS_KEYS": "dGVzdC1vbmx5LWNyZWRlbnRpYWxzLWtleS0wMDAwMDA=",
}
_INHERITED_PREFIXES = ("DJANGO_", "TRUSTED_PROXY_COUNT")


def _environment(**extra: str) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(_INHERITED_PREFIXES)}
    return {**inherited, **DEPLOYMENT, **extra}


def _run(args: list[str], **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=settings.BASE_DIR, env=_environment(**extra), capture_output=True, text=True, timeout=120
    )


SETTINGS_JSON = (
    "from django.conf import settings\n"
    "print(json.dumps({'module': os.environ['DJANGO_SETTINGS_MODULE'], 'DEBUG': settings.DEBUG,"
    " 'SECURE_SSL_REDIRECT': settings.SECURE_SSL_REDIRECT, 'SECURE_HSTS_SECONDS': settings.SECURE_HSTS_SECONDS,"
    " 'SESSION_COOKIE_SECURE': settings.SESSION_COOKIE_SECURE, 'CSRF_COOKIE_SECURE': settings.CSRF_COOKIE_SECURE,"
    " 'SECURE_PROXY_SSL_HEADER': settings.SECURE_PROXY_SSL_HEADER}))"
)
SETUP = "import django; django.setup()"


def _loaded_settings(load: str, **extra: str) -> dict:
    """The settings a fresh interpreter ends up with after running `load` (an import, or django.setup())."""
    result = _run([sys.executable, "-c", f"import json, os\n{load}\n{SETTINGS_JSON}"], **extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_the_production_settings():
    result = _run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="nija.settings.production",
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_defaults_to_https_only_and_secure_cookies():
    production = _loaded_settings(SETUP, DJANGO_SETTINGS_MODULE="nija.settings.production")

    assert production == {
        "module": "nija.settings.production",
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": None,  # X-Forwarded-Proto is believed only when the deployment says so
    }


def test_behind_a_tls_terminating_proxy_the_forwarded_scheme_is_believed_when_told():
    told = _loaded_settings(
        SETUP,
        DJANGO_SETTINGS_MODULE="nija.settings.production",
        DJANGO_SECURE_PROXY_SSL_HEADER="true",
        DJANGO_SECURE_SSL_REDIRECT="false",
    )

    assert told["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert told["SECURE_SSL_REDIRECT"] is False


def test_wsgi_asgi_and_celery_entry_points_default_to_production():
    for module in ("nija.wsgi", "nija.asgi", "nija.celery"):
        loaded = _loaded_settings(f"import {module}")

        assert loaded["module"] == "nija.settings.production", module
        assert loaded["DEBUG"] is False, module


def test_the_local_settings_keep_debug_off_unless_asked():
    quiet = _loaded_settings(SETUP, DJANGO_SETTINGS_MODULE="nija.settings.local")
    asked = _loaded_settings(SETUP, DJANGO_SETTINGS_MODULE="nija.settings.local", DJANGO_DEBUG="1")

    assert quiet["DEBUG"] is False
    assert asked["DEBUG"] is True
