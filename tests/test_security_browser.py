"""In Debian's Chromium against a real daphne: every page works under the strict
Content-Security-Policy (no violation reported, the language switcher still switches), and a
dashboard whose session ends in another tab goes to the login page by itself."""

import pytest

from tests.browser_stack import log_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def watch_csp(page):
    """Every CSP violation the page reports (the browser's own event and its console line)."""
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', (event) => "
                         "console.error('Content Security Policy violation: ' + event.violatedDirective + ' ' + event.blockedURI));")
    return violations


def test_every_page_works_under_the_content_security_policy(dashboard_server, browser_page):
    page = browser_page
    violations = watch_csp(page)
    response = page.goto(dashboard_server + "/login/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy

    log_in(page, dashboard_server, "admin", "demo-admin")
    page.wait_for_selector("#socket-state[data-state=live]")  # the dashboard's script ran and its socket is up
    for path, ready in [("/library/", "main h1"), ("/audit/", "form"), ("/admin/", "#content"),
                        ("/admin/accounts/user/", "#changelist"), ("/admin/accounts/user/add/", "form")]:
        page.goto(dashboard_server + path)
        page.wait_for_selector(ready)
    page.goto(dashboard_server + "/")
    page.wait_for_selector("#socket-state[data-state=live]")

    page.select_option("#lang-select", "ru")  # submits itself through language.js (no inline handler)
    page.wait_for_selector("html[lang=ru]")
    page.wait_for_selector("#socket-state[data-state=live]")
    assert violations == []


def test_a_dashboard_goes_to_the_login_page_when_its_session_ends_elsewhere(dashboard_server, browser_page):
    page = browser_page
    log_in(page, dashboard_server, "petrova", "demo-petrova")
    page.wait_for_selector("#socket-state[data-state=live]")
    other_tab = page.context.new_page()
    other_tab.goto(dashboard_server + "/library/")
    other_tab.click("form[action='/logout/'] button[type=submit]")
    other_tab.wait_for_selector("#id_username")
    # The first tab's socket is closed by the server; the page reloads and shows the login form.
    page.wait_for_selector("#id_username", timeout=15000)
    assert "/login/" in page.url
