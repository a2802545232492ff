"""End to end in a real browser: Debian's Chromium (never a downloaded one) against a real daphne
process with the embedded bridge, fed by the simulated PBX running in this test process
(tests/browser_stack.py; fixtures in tests/conftest.py).
"""

import os

import pytest

from tests.browser_stack import CHROMIUM_ARGS, ROOT, log_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# The README's picture; refreshed with `SAVE_SCREENSHOT=1 make test` (otherwise it goes to tmp).
SCREENSHOT = ROOT / "docs" / "dashboard.png"
CALL_SHOWS_WITHIN_MS = 2000  # the product promise: a call is on the card within 2 s


def test_curator_sees_a_trainees_call_appear_and_end(dashboard_server, pbx_thread, browser_page, tmp_path):
    page = browser_page
    log_in(page, dashboard_server, "petrova", "demo-petrova")
    page.wait_for_selector("#socket-state[data-state=live]")
    page.wait_for_selector("#link-state[data-state=up]")
    card = page.locator("article.card", has=page.locator("h3", has_text="Dmitry Ivanov"))
    assert card.get_attribute("data-state") == "idle"
    assert card.locator("button[data-mode=listen]").is_disabled()

    name = pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199", caller_name="Mrs Hudson"))
    page.wait_for_selector(
        "article.card:has(h3:text('Dmitry Ivanov'))[data-state=in_call], article.card:has(h3:text('Dmitry Ivanov'))[data-state=ringing]",
        timeout=CALL_SHOWS_WITHIN_MS,
    )
    page.wait_for_selector("article.card:has(h3:text('Dmitry Ivanov'))[data-state=in_call]")
    assert "5550199" in card.inner_text()
    assert card.locator("button[data-mode=listen]").is_enabled()
    assert card.locator("button[data-mode=barge]").is_enabled()
    # Another team's trainee (Igor Smirnov's) is not on Anna's page at all.
    assert page.locator("article.card", has=page.locator("h3", has_text="Olga Popova")).count() == 0
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/103", caller_num="5550142", answer=False))
    page.wait_for_selector("article.card:has(h3:text('Pavel Sokolov'))[data-state=ringing]")
    shot = SCREENSHOT if os.environ.get("SAVE_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # a real rendered page, not an empty image

    pbx_thread.call(lambda pbx: pbx.hangup(name))
    page.wait_for_selector("article.card:has(h3:text('Dmitry Ivanov'))[data-state=idle]")
    assert "5550199" not in card.inner_text()


def test_the_page_speaks_russian_to_a_russian_browser(dashboard_server, chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="ru-RU", extra_http_headers={"Accept-Language": "ru-RU,ru;q=0.9"}).new_page()
            log_in(page, dashboard_server, "ivanov", "demo-ivanov")
            page.wait_for_selector("#socket-state[data-state=live]")
            assert page.locator("#me-title").inner_text() == "Мой телефон"
            card = page.locator("article.card", has=page.locator("h3", has_text="Anna Petrova"))
            assert card.locator("button[data-mode=listen]").inner_text() == "Слушать"
            assert card.locator("button[data-mode=barge]").count() == 1
            assert card.locator("button[data-mode=barge]").is_hidden()  # a trainee may only listen
        finally:
            browser.close()


def test_the_page_reconnects_and_shows_the_calls_of_now_not_stale_ones(daphne_server, pbx_thread, browser_page):
    page = browser_page
    log_in(page, daphne_server.url, "petrova", "demo-petrova")
    page.wait_for_selector("#socket-state[data-state=live]")
    dmitry = "article.card:has(h3:text('Dmitry Ivanov'))"
    elena = "article.card:has(h3:text('Elena Kuznetsova'))"
    name = pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101"))
    page.wait_for_selector(dmitry + "[data-state=in_call]")

    daphne_server.stop()
    page.wait_for_selector("#socket-state[data-state=reconnecting]")
    assert page.locator("#socket-state").inner_text().startswith("Connection lost")
    # While the page is away, Dmitry's call ends and Elena gets one.
    pbx_thread.call(lambda pbx: pbx.hangup(name))
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/102"))
    daphne_server.start()

    page.wait_for_selector("#socket-state[data-state=live]", timeout=30000)
    page.wait_for_selector(elena + "[data-state=in_call]")
    assert page.locator(dmitry).get_attribute("data-state") == "idle"
