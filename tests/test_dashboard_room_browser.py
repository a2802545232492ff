"""The live dashboard as a supervisor of a room meets it, in Debian's Chromium against a real daphne
with the embedded bridge and the simulated PBX (tests/browser_stack.py): the mode in use, a room
grouped and searchable, the times on a card, the phone's state, a board that goes stale, status
lines and the other party of a call. The page has a strict Content-Security-Policy: everything here
goes through Playwright's locators and `expect`.

The site's thresholds are short here (a ring is long after 2 s, a call after 3 s, a status line goes
after 3 s) so that the page's colouring and expiry are seen without waiting minutes."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser_stack import log_in, running_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

OWN = "article.card.own"


@pytest.fixture
def room(tmp_path, server_database, pbx_thread, monkeypatch):
    monkeypatch.setenv("LONG_RING_SECONDS", "2")
    monkeypatch.setenv("LONG_CALL_SECONDS", "3")
    monkeypatch.setenv("STATUS_LINE_SECONDS", "3")
    with running_dashboard(tmp_path, server_database, pbx_thread) as server:
        yield server.url


def card(page, name):
    return page.locator("article.card", has=page.locator("h3", has_text=name))


def sign_in(page, url, username):
    log_in(page, url, username, f"demo-{username}")
    expect(page.locator("#link-state")).to_have_attribute("data-state", "up")


def test_the_mode_in_use_looks_pressed_and_follows_a_switch(room, pbx_thread, browser_page):
    page = browser_page
    sign_in(page, room, "petrova")
    pbx_thread.call(lambda pbx: pbx.set_phone("SIP/201", "answer", ring_seconds=0))
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199", caller_name="Mrs Hudson"))
    dmitry = card(page, "Dmitry Ivanov")
    expect(dmitry).to_have_attribute("data-state", "in_call")

    dmitry.locator("button[data-mode=listen]").click()
    listen, whisper = dmitry.locator("button[data-mode=listen]"), dmitry.locator("button[data-mode=whisper]")
    expect(listen).to_have_attribute("aria-pressed", "true")
    # Pressed and active: enabled, dark and sunken, never the disabled grey.
    expect(listen).to_be_enabled()
    expect(listen).to_have_css("background-color", "rgb(10, 48, 105)")
    expect(listen).to_have_css("box-shadow", re.compile(r"inset"))
    expect(whisper).to_have_attribute("aria-pressed", "false")
    expect(whisper).to_have_text("Switch to whisper")
    expect(dmitry.locator(".facts")).to_contain_text("Anna Petrova (listening)")

    whisper.click()
    expect(whisper).to_have_attribute("aria-pressed", "true")
    expect(whisper).to_have_css("background-color", "rgb(10, 48, 105)")
    expect(listen).to_have_attribute("aria-pressed", "false")
    expect(listen).not_to_have_css("background-color", "rgb(10, 48, 105)")
    expect(dmitry.locator(".facts")).to_contain_text("Anna Petrova (whispering)")
    expect(page.locator(OWN).locator(".badge")).to_have_text("Whispering to Dmitry Ivanov")


def test_a_room_is_grouped_by_team_searched_filtered_sorted_and_listed_compactly(room, pbx_thread, browser_page):
    page = browser_page
    sign_in(page, room, "admin")
    teams = page.locator("#people details.team")
    expect(teams).to_have_count(2)
    expect(teams.nth(0).locator("summary")).to_contain_text("Anna Petrova's team")
    expect(teams.nth(1).locator("summary")).to_contain_text("Igor Smirnov's team")
    # Each curator is in his own team, with his trainees.
    expect(teams.nth(0).locator("article.card")).to_have_count(4)
    expect(teams.nth(1).locator("article.card h3")).to_have_text(["Igor Smirnov", "Olga Popova", "Sergey Lebedev"])
    totals = page.locator("#totals")
    expect(totals.locator("[data-total=idle] .value")).to_have_text("7")
    # Open help requests are counted from the bridge's own list (none raised yet).
    expect(totals.locator('[data-total="help"] .value')).to_have_text("0")

    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199"))
    expect(card(page, "Dmitry Ivanov")).to_have_attribute("data-state", "in_call")
    expect(totals.locator("[data-total=in_call] .value")).to_have_text("1")
    expect(totals.locator("[data-total=idle] .value")).to_have_text("6")
    expect(totals.locator("[data-total=longest] .value")).to_have_text(re.compile(r"^\d+:\d\d$"))

    visible = page.locator("#people article.card:visible h3")
    page.fill("#people-search", "elena")
    expect(visible).to_have_text(["Elena Kuznetsova"])
    page.fill("#people-search", "SIP/104")  # by extension
    expect(visible).to_have_text(["Olga Popova"])
    page.fill("#people-search", "nobody-like-this")
    expect(page.locator("#people-none")).to_be_visible()
    page.fill("#people-search", "")

    page.select_option("#people-filter", "in_call")
    expect(visible).to_have_text(["Dmitry Ivanov"])
    page.select_option("#people-filter", "all")
    page.select_option("#people-sort", "state")
    expect(teams.nth(0).locator("article.card h3").first).to_have_text("Dmitry Ivanov")

    page.check("#people-compact")
    expect(page.locator("#people")).to_have_class(re.compile(r"\bcompact\b"))
    teams.nth(1).locator("summary").click()
    expect(teams.nth(1)).not_to_have_attribute("open", "")
    page.reload()
    expect(page.locator("#link-state")).to_have_attribute("data-state", "up")
    # The view is kept: compact list, sort, the closed team.
    expect(page.locator("#people-compact")).to_be_checked()
    expect(page.locator("#people-sort")).to_have_value("state")
    expect(page.locator("#people details.team").nth(1)).not_to_have_attribute("open", "")
    expect(page.locator("#people details.team").nth(0)).to_have_attribute("open", "")

    # The compact list on a phone-sized screen: every card inside the 390 px, nothing to scroll sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#people details.team").nth(1).locator("summary").click()
    rows = page.locator("#people article.card")
    expect(rows).to_have_count(7)
    for i in range(7):
        box = rows.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (i, box)
    box = page.locator("#totals").bounding_box()
    assert box["x"] + box["width"] <= 390


def test_a_card_shows_ring_time_talk_time_both_calls_and_idle_time_with_long_ones_marked(room, pbx_thread, browser_page):
    page = browser_page
    sign_in(page, room, "petrova")
    pavel = card(page, "Pavel Sokolov")
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/103", caller_num="5550142", answer=False))
    ringing = pavel.locator("li.call[data-state=ringing]")
    expect(ringing.locator(".time")).to_have_text(re.compile(r"^ringing 0:0\d$"))
    # Past LONG_RING_SECONDS the ring is marked, on the row and the card.
    expect(ringing).to_have_attribute("data-long", "ring")
    expect(pavel).to_have_attribute("data-long", "ring")

    dmitry = card(page, "Dmitry Ivanov")
    first = pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199", caller_name="Mrs Hudson"))
    talking = dmitry.locator("li.call[data-state=in_call]")
    expect(talking.locator(".time")).to_have_text(re.compile(r"^talking 0:0\d$"))
    expect(talking).to_have_attribute("data-long", "call")
    # A second call on the same phone: both are on the card.
    second = pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550777", caller_name="Mr Watson"))
    expect(dmitry.locator("li.call")).to_have_count(2)
    expect(dmitry.locator("li.call .party")).to_have_text(["Mrs Hudson · 5550199", "Mr Watson · 5550777"])

    pbx_thread.call(lambda pbx: pbx.hangup(first))
    expect(dmitry.locator("li.call")).to_have_count(1)
    expect(dmitry.locator(".idle-time")).to_be_hidden()  # the second call goes on
    pbx_thread.call(lambda pbx: pbx.hangup(second))
    expect(dmitry).to_have_attribute("data-state", "idle")
    expect(dmitry.locator(".idle-time")).to_have_text(re.compile(r"^idle 0:0\d$"))
    expect(dmitry.locator("li.call")).to_have_count(0)


def test_a_phone_the_pbx_cannot_reach_shows_offline_and_unknown_is_said_as_unknown(room, pbx_thread, browser_page):
    page = browser_page
    sign_in(page, room, "petrova")
    elena, dmitry = card(page, "Elena Kuznetsova"), card(page, "Dmitry Ivanov")
    # chan_sip lists NOT_INUSE for a phone nobody checks: not proof that it is there.
    expect(dmitry.locator(".presence")).to_have_text("Phone state unknown")
    expect(dmitry.locator(".presence")).to_have_attribute("title", re.compile("may be unplugged"))

    pbx_thread.call(lambda pbx: pbx.phone_gone("SIP/102"))  # qualify: PeerStatus Unreachable, UNAVAILABLE
    expect(elena).to_have_attribute("data-state", "offline")
    expect(elena.locator(".badge")).to_have_text("Phone offline")
    expect(elena.locator(".presence")).to_have_text("Phone unreachable (the PBX gets no answer)")
    expect(page.locator("#totals [data-total=offline] .value")).to_have_text("1")
    page.select_option("#people-filter", "offline")
    expect(page.locator("#people article.card:visible h3")).to_have_text(["Elena Kuznetsova"])
    page.select_option("#people-filter", "all")

    pbx_thread.call(lambda pbx: pbx.phone_back("SIP/102"))
    expect(elena).to_have_attribute("data-state", "idle")
    expect(elena.locator(".presence")).to_have_text("Phone online")
    expect(page.locator("#totals [data-total=offline] .value")).to_have_text("0")

    # A page opened now gets the same from its snapshot.
    pbx_thread.call(lambda pbx: pbx.phone_gone("SIP/103"))
    page.reload()
    expect(card(page, "Pavel Sokolov")).to_have_attribute("data-state", "offline")


def test_a_board_without_its_pbx_link_is_grey_frozen_and_says_so(room, pbx_thread, browser_page):
    page = browser_page
    sign_in(page, room, "petrova")
    dmitry = card(page, "Dmitry Ivanov")
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199"))
    expect(dmitry).to_have_attribute("data-state", "in_call")
    listen = dmitry.locator("button[data-mode=listen]")
    expect(listen).to_be_enabled()
    expect(page.locator("#stale-banner")).to_be_hidden()

    pbx_thread.call(lambda pbx: pbx.stop())  # the PBX goes away
    expect(page.locator("#link-state")).to_have_attribute("data-state", "down")
    expect(page.locator("#link-state")).to_contain_text("No connection to the PBX since")
    expect(page.locator("main")).to_have_class(re.compile(r"\bstale\b"))
    expect(page.locator("#stale-banner")).to_be_visible()
    expect(page.locator("#stale-banner")).to_contain_text("Last known at")
    expect(page.locator("#stale-banner")).to_contain_text("the PBX link is down")
    expect(listen).to_be_disabled()
    expect(listen).to_have_attribute("title", re.compile("PBX link is down"))
    expect(page.locator("#dial-form button[type=submit]")).to_be_disabled()
    expect(page.locator("#people")).to_have_css("filter", "grayscale(1)")
    # The clock stands still at the last moment the board was known to be right.
    frozen = dmitry.locator("li.call .time").inner_text()
    page.wait_for_timeout(2500)
    assert dmitry.locator("li.call .time").inner_text() == frozen

    pbx_thread.call(lambda pbx: pbx.start())  # back: the next login rebuilds the board
    expect(page.locator("#link-state")).to_have_attribute("data-state", "up")
    expect(page.locator("#stale-banner")).to_be_hidden()
    expect(page.locator("main")).not_to_have_class(re.compile(r"\bstale\b"))
    expect(page.locator("#dial-form button[type=submit]")).to_be_enabled()
    expect(dmitry).to_have_attribute("data-state", "idle")  # the restarted PBX has no call


def test_status_lines_are_timed_worded_for_the_reader_and_go(room, pbx_thread, browser_page):
    page = browser_page
    sign_in(page, room, "ivanov")
    pbx_thread.call(lambda pbx: pbx.set_phone("SIP/101", "answer", ring_seconds=0))
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550142", answer=False))
    own = page.locator(OWN)
    expect(own).to_have_attribute("data-state", "ringing")
    own.locator("button[data-action=pickup]").click()
    status = own.locator(".status")
    expect(status).to_have_text("You answered your ringing call on this phone.")
    expect(own.locator(".status-time")).to_have_text(re.compile(r"^\d{1,2}:\d\d"))
    # Past STATUS_LINE_SECONDS the line goes, with its time.
    expect(status).to_have_text("", timeout=15000)
    expect(own.locator(".status-time")).to_be_hidden()


def test_the_other_party_is_named_apart_from_its_number_and_a_click_to_call_shows_the_number_dialled(
        room, pbx_thread, browser_page):
    page = browser_page
    sign_in(page, room, "petrova")
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199", caller_name="Mrs Hudson"))
    expect(card(page, "Dmitry Ivanov").locator("li.call .party")).to_have_text("Mrs Hudson · 5550199")

    pbx_thread.call(lambda pbx: pbx.set_phone("SIP/201", "answer", ring_seconds=0))
    page.fill("#dial-number", "5551234")
    page.click("#dial-form button[type=submit]")
    own = page.locator(OWN)
    expect(own).to_have_attribute("data-state", "in_call")
    # Asterisk's connected line on her leg is her own phone; the card says whom she called.
    expect(own.locator("li.call .party")).to_have_text("5551234")
    expect(own).not_to_contain_text("Anna Petrova · 201")
