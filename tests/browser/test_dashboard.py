"""The operator page in a real browser, against the web process (gunicorn) and the events process (uvicorn) with
`make run`'s settings: charts drawn from the history and live points, a pending position that appears without a
reload and is approved or rejected from the page (the API then reports it so), an account halted from its row,
the buttons a viewer's role cannot use absent (and the API refusing them anyway), and the page saying when the
stream is down and catching up when it is back.

Every write is made by clicking through the page's dialog; every outcome is read back through the API (or the
database), never from the page alone."""

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from accounts.models import TokenKind, TradingInstance, User
from monitoring.services import aggregation_run
from risk.services.equity import equity_report
from tests.accounts.factories import issue_token
from tests.browser.conftest import PASSWORD, PageWatch, in_thread, logged_in, make_operator, watched_page
from tests.risk.conftest import funded_account
from trading.models import Position

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LIVE = "#stream-status[data-status='live']"
# The equity line's colour (charts.js), as the canvas stores it.
EQUITY_STROKE = (37, 99, 235)
COUNT_STROKE_PIXELS = """
([selector, colour]) => {
  const canvas = document.querySelector(selector);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const near = colour.every((value, channel) => Math.abs(pixels[i + channel] - value) < 8);
    if (near && pixels[i + 3] > 200) count++;
  }
  return count;
}
"""
CHART_POINTS_AT_LEAST = "([name, n]) => Number(document.querySelector(`[data-chart=${name}]`).dataset.points) >= n"
CHARTS = ("equity", "exposure", "pnl")


@pytest.fixture
def desk_page(browser, web, events, request):
    """A watched page on the web origin, with the events process running."""
    with watched_page(browser, web.base_url, request) as watch:
        yield watch


def open_desk(watch: PageWatch, user: User) -> None:
    logged_in(watch.page.context, user, watch.origin)
    watch.page.goto("/dashboard/")
    watch.page.wait_for_selector(LIVE, timeout=15_000)
    watch.page.wait_for_selector("#accounts tbody tr[data-account-id]", timeout=10_000)


def a_desk() -> tuple[TradingInstance, str]:
    """A funded account (200,000) with its bot token, and the desk aggregated once."""
    account = funded_account("200000")
    token = issue_token(TokenKind.BOT, instance=account)
    aggregation_run(now=timezone.now())
    return account, token


