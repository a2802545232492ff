"""The PJSIP route in a real browser (Debian's Chromium, a real daphne with the embedded bridge, the
simulated Asterisk 22): the demo roster's phones are `PJSIP/<ext>` reached through
`Local/<ext>@dashboard-phones` (`seed_demo --pjsip`, as `make run PBX=pjsip`).

- Who spies is a person, in a mode: not "Local/201@dashboard-phones", not a call from "Spy-101".
- A curator who is spying offers nothing to join: his phone's only call hears someone else's.
- Answer here is told "answered" when the PBX's Pickup says so (on this route the OriginateResponse
  always comes first: asterisk22-pjsip-pickupchan).
"""

import pytest
from playwright.sync_api import expect

from tests.browser_stack import log_in, running_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

DEMO_RESOURCES = ("200", "201", "202", "101", "102", "103", "104", "105")


@pytest.fixture
def asterisk22_thread():
    """The simulated Asterisk 22 with the demo's PJSIP headsets, answering at once when asked to."""
    from fakepbx import FakePBXThread

    with FakePBXThread(port=0, flavour="asterisk22") as pbx:
        for resource in DEMO_RESOURCES:
            pbx.call(lambda p, r=resource: p.set_phone(f"PJSIP/{r}", "autoanswer", ring_seconds=1.0))
        yield pbx


@pytest.fixture
def pjsip_dashboard(tmp_path, server_database, asterisk22_thread):
    with running_dashboard(tmp_path, server_database, asterisk22_thread, seed_options=("--pjsip",)) as server:
        yield server.url


def card(page, name):
    return page.locator("article.card", has=page.locator("h3", has_text=name))


def second_page(page, base_url, username):
    other = page.context.browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US").new_page()
    log_in(other, base_url, username, f"demo-{username}")
    other.wait_for_selector("#socket-state[data-state=live]")
    return other


def test_who_listens_is_a_person_and_a_spying_curator_offers_nothing(pjsip_dashboard, asterisk22_thread, browser_page):
    page = browser_page
    log_in(page, pjsip_dashboard, "petrova", "demo-petrova")
    page.wait_for_selector("#link-state[data-state=up]")
    asterisk22_thread.call(lambda pbx: pbx.inbound_call("PJSIP/101", caller_num="5550199", caller_name="Mrs Hudson"))
    dmitry = card(page, "Dmitry Ivanov")
    page.wait_for_selector("article.card:has(h3:text('Dmitry Ivanov'))[data-state=in_call]")
    trainee = second_page(page, pjsip_dashboard, "ivanov")
    colleague = second_page(page, pjsip_dashboard, "sokolov")

    dmitry.locator("button[data-mode=listen]").click()
    page.wait_for_selector("#me article.card[data-state=spying]")

    # The curator's own card: whom she is monitoring, in which mode; no call from "Spy-...".
    own = page.locator("#me article.card")
    assert own.locator(".badge").inner_text() == "Listening to Dmitry Ivanov"
    assert "Spy-" not in own.inner_text() and "Local/" not in own.inner_text()
    # The trainee's card, on her page and on his own: a person and a mode.
    expect(dmitry.locator(".facts")).to_contain_text("Anna Petrova (listening)")
    mine = trainee.locator("#me article.card")
    expect(mine.locator(".facts")).to_contain_text("Anna Petrova (listening)")
    assert "Local/" not in mine.inner_text()
    expect(trainee.locator("#monitored")).to_have_text("You are being listened to by Anna Petrova")
    # A switch of mode (ChanSpy's keypad, pressed through AMI) shows everywhere.
    dmitry.locator("button[data-mode=whisper]").click()
    expect(own.locator(".badge")).to_have_text("Whispering to Dmitry Ivanov")
    expect(mine.locator(".facts")).to_contain_text("Anna Petrova (whispering)")
    expect(trainee.locator("#monitored")).to_have_text("Anna Petrova is whispering to you (your caller does not hear it)")
    # Another trainee of hers sees that she is busy monitoring, and no button to join that.
    curator = card(colleague, "Anna Petrova")
    colleague.wait_for_selector("article.card:has(h3:text('Anna Petrova'))[data-state=spying]")
    assert curator.locator(".badge").inner_text() == "Whispering to someone"
    assert curator.locator("button[data-mode=listen]").is_disabled()
    assert "Dmitry" not in curator.inner_text()

    dmitry.locator("button.stop").click()
    page.wait_for_selector("#me article.card[data-state=idle]")
    expect(dmitry.locator(".facts")).not_to_contain_text("Anna Petrova")
    colleague.wait_for_selector("article.card:has(h3:text('Anna Petrova'))[data-state=idle]")


def test_answer_here_on_the_pjsip_route_says_answered(pjsip_dashboard, asterisk22_thread, browser_page):
    page = browser_page
    log_in(page, pjsip_dashboard, "petrova", "demo-petrova")
    page.wait_for_selector("#link-state[data-state=up]")
    asterisk22_thread.call(lambda pbx: pbx.inbound_call("PJSIP/102", caller_num="5550142", answer=False))
    elena = card(page, "Elena Kuznetsova")
    page.wait_for_selector("article.card:has(h3:text('Elena Kuznetsova'))[data-state=ringing]")

    elena.locator("button[data-action=pickup]").click()

    expect(elena.locator(".status")).to_have_text("You answered Elena Kuznetsova's call on your phone.")
    assert "Too late" not in page.inner_text("body")
    # The call now rings on nobody: it is the curator's own call.
    page.wait_for_selector("#me article.card[data-state=in_call]")
