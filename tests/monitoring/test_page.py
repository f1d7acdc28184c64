"""The operator page's view (/dashboard/): who may open it, what it tells its scripts (the stream's address, the
actions the operator's roles allow), the headers it is served with; and the vendored chart library matching the
version its lock file records. The page itself is tested in a real browser (tests/browser/test_dashboard.py)."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory

from monitoring.page import stream_origin
from tests.accounts.factories import OperatorFactory, UserFactory

REPO = Path(__file__).resolve().parents[2]
VENDORED_UPLOT = REPO / "monitoring" / "static" / "monitoring" / "vendor" / "uplot" / "uPlot.esm.js"


def page_for(*roles: str, superuser: bool = False) -> str:
    user = OperatorFactory(is_superuser=superuser)
    user.groups.add(*Group.objects.filter(name__in=roles))
    client = Client()
    client.force_login(user)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    return response.content.decode()


def capabilities(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-can-([a-z-]+)="(true|false)"', html))


@pytest.mark.django_db
def test_without_a_staff_session_the_page_sends_to_the_admin_login():
    anonymous = Client().get("/dashboard/")
    bot_owner = Client()
    bot_owner.force_login(UserFactory(is_staff=False))

    assert (anonymous.status_code, anonymous["Location"]) == (302, "/admin/login/?next=/dashboard/")
    assert bot_owner.get("/dashboard/")["Location"] == "/admin/login/?next=/dashboard/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("roles", "superuser", "expected"),
    [
        ((), False, {"approve": "false", "halt": "false", "manage-equity": "false"}),
        (("viewer",), False, {"approve": "false", "halt": "false", "manage-equity": "false"}),
        (("approver",), False, {"approve": "true", "halt": "false", "manage-equity": "false"}),
        (("risk_admin",), False, {"approve": "true", "halt": "true", "manage-equity": "true"}),
        ((), True, {"approve": "true", "halt": "true", "manage-equity": "true"}),
    ],
)
def test_the_page_tells_its_scripts_what_the_operators_roles_allow(roles, superuser, expected):
    assert capabilities(page_for(*roles, superuser=superuser)) == expected


@pytest.mark.django_db
def test_the_page_is_never_cached_has_no_inline_script_and_talks_only_to_its_origins():
    client = Client()
    client.force_login(OperatorFactory())

    response = client.get("/dashboard/")
    html = response.content.decode()

    assert "no-cache" in response["Cache-Control"]
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == ['<script type="module" src="/static/monitoring/dashboard/main.js">']
    stream = re.search(r'data-stream-url="(https?://[^/"]+)/api/metrics/stream\?channel=dashboard"', html).group(1)
    directives = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"].split() == ["'self'", *settings.EVENTS_ORIGINS]
    assert stream in settings.EVENTS_ORIGINS


@pytest.mark.parametrize(
    ("page_origin", "events_origins", "expected"),
    [
        ("http://127.0.0.1:8000", ["http://127.0.0.1:8001", "http://localhost:8001"], "http://127.0.0.1:8001"),
        ("http://localhost:8000", ["http://127.0.0.1:8001", "http://localhost:8001"], "http://localhost:8001"),
        ("https://desk.example.com", ["https://desk.example.com"], ""),  # one origin behind the proxy
        ("http://10.0.0.5:8000", ["http://127.0.0.1:8001"], "http://127.0.0.1:8001"),
    ],
)
def test_the_stream_is_opened_on_the_events_origin_of_the_pages_host(settings, page_origin, events_origins, expected):
    settings.EVENTS_ORIGINS = events_origins
    settings.ALLOWED_HOSTS = ["*"]
    scheme, host = page_origin.split("://")
    request = RequestFactory().get("/dashboard/", HTTP_HOST=host, secure=scheme == "https")

    assert stream_origin(request) == expected


def test_the_vendored_chart_library_is_the_version_the_lock_file_and_the_notice_record():
    locked = json.loads((REPO / "package-lock.json").read_text())["packages"]["node_modules/uplot"]["version"]
    declared = json.loads((REPO / "package.json").read_text())["dependencies"]["uplot"]
    vendored = re.search(r"\(v(\d+\.\d+\.\d+)\)", VENDORED_UPLOT.read_text()[:600]).group(1)

    assert locked == declared == vendored
    assert f"| uPlot (`uplot`) | {locked} | MIT" in (REPO / "THIRD_PARTY.md").read_text()
    assert (VENDORED_UPLOT.parent / "LICENSE").read_text().startswith("The MIT License")
