"""What an operator sees under `make run`'s web process: a styled admin and API docs that render, every file from
the project's own origin, nothing blocked by the Content-Security-Policy."""

import pytest

from tests.browser.conftest import PASSWORD, PageWatch, in_thread, make_operator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_the_admin_changelist_is_styled_by_the_admins_stylesheet(page: PageWatch):
    in_thread(make_operator)
    browser_page = page.page

    browser_page.goto("/admin/login/?next=/admin/accounts/user/")
    browser_page.fill("#id_username", "desk-operator")
    browser_page.fill("#id_password", PASSWORD)
    browser_page.click("input[type=submit]")
    browser_page.wait_for_selector("#result_list")

    header = browser_page.evaluate(
        """() => {
            const style = getComputedStyle(document.querySelector("#header"));
            return {background: style.backgroundColor, display: style.display};
        }"""
    )
    table_width = browser_page.evaluate("document.querySelector('#result_list').getBoundingClientRect().width")
    # base.css paints the header in the admin's secondary colour (#417690) and lays it out as a flex row;
    # an unstyled page leaves it transparent and a block.
    assert header == {"background": "rgb(65, 118, 144)", "display": "flex"}
    assert table_width > 0
    assert "desk-operator" in browser_page.inner_text("#result_list")
    assert page.csp_violations() == []
    assert page.foreign_requests == []


def test_swagger_ui_renders_the_operations_from_local_files(page: PageWatch):
    browser_page = page.page

    browser_page.goto("/api/docs/")
    browser_page.wait_for_selector(".opblock", timeout=15_000)

    paths = browser_page.eval_on_selector_all(".opblock-summary-path", "nodes => nodes.map(n => n.innerText)")
    assert "/api/risk/check-position" in [path.replace("\u200b", "") for path in paths]
    assert page.csp_violations() == []
    assert page.foreign_requests == []


def test_redoc_renders_the_operations_and_its_search_worker_under_the_policy(page: PageWatch):
    browser_page = page.page

    browser_page.goto("/api/redoc/")
    browser_page.wait_for_selector("[data-section-id^='operation/']", timeout=15_000)
    browser_page.fill("input[placeholder='Search...']", "check-position")
    browser_page.wait_for_selector("[data-role='search:results'] li", timeout=10_000)

    operations = browser_page.locator("[data-section-id^='operation/']").count()
    assert operations >= 10
    assert "risk_check_position" in browser_page.inner_text("[data-role='search:results']")
    # ReDoc's menu shows its maker's logo from that maker's CDN: the one load the page tries from another host,
    # and the policy refuses it (the search worker, the styles and the scripts all run).
    assert page.csp_violations() == [f"img-src {REDOCLY_LOGO}"]
    assert page.foreign_requests == [REDOCLY_LOGO]
