"""A page of the web origin reads the events origin's stream with its admin session, as the dashboard page does
under `make run`: EventSource with credentials, across ports, under the pages' Content-Security-Policy."""

import pytest

from nija.events import flush_published, publish
from tests.browser.conftest import PASSWORD, in_thread, make_operator, watched_page
from tests.servers import events_server, free_port, server_env, web_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

OPEN_STREAM = """
([url, eventType]) => new Promise((resolve, reject) => {
  window.__received = [];
  const source = new EventSource(url, {withCredentials: true});
  source.addEventListener(eventType, (event) => window.__received.push(event.data));
  source.addEventListener("stream-open", () => resolve("open"));
  source.onerror = () => reject(new Error("stream error, readyState " + source.readyState));
})
"""


def test_a_page_on_the_web_origin_reads_the_stream_with_its_session(browser, request, redis_client):
    web_port, events_port = free_port(), free_port()
    origins = {"WEB_ORIGINS": f"http://127.0.0.1:{web_port}", "EVENTS_ORIGINS": f"http://127.0.0.1:{events_port}"}
    env = server_env(settings_module="nija.settings.local", **origins)
    web = web_server(env, port=web_port).start()
    events = events_server(env, port=events_port).start()
    in_thread(make_operator)
    try:
        with watched_page(browser, web.base_url, request) as watch:
            page = watch.page
            page.goto("/admin/login/?next=/admin/")
            page.fill("#id_username", "desk-operator")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_selector("#site-name")

            opened = page.evaluate(OPEN_STREAM, [f"{events.base_url}/api/metrics/stream?channel=dashboard", "metrics"])
            publish(event_type="metrics", data={"equity": "1000.00000000"})
            assert flush_published()
            page.wait_for_function("() => window.__received.length > 0", timeout=10_000)

            assert opened == "open"
            assert page.evaluate("window.__received") == ['{"equity": "1000.00000000"}']
            assert watch.csp_violations() == []
            assert watch.foreign_requests == [f"{events.base_url}/api/metrics/stream?channel=dashboard"]
    finally:
        events.stop()
        web.stop()