def check(web_url: str, token: str, account: TradingInstance, quantity: str = "0.6") -> dict:
    """The bot asks through the API: 0.6 BTC at 50,000 is 30,000, above the 25,000 approval threshold."""
    body = {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": quantity, "price": "50000"}
    response = requests.post(
        f"{web_url}/api/risk/check-position", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def api_get(web_url: str, token: str, path: str) -> dict:
    response = requests.get(f"{web_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def operator_token() -> str:
    return issue_token(TokenKind.OPERATOR, user=make_operator("api-reader", roles=("viewer",)))


# ---------------------------------------------------------------------------------------------- charts
def history_of_five_points() -> None:
    """Five history rows ten minutes apart (the page's 24 h range has buckets of about 3 minutes), the account's
    equity reported anew before each run."""
    account = funded_account("100000")
    now = timezone.now()
    for minutes_ago, equity in zip(range(50, 0, -10), ["100000", "101000", "99500", "102000", "103000"], strict=True):
        equity_report(instance_id=account.pk, equity=Decimal(equity), cash_balance=None, now=timezone.now())
        aggregation_run(now=now - timedelta(minutes=minutes_ago))


def test_an_operator_logs_in_and_sees_the_charts_drawn_then_a_live_point(desk_page, events):
    in_thread(make_operator)
    in_thread(history_of_five_points)
    page = desk_page.page

    page.goto("/dashboard/")
    page.fill("#id_username", "desk-operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector(LIVE, timeout=15_000)
    page.wait_for_function(
        "() => Number(document.querySelector('[data-chart=equity]').dataset.points) >= 5", timeout=10_000
    )

    drawn = {
        name: int(page.get_attribute(f"[data-chart={name}]", "data-points")) for name in ("equity", "exposure", "pnl")
    }
    assert drawn == {"equity": 5, "exposure": 5, "pnl": 5}
    assert page.evaluate(COUNT_STROKE_PIXELS, ["[data-chart=equity] canvas", list(EQUITY_STROKE)]) > 50

    in_thread(aggregation_run, now=timezone.now())  # publishes a `metrics` event
    page.wait_for_function(
        "() => Number(document.querySelector('[data-chart=equity]').dataset.points) >= 6", timeout=10_000
    )

    assert page.url.endswith("/dashboard/")
    assert page.inner_text("[data-kpi=equity]") == "103,000"  # from the live `metrics` event
    assert desk_page.csp_violations() == []
    assert set(desk_page.foreign_requests) == {f"{events.base_url}/api/metrics/stream?channel=dashboard"}


# ---------------------------------------------------------------------------------------------- approval queue
def test_a_pending_position_appears_without_a_reload_and_is_approved_from_the_page(desk_page, web):
    operator = in_thread(make_operator)
    account, token = in_thread(a_desk)
    reader = in_thread(operator_token)
    open_desk(desk_page, operator)
    page = desk_page.page
    assert page.locator("#queue tbody tr[data-position-id]").count() == 0

    pending = check(web.base_url, token, account)
    row = page.locator(f"#queue tr[data-position-id='{pending['position_id']}']")
    row.wait_for(timeout=10_000)
    assert pending["decision"] == "pending_approval"
    row.locator("button[data-action=approve]").click()
    page.fill("#action-reason", "size checked with the desk")
    page.click("#action-dialog [data-role=confirm]")
    row.wait_for(state="detached", timeout=10_000)

    position = api_get(web.base_url, reader, f"/api/positions/{pending['position_id']}")
    assert (position["status"], position["decision_reason"]) == ("approved", "size checked with the desk")
    page.locator(f"#reservations tr[data-position-id='{pending['position_id']}']").wait_for(timeout=10_000)


def test_a_rejection_needs_a_reason_and_the_reason_reaches_the_position(desk_page, web):
    operator = in_thread(make_operator)
    account, token = in_thread(a_desk)
    pending = check(web.base_url, token, account)
    open_desk(desk_page, operator)
    page = desk_page.page
    row = page.locator(f"#queue tr[data-position-id='{pending['position_id']}']")

    row.locator("button[data-action=reject]").click()
    page.fill("#action-reason", "   ")
    page.click("#action-dialog [data-role=confirm]")

    assert page.inner_text("#action-dialog [data-role=error]") == "A reason is required: nothing was sent."
    assert page.is_visible("#action-dialog")
    assert in_thread(lambda: Position.objects.get(pk=pending["position_id"]).status) == "pending_approval"

    page.fill("#action-reason", "too large for this account today")
    page.click("#action-dialog [data-role=confirm]")
    row.wait_for(state="detached", timeout=10_000)

    position = in_thread(Position.objects.get, pk=pending["position_id"])
    assert (position.status, position.decision_reason) == ("rejected", "too large for this account today")


# ---------------------------------------------------------------------------------------------- kill switch
def test_a_risk_admin_halts_an_account_from_its_row_with_a_reason(desk_page, web):
    admin = in_thread(make_operator, "risk-admin", roles=("risk_admin",))
    account, _ = in_thread(a_desk)
    open_desk(desk_page, admin)
    page = desk_page.page
    row = f"#accounts tr[data-account-id='{account.pk}']"
    assert page.get_attribute(row, "data-state") == "active"

    page.click(f"{row} button[data-action=halt]")
    page.click("#action-dialog [data-role=confirm]")
    assert page.inner_text("#action-dialog [data-role=error]") == "A reason is required: nothing was sent."
    page.fill("#action-reason", "bot misbehaving")
    page.click("#action-dialog [data-role=confirm]")
    page.wait_for_selector(f"{row}[data-state='halted']", timeout=10_000)

    state = in_thread(lambda: account.__class__.objects.get(pk=account.pk).trading_state)
    assert (state.state, state.reason, state.changed_by_id) == ("halted", "bot misbehaving", admin.pk)
    assert page.locator(f"{row} button[data-action=resume]").count() == 1
    assert page.locator(f"{row} button[data-action=halt]").count() == 0


def test_a_risk_admin_confirms_a_held_equity_increase_and_cancels_a_reservation(desk_page, web):
    admin = in_thread(make_operator, "risk-admin", roles=("risk_admin",))
    account, token = in_thread(a_desk)
    reserved = check(web.base_url, token, account, quantity="0.1")  # 5,000: approved, reserved, unfilled
    in_thread(equity_report, instance_id=account.pk, equity=Decimal("320000"), cash_balance=None, now=timezone.now())
    open_desk(desk_page, admin)
    page = desk_page.page
    hold_row = page.locator(f"#holds tr[data-account-id='{account.pk}']")
    reservation_row = page.locator(f"#reservations tr[data-position-id='{reserved['position_id']}']")

    hold_row.locator("button[data-action=confirm-equity]").click()
    page.fill("#action-reason", "deposit confirmed with the exchange")
    page.click("#action-dialog [data-role=confirm]")
    hold_row.wait_for(state="detached", timeout=10_000)
    reservation_row.locator("button[data-action=cancel]").click()
    page.click("#action-dialog [data-role=confirm]")
    reservation_row.wait_for(state="detached", timeout=10_000)

    assert reserved["decision"] == "approved"
    confirmed = in_thread(lambda: TradingInstance.objects.get(pk=account.pk))
    assert confirmed.equity == Decimal("320000")
    assert in_thread(lambda: Position.objects.get(pk=reserved["position_id"]).status) == "cancelled"


# ---------------------------------------------------------------------------------------------- roles
def test_a_viewer_sees_the_queue_without_buttons_and_the_api_refuses_its_approval(desk_page, web):
    viewer = in_thread(make_operator, "desk-viewer", roles=("viewer",))
    account, token = in_thread(a_desk)
    pending = check(web.base_url, token, account)
    open_desk(desk_page, viewer)
    page = desk_page.page
    page.locator(f"#queue tr[data-position-id='{pending['position_id']}']").wait_for(timeout=10_000)

    assert page.locator("button[data-action]:visible").count() == 0
    refused = page.evaluate(
        """async (id) => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const response = await fetch(`/api/positions/${id}/approve`, {
                method: "POST", credentials: "same-origin",
                headers: {"Content-Type": "application/json", "X-CSRFToken": token}, body: "{}"});
            return [response.status, (await response.json()).error.code];
        }""",
        pending["position_id"],
    )

    assert refused == [403, "permission_denied"]
    assert in_thread(lambda: Position.objects.get(pk=pending["position_id"]).status) == "pending_approval"


# ---------------------------------------------------------------------------------------------- stream down
def test_the_page_shows_when_the_stream_is_down_and_catches_up_when_it_is_back(desk_page, web, events):
    operator = in_thread(make_operator)
    account, token = in_thread(a_desk)
    open_desk(desk_page, operator)
    page = desk_page.page

    events.stop()
    page.wait_for_selector("#stream-banner:visible", timeout=15_000)
    assert page.get_attribute("#stream-status", "data-status") in ("reconnecting", "disconnected")
    pending = check(web.base_url, token, account)  # while the page cannot hear about it
    events.start()

    page.wait_for_selector(LIVE, timeout=30_000)
    page.locator(f"#queue tr[data-position-id='{pending['position_id']}']").wait_for(timeout=10_000)
    assert page.is_hidden("#stream-banner")
