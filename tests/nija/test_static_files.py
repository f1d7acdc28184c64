"""Static files in production: collected with hashed, compressed names and served by the process itself
(WhiteNoise), and pages name only the project's own origin in their Content-Security-Policy."""

import pytest
from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.test import Client, override_settings

PRODUCTION_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


@pytest.mark.slow
@pytest.mark.django_db
def test_collected_static_files_are_hashed_compressed_and_served_for_a_year(tmp_path):
    with override_settings(
        STORAGES=PRODUCTION_STORAGES, STATIC_ROOT=tmp_path, WHITENOISE_USE_FINDERS=False, WHITENOISE_AUTOREFRESH=False
    ):
        call_command("collectstatic", interactive=False, verbosity=0)
        hashed = staticfiles_storage.url("admin/css/base.css")
        login_page = Client().get("/admin/login/").content.decode()
        served = Client().get(hashed, HTTP_ACCEPT_ENCODING="gzip")
        docs_page = Client().get("/api/docs/").content.decode()

    assert hashed != "/static/admin/css/base.css"
    assert hashed.startswith("/static/admin/css/base.")
    assert hashed in login_page
    assert served.status_code == 200
    assert served["Content-Encoding"] == "gzip"
    assert "immutable" in served["Cache-Control"]
    assert "max-age=315360000" in served["Cache-Control"]
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle." in docs_page


def test_pages_allow_only_the_projects_own_origins(client):
    policy = client.get("/admin/login/")["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"].split() == ["'self'", *settings.EVENTS_ORIGINS]
    assert directives["frame-ancestors"] == "'none'"
