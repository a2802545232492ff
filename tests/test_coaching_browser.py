"""End to end in Chromium on the demo stack (real daphne, embedded bridge, simulated PBX over TCP):
a curator listens to her trainee's live call, the grading panel opens on his card, she grades the
call, adds a coaching note stamped with the moment of the call and corrects her grade; the trainee
then finds both versions and the note on "My evaluations", acknowledges the current grade with a
comment, and the curator's list of unacknowledged grades is empty."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser_stack import log_in, running_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

TRAINEE_CARD = "article.card:has(h3:text('Dmitry Ivanov'))"
# The demo scorecard's criteria, in order (coaching/demo.py); "Verifies the customer" is critical.
CRITERIA = ["Greeting", "Verifies the customer", "Understands the question", "Solves or routes it",
            "Courtesy and tone", "Closing"]


def seconds(text):
    minutes, secs = text.split(":")[-2:]
    return int(minutes) * 60 + int(secs)


def score(panel, criterion, value):
    fieldset = panel.locator("fieldset", has=panel.page.locator("legend", has_text=criterion))
    fieldset.get_by_label(str(value), exact=True).check()


def test_a_curator_grades_a_live_call_and_the_trainee_acknowledges(dashboard_server, pbx_thread, browser_page):
    page = browser_page
    log_in(page, dashboard_server, "petrova", "demo-petrova")
    expect(page.locator("#link-state")).to_have_attribute("data-state", "up")
    pbx_thread.call(lambda pbx: pbx.set_phone("SIP/201", "answer", ring_seconds=0))
    agent = pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199"))
    uniqueid = pbx_thread.call(lambda pbx: pbx.switch.find(agent).uniqueid)
    card = page.locator(TRAINEE_CARD)
    expect(card).to_have_attribute("data-state", "in_call")
    # No panel while she is not on the call.
    expect(card.locator(".coaching-panel")).to_have_count(0)

    card.locator("button[data-mode=listen]").click()
    expect(card.locator(".status")).to_contain_text("Listening to Dmitry Ivanov")
    panel = card.locator(".coaching-panel")
    expect(panel.get_by_role("heading", name="Grading Dmitry Ivanov's call")).to_be_visible()
    expect(panel).to_have_attribute("data-call", uniqueid)  # the trainee's channel: the call's id everywhere
    expect(panel.get_by_label("Scorecard")).to_have_value(re.compile(r"\d+"))
    expect(panel.locator("fieldset")).to_have_count(len(CRITERIA))

    # Nothing left unscored reaches the database: the server names what is missing.
    for criterion in CRITERIA[:-1]:
        score(panel, criterion, 4)
    panel.get_by_role("button", name="Submit grade").click()
    expect(panel.locator(".cp-grade .cp-status")).to_have_text("Not saved: Score “Closing”.")
    score(panel, "Closing", 4)
    panel.get_by_label("Comment").fill("Friendly, but slow to verify.")
    panel.get_by_role("button", name="Submit grade").click()
    expect(panel.locator(".cp-grade .cp-status")).to_have_text("Graded 80.0% (Acceptable) as version 1.")
    expect(panel.locator(".cp-grade .cp-status")).to_have_attribute("data-band", "pass")

    # A coaching note, stamped with the moment of the call she started writing it.
    note = panel.locator(".cp-note textarea")
    note.fill("ask for the contract number first")
    stamp = panel.locator(".cp-note label").inner_text()
    assert re.fullmatch(r"Note at \d+:\d\d", stamp), stamp
    talk = card.locator(".call .time").inner_text()  # "talking m:ss", the same board clock
    panel.get_by_role("button", name="Add note").click()
    saved = panel.locator(".cp-notes li")
    expect(saved).to_have_count(1)
    expect(saved).to_contain_text("ask for the contract number first")
    offset = saved.locator("strong").inner_text()
    assert 0 <= seconds(offset) <= seconds(talk.split()[-1]) + 1
    expect(panel.locator(".cp-note .cp-status")).to_have_text(f"Note saved at {offset}.")

    # A correction: the verifying was not done at all, which fails the call whatever the rest.
    expect(panel.get_by_role("button", name="Submit correction")).to_be_visible()
    score(panel, "Verifies the customer", 0)
    panel.get_by_role("button", name="Submit correction").click()
    expect(panel.locator(".cp-grade .cp-status")).to_have_text(
        "Graded 64.0% (Below standard) as version 2. · failed on a critical criterion")
    expect(panel.locator(".cp-grade .cp-status")).to_have_attribute("data-band", "fail")

    # A reloaded page (still listening) opens the panel on the grade given, ready for a correction.
    page.reload()
    panel = page.locator(TRAINEE_CARD).locator(".coaching-panel")
    expect(panel.locator(".cp-grade .cp-status")).to_have_text(
        "Graded already: 64.0% (Below standard), version 2. · failed on a critical criterion")
    verifies = panel.locator("fieldset", has=page.locator("legend", has_text="Verifies the customer"))
    expect(verifies.get_by_label("0", exact=True)).to_be_checked()
    expect(panel.get_by_label("Comment")).to_have_value("Friendly, but slow to verify.")
    expect(panel.locator(".cp-notes li")).to_contain_text(f"{offset} — ask for the contract number first")
    expect(panel.get_by_role("button", name="Submit correction")).to_be_visible()

    # The trainee, on his own page: both versions and the note, and he acknowledges the grade.
    page.context.clear_cookies()
    log_in(page, dashboard_server, "ivanov", "demo-ivanov")
    expect(page.locator("a.nav-evaluations .count")).to_have_text(re.compile(r"^1"))
    page.locator("a.nav-evaluations").click()
    expect(page.get_by_role("heading", name="My evaluations", level=1)).to_be_visible()
    rows = page.locator("table.evaluations tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("ul.notes li")).to_contain_text("ask for the contract number first")
    page.get_by_role("link", name="Read and acknowledge").click()
    section = page.locator("section.coaching")
    current = section.locator("article.evaluation[data-current=true]")
    expect(current).to_have_attribute("data-version", "2")
    expect(current.locator(".result")).to_have_text("64.0% · Failed: critical criterion")
    expect(section.locator("article.evaluation[data-current=false]")).to_contain_text("replaced by a correction")
    expect(section.locator("ol.notes li")).to_contain_text(f"{offset} — ask for the contract number first")
    expect(section.get_by_role("button", name="Correct this grade")).to_have_count(0)  # a trainee does not grade
    current.get_by_label("Your comment (optional)").fill("I will ask for the contract number first.")
    current.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".banner[role=status]")).to_have_text("Acknowledged.")
    expect(current.locator(".ack")).to_contain_text("Acknowledged by the trainee")
    expect(current.locator(".ack")).to_contain_text("I will ask for the contract number first.")
    expect(page.locator("a.nav-evaluations .count")).to_have_count(0)

    # The curator sees it acknowledged: nothing waits any more.
    page.context.clear_cookies()
    log_in(page, dashboard_server, "petrova", "demo-petrova")
    page.goto(dashboard_server + "/coaching/?show=unacknowledged")
    expect(page.locator("table.evaluations tbody")).to_contain_text("No evaluations match.")
    page.goto(dashboard_server + "/coaching/")
    expect(page.locator("table.evaluations tbody tr[data-ack=acknowledged]")).to_have_count(1)


@pytest.fixture
def asterisk22_thread():
    """The simulated Asterisk 22 (PJSIP phones reached through Local/<ext>@dashboard-phones)."""
    from fakepbx import FakePBXThread

    with FakePBXThread(port=0, flavour="asterisk22") as pbx:
        for resource in ("201", "101"):
            pbx.call(lambda p, r=resource: p.set_phone(f"PJSIP/{r}", "autoanswer", ring_seconds=0.5))
        yield pbx


def test_on_asterisk_22_a_whispering_curator_grades_the_trainees_own_leg(tmp_path, server_database,
                                                                         asterisk22_thread, browser_page):
    """PJSIP: the curator's spy runs on a Local ;1 leg and her phone's own leg is bridged with the ;2;
    the board still names her phone among the call's watchers, so the panel opens, and the call is
    the trainee's PJSIP channel."""
    with running_dashboard(tmp_path, server_database, asterisk22_thread, seed_options=("--pjsip",)) as server:
        page = browser_page
        log_in(page, server.url, "petrova", "demo-petrova")
        expect(page.locator("#link-state")).to_have_attribute("data-state", "up")
        agent = asterisk22_thread.call(lambda pbx: pbx.inbound_call("PJSIP/101", caller_num="5550199"))
        uniqueid = asterisk22_thread.call(lambda pbx: pbx.switch.find(agent).uniqueid)
        card = page.locator(TRAINEE_CARD)
        expect(card).to_have_attribute("data-state", "in_call")
        card.locator("button[data-mode=whisper]").click()
        expect(card.locator(".status")).to_contain_text("Whispering to Dmitry Ivanov")
        panel = card.locator(".coaching-panel")
        expect(panel).to_have_attribute("data-call", uniqueid)
        for criterion in CRITERIA:
            score(panel, criterion, 5)
        panel.get_by_role("button", name="Submit grade").click()
        expect(panel.locator(".cp-grade .cp-status")).to_have_text("Graded 100.0% (Good) as version 1.")
        # Her own phone's card (the spying legs) never gets a panel.
        expect(page.locator("article.card.own .coaching-panel")).to_have_count(0)
