"""Browser tests: Playwright drives Debian's Chromium against real server processes.

- One browser for the whole session (headless, no sandbox, no GPU, no background networking); a fresh context
  (cookies, storage) for every test.
- Playwright never downloads a browser: it launches /usr/bin/chromium, which `scripts/services.sh start browser`
  installs with apt when missing (`make test` runs it; this conftest runs it too when the binary is absent).
- The web process is the Procfile's gunicorn with the settings `make run` uses (nija.settings.local), pointed at
  the test database and the suite's Redis, so what the browser sees is what `make run` serves. The events process
  (uvicorn) runs beside it for the tests that need the stream, started once, on the port the web process names as
  its events origin (credentialed CORS and the Content-Security-Policy's connect-src).
- Logging in through the admin form is rate limited per address (10 a window): the tests that are not about the
  login form get their session cookie from Django's test client (`logged_in`) instead.
- A failed test leaves a full-page screenshot of every page it opened under var/test-artifacts/browser/.
- Playwright's sync API marks its event loop as running in the thread that uses it, and Django refuses ORM calls
  in a thread with a running loop. The loop is marked running only while a browser test's `page` is in use (so
  the fixtures and every other test of the session keep a plain thread), and the test body touches the database
  through `in_thread`.
"""

import asyncio
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group
from django.db import connections
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from accounts.models import User
from tests.servers import ARTIFACTS, REPO, LiveProcess, events_server, free_port, server_env, web_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "a-long-browser-test-password"
SCREENSHOTS = ARTIFACTS / "browser"
T = TypeVar("T")

# Records every Content-Security-Policy violation of the page, from its first script on.
_RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `function` in a thread of its own (its own database connection, closed after) and return its result."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = error
        finally:
            connections.close_all()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def make_operator(username: str = "desk-operator", *, roles: tuple[str, ...] | None = None) -> User:
    """A staff user whose password (PASSWORD) the web process under `make run`'s settings (its password hashers,
    not the suite's) can verify, hashed cheaply: a superuser by default, else a staff user holding `roles`."""
    if roles is None:
        user = User.objects.create_superuser(username=username, email=f"{username}@example.com", password=None)
    else:
        user = User.objects.create_user(username=username, email=f"{username}@example.com", is_staff=True)
        user.groups.add(*Group.objects.filter(name__in=roles))
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "browser-test-salt", iterations=1000)
    user.save(update_fields=["password"])
    return user


def logged_in(context: BrowserContext, user: User, origin: str) -> None:
    """Give the browser context `user`'s admin session (a session the web process reads from the same database
    and cache), as the login form would."""

    def session_key() -> str:
        client = Client()
        client.force_login(user)
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": in_thread(session_key), "url": origin}])


def _ensure_chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        subprocess.run([str(REPO / "scripts" / "services.sh"), "start", "browser"], check=True, timeout=900)
    return CHROMIUM


def _loop_running(browser: Browser, running: bool) -> None:
    """Mark Playwright's loop as running in this thread (as its own calls leave it), or as not running."""
    asyncio._set_running_loop(browser._loop if running else None)


@pytest.fixture(scope="session")
def browser(django_db_setup: None) -> Iterator[Browser]:
    executable = _ensure_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        _loop_running(launched, False)
        yield launched
        _loop_running(launched, True)
        launched.close()


@dataclass(frozen=True)
class ServerPorts:
    web: int
    events: int

    def env(self) -> dict[str, str]:
        """The origins each process names for the other (the pages' origin, the stream's origin)."""
        return {"WEB_ORIGINS": f"http://127.0.0.1:{self.web}", "EVENTS_ORIGINS": f"http://127.0.0.1:{self.events}"}


@pytest.fixture(scope="session")
def server_ports() -> ServerPorts:
    return ServerPorts(web=free_port(), events=free_port())


@pytest.fixture(scope="session")
def web(django_db_setup: None, django_db_blocker: Any, server_ports: ServerPorts) -> Iterator[LiveProcess]:
    """gunicorn with `make run`'s settings, on the test database (started once for the session)."""
    with django_db_blocker.unblock():
        env = server_env(settings_module="nija.settings.local", DJANGO_DEBUG="1", **server_ports.env())
    server = web_server(env, port=server_ports.web).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def events(django_db_setup: None, django_db_blocker: Any, server_ports: ServerPorts) -> Iterator[LiveProcess]:
    """The events process (uvicorn) on the port the web process names as its events origin (started once)."""
    with django_db_blocker.unblock():
        env = server_env(settings_module="nija.settings.local", **server_ports.env())
    server = events_server(env, port=server_ports.events).start()
    yield server
    server.stop()


@dataclass
class PageWatch:
    """What a page did that a test may assert on: requests to other origins and CSP violations."""

    page: Page
    origin: str
    foreign_requests: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__cspViolations || []")


@pytest.fixture
def page(browser: Browser, web: LiveProcess, request: pytest.FixtureRequest) -> Iterator[PageWatch]:
    with watched_page(browser, web.base_url, request) as watch:
        yield watch


@contextmanager
def watched_page(browser: Browser, origin: str, request: pytest.FixtureRequest) -> Iterator[PageWatch]:
    """A page in a fresh context on `origin`, watched (requests elsewhere, CSP violations), screenshot on failure."""
    _loop_running(browser, True)
    context = browser.new_context(base_url=origin, viewport={"width": 1366, "height": 900})
    context.add_init_script(_RECORD_CSP_VIOLATIONS)
    opened = context.new_page()
    watch = PageWatch(page=opened, origin=origin)
    opened.on("request", lambda sent: _note_foreign(watch, sent.url))
    try:
        yield watch
    finally:
        reports = request.node.stash.get(_reports, {})
        if any(report.failed for report in reports.values()) or os.environ.get("NIJA_BROWSER_SCREENSHOTS") == "always":
            _screenshot_pages(context.pages, request.node.name)
        context.close()
        _loop_running(browser, False)


def _note_foreign(watch: PageWatch, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "ws", "wss") and f"{parts.scheme}://{parts.netloc}" != watch.origin:
        watch.foreign_requests.append(url)


def _screenshot_pages(pages: list[Page], test_name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for number, opened in enumerate(pages):
        opened.screenshot(path=str(SCREENSHOTS / f"{test_name}-{number}.png"), full_page=True)
