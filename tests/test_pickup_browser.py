"""End to end in Chromium: a call rings on a trainee's phone, his page shows "Answer here", he
presses it and the simulated PBX shows the call taken by his own phone (PickupChan)."""

import pytest

from tests.browser_stack import log_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

OWN_CARD = "article.card.own"


def test_a_trainee_answers_his_ringing_call_from_the_page(dashboard_server, pbx_thread, browser_page):
    page = browser_page
    log_in(page, dashboard_server, "ivanov", "demo-ivanov")
    page.wait_for_selector("#link-state[data-state=up]")
    pbx_thread.call(lambda pbx: pbx.set_phone("SIP/101", "answer", ring_seconds=0))  # his headset answers
    assert page.locator(f"{OWN_CARD} button[data-action=pickup]").is_hidden()

    ringing = pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550142", answer=False))
    page.wait_for_selector(f"{OWN_CARD}[data-state=ringing]")
    button = page.locator(f"{OWN_CARD} button[data-action=pickup]")
    button.wait_for(state="visible")
    assert button.inner_text() == "Answer here"

    button.click()
    # Worded for him: it is his own call, not "Dmitry Ivanov's call".
    page.wait_for_selector(f"{OWN_CARD} .status:has-text('You answered your ringing call on this phone.')")
    page.wait_for_selector(f"{OWN_CARD}[data-state=in_call]")
    assert button.is_hidden()  # only while the phone rings

    [originate] = pbx_thread.call(lambda pbx: [a.as_dict() for a in pbx.actions if a.get("Action") == "Originate"])
    assert (originate["Channel"], originate["Application"], originate["Data"]) == ("SIP/101", "PickupChan", ringing)

    def call_of_the_phone(pbx):
        """The ringing leg is gone; his phone's new channel is bridged with the customer."""
        legs = [c for c in pbx.switch.channels.values() if c.device == "SIP/101"]
        return [(c.name, c.state, sorted(p.name.split("-")[0] for p in c.bridge.channels) if c.bridge else None)
                for c in legs]

    [(name, state, bridged)] = pbx_thread.call(call_of_the_phone)
    assert name != ringing and state == 6 and bridged == ["SIP/101", "SIP/trunk"]


def test_the_dial_box_and_the_library_play_from_the_page(dashboard_server, pbx_thread, browser_page):
    """The other two moves from the same pages: a number typed into the dial box, a recording a
    curator added and shared, played to the trainee's phone."""
    page = browser_page
    log_in(page, dashboard_server, "petrova", "demo-petrova")
    page.goto(dashboard_server + "/library/")
    page.fill("#id_title", "Handling objections")
    page.fill("#id_path", "/var/lib/asterisk/sounds/training/objections")
    page.select_option("#id_sharing", "trainees")
    page.click("form.recording-form button[type=submit]")
    page.wait_for_selector("text=“Handling objections” was added to the library.")
    page.click("form.inline button.link")  # log out

    log_in(page, dashboard_server, "ivanov", "demo-ivanov")
    page.wait_for_selector("#link-state[data-state=up]")
    pbx_thread.call(lambda pbx: pbx.set_phone("SIP/101", "answer", ring_seconds=0))
    page.fill("#dial-number", "5551234")
    page.click("#dial-form button[type=submit]")
    page.wait_for_selector("#dial-status:has-text('Your phone answered; calling 5551234.')")

    page.goto(dashboard_server + "/library/")
    play = page.locator("article.card:has-text('Handling objections') button.play")
    play.wait_for(state="visible")
    page.wait_for_function("!document.querySelector('button.play').disabled")
    play.click()
    page.wait_for_selector("article.card:has-text('Handling objections') .status:has-text('Finished playing')")

    originates = pbx_thread.call(lambda pbx: [a.as_dict() for a in pbx.actions if a.get("Action") == "Originate"])
    assert [(o["Channel"], o.get("Exten"), o.get("Application"), o.get("Data")) for o in originates] == [
        ("SIP/101", "5551234", None, None),
        ("SIP/101", None, "Playback", "/var/lib/asterisk/sounds/training/objections"),
    ]
