"""End to end in Chromium: a curator presses Listen on his trainee's live call, his phone is called
into ChanSpy on exactly that channel, and the page says he is listening; Stop ends it."""

import pytest

from tests.browser_stack import log_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

TRAINEE_CARD = "article.card:has(h3:text('Dmitry Ivanov'))"


def test_a_curator_listens_to_a_trainees_call_from_the_browser(dashboard_server, pbx_thread, browser_page):
    page = browser_page
    log_in(page, dashboard_server, "petrova", "demo-petrova")
    page.wait_for_selector("#link-state[data-state=up]")
    pbx_thread.call(lambda pbx: pbx.set_phone("SIP/201", "answer", ring_seconds=0))  # Anna's headset
    agent = pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199"))
    page.wait_for_selector(f"{TRAINEE_CARD}[data-state=in_call]")

    page.click(f"{TRAINEE_CARD} button[data-mode=listen]")
    page.wait_for_selector(f"{TRAINEE_CARD} .status:has-text('Listening to Dmitry Ivanov')")
    # Her own card shows what her phone is doing, from the board.
    page.wait_for_selector("article.card.own[data-state=spying]:has-text('Dmitry Ivanov')")

    originates = pbx_thread.call(lambda pbx: [a.as_dict() for a in pbx.actions if a.get("Action") == "Originate"])
    assert len(originates) == 1
    assert originates[0]["Channel"] == "SIP/201"
    assert originates[0]["Data"] == f"{agent},qxEd"
    spies = pbx_thread.call(lambda pbx: [n for n in pbx.channels if n.startswith("SIP/201-")])
    assert len(spies) == 1 and pbx_thread.call(lambda pbx: pbx.spy_mode(spies[0])) == "listen"

    page.click(f"{TRAINEE_CARD} button.stop")
    page.wait_for_selector("article.card.own[data-state=idle]")
    hangups = pbx_thread.call(lambda pbx: [a["Channel"] for a in pbx.actions if a.get("Action") == "Hangup"])
    assert hangups == spies


def test_a_reloaded_page_keeps_its_live_session_and_stops_it(dashboard_server, pbx_thread, browser_page):
    """A reload (or a second tab) gets the user's live session from the bridge: Stop and Switch are
    there again, and Stop ends the spy at the PBX."""
    page = browser_page
    log_in(page, dashboard_server, "petrova", "demo-petrova")
    page.wait_for_selector("#link-state[data-state=up]")
    pbx_thread.call(lambda pbx: pbx.set_phone("SIP/201", "answer", ring_seconds=0))
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199"))
    page.wait_for_selector(f"{TRAINEE_CARD}[data-state=in_call]")
    page.click(f"{TRAINEE_CARD} button[data-mode=listen]")
    page.wait_for_selector(f"{TRAINEE_CARD} .status:has-text('Listening to Dmitry Ivanov')")

    page.reload()

    page.wait_for_selector(f"{TRAINEE_CARD} button.stop:visible")
    page.wait_for_selector(f"{TRAINEE_CARD} button[data-mode=listen][aria-pressed=true]")
    page.wait_for_selector(f"{TRAINEE_CARD} .status:has-text('Listening to Dmitry Ivanov')")
    spies = pbx_thread.call(lambda pbx: [n for n in pbx.channels if n.startswith("SIP/201-")])
    assert len(spies) == 1
    page.click(f"{TRAINEE_CARD} button.stop")
    page.wait_for_selector(f"{TRAINEE_CARD} .status:has-text('Stopped monitoring Dmitry Ivanov.')")
    page.wait_for_selector("article.card.own[data-state=idle]")
    hangups = pbx_thread.call(lambda pbx: [a["Channel"] for a in pbx.actions if a.get("Action") == "Hangup"])
    assert hangups == spies
    assert page.locator(f"{TRAINEE_CARD} button.stop").is_hidden()
