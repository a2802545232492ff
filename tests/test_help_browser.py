"""End to end in Chromium: a trainee in a demo call presses "I need help"; his curator's page shows
it at once (banner, marked card, totals count); her one-press Whisper ends it as joined, with the
response time in the row. Also: the trainee cancels, the call ends, and with the curator offline an
admin's page shows it. The curator's page passes axe with a request shown."""

import json
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.axe_pages import describe, fatal_violations
from tests.browser_stack import ROOT, log_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

TRAINEE_CARD = "article.card:has(h3:text('Dmitry Ivanov'))"
BANNER_ITEM = "#help-banner li:has-text('Dmitry Ivanov needs help')"


def rows(server):
    """The help request rows as the server's own database has them."""
    code = ("import json; from helprequests.models import HelpRequest as H; "
            "print(json.dumps(list(H.objects.order_by('pk').values('trainee_label', 'end_reason', 'responder_label', "
            "'mode', 'response_seconds', 'audience', 'call_uniqueid', 'ended_at')), default=str))"
            )
    out = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", code], env=server.env, cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def new_page(browser_page, width=1280, height=800, language="en-US"):
    context = browser_page.context.browser.new_context(viewport={"width": width, "height": height}, locale=language)
    return context.new_page()


@pytest.fixture
def trainee_in_a_call(daphne_server, pbx_thread, browser_page):
    """(curator's page, trainee's page, the call's channel): petrova watches, ivanov is on a call."""
    curator = browser_page
    log_in(curator, daphne_server.url, "petrova", "demo-petrova")
    expect(curator.locator("#link-state[data-state=up]")).to_be_visible()
    trainee = new_page(browser_page)
    log_in(trainee, daphne_server.url, "ivanov", "demo-ivanov")
    expect(trainee.locator("#link-state[data-state=up]")).to_be_visible()
    expect(trainee.locator("button.help-raise")).to_be_hidden()  # no call, no button
    agent = pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199"))
    expect(trainee.locator("article.card.own[data-state=in_call]")).to_be_visible()
    yield curator, trainee, agent
    trainee.context.close()


def test_the_curators_whisper_answers_a_raised_hand(daphne_server, pbx_thread, trainee_in_a_call):
    curator, trainee, agent = trainee_in_a_call
    pbx_thread.call(lambda pbx: pbx.set_phone("SIP/201", "answer", ring_seconds=0))  # Anna's headset

    trainee.get_by_role("button", name="I need help").click()

    expect(trainee.locator("#help-mine")).to_have_text("Help requested: Anna Petrova has been told.")
    expect(trainee.get_by_role("button", name="Cancel help request")).to_be_visible()
    expect(curator.locator(BANNER_ITEM)).to_be_visible()
    expect(curator.locator("#help-alert")).to_have_text("Dmitry Ivanov needs help on a call")
    expect(curator.locator(f"{TRAINEE_CARD}[data-help=open] .help-mark")).to_contain_text("Needs help")
    expect(curator.locator('#totals [data-total="help"] .value')).to_have_text("1")
    found = fatal_violations(curator)
    assert not found, describe(found)

    curator.locator(BANNER_ITEM).get_by_role("button", name="Whisper").click()

    expect(curator.locator("#help-banner")).to_be_hidden()
    expect(curator.locator('#totals [data-total="help"] .value')).to_have_text("0")
    expect(curator.locator(f"{TRAINEE_CARD}[data-help=open]")).to_have_count(0)
    expect(curator.locator("#help-alert")).to_contain_text("Anna Petrova joined Dmitry Ivanov's call (whispering) after")
    expect(curator.locator(f"{TRAINEE_CARD} .status")).to_have_text("Whispering to Dmitry Ivanov")
    expect(trainee.locator("#help-mine")).to_contain_text("Anna Petrova joined your call (whispering) after")
    expect(trainee.locator("#monitored")).to_be_visible()
    [row] = rows(daphne_server)
    assert (row["trainee_label"], row["end_reason"], row["responder_label"], row["mode"]) == (
        "Dmitry Ivanov", "joined", "Anna Petrova", "whisper")
    assert row["response_seconds"] is not None and row["response_seconds"] >= 0 and row["ended_at"]
    originates = pbx_thread.call(lambda pbx: [a.as_dict() for a in pbx.actions if a.get("Action") == "Originate"])
    assert [o["Data"] for o in originates] == [f"{agent},wxEd"]  # the card's own whisper: exactly that call


def test_the_trainee_cancels_and_a_call_end_closes_the_next(daphne_server, pbx_thread, trainee_in_a_call):
    curator, trainee, agent = trainee_in_a_call
    trainee.get_by_role("button", name="I need help").click()
    expect(curator.locator(BANNER_ITEM)).to_be_visible()

    trainee.get_by_role("button", name="Cancel help request").click()

    expect(curator.locator("#help-banner")).to_be_hidden()
    expect(curator.locator("#help-alert")).to_have_text("Dmitry Ivanov cancelled the help request.")
    expect(trainee.locator("#help-mine")).to_have_text("You cancelled your help request.")
    expect(trainee.get_by_role("button", name="I need help")).to_be_visible()

    trainee.get_by_role("button", name="I need help").click()
    expect(curator.locator(BANNER_ITEM)).to_be_visible()
    pbx_thread.call(lambda pbx: pbx.hangup(agent))

    expect(curator.locator("#help-banner")).to_be_hidden()
    expect(curator.locator("#help-alert")).to_have_text("Dmitry Ivanov's call ended; the help request is closed.")
    expect(trainee.locator("#help-mine")).to_have_text("Your call ended, so your help request was closed.")
    expect(trainee.locator("button.help-raise")).to_be_hidden()
    assert [row["end_reason"] for row in rows(daphne_server)] == ["cancelled", "call_ended"]

    # The call's page in the history shows both, in order (the call is written a moment after it ended).
    for _attempt in range(40):
        curator.goto(daphne_server.url + "/history/")
        if curator.locator("tr[data-call]").count():
            break
        curator.wait_for_timeout(250)
    curator.locator("tr[data-call] a").first.click()
    section = curator.locator("section.help-requests")
    expect(section.locator("tbody tr")).to_have_count(2)
    expect(section.locator("tbody tr").nth(0)).to_contain_text("cancelled by the trainee")
    expect(section.locator("tbody tr").nth(1)).to_contain_text("the call ended")
    found = fatal_violations(curator)
    assert not found, describe(found)


def test_with_the_curator_offline_an_admin_sees_it(daphne_server, pbx_thread, browser_page):
    admin = browser_page
    log_in(admin, daphne_server.url, "admin", "demo-admin")
    expect(admin.locator("#link-state[data-state=up]")).to_be_visible()
    trainee = new_page(browser_page, 390, 844)
    log_in(trainee, daphne_server.url, "ivanov", "demo-ivanov")
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199"))
    expect(trainee.locator("article.card.own[data-state=in_call]")).to_be_visible()

    trainee.get_by_role("button", name="I need help").click()

    expect(trainee.locator("#help-mine")).to_have_text(
        "Help requested: your curator is not online, so the administrators have been told.")
    expect(admin.locator(BANNER_ITEM)).to_contain_text("(curator Anna Petrova is not online)")
    expect(admin.locator(f"{TRAINEE_CARD}[data-help=open]")).to_be_visible()
    # An admin's page opened now is shown it too (after its snapshot), in Russian here.
    late = new_page(browser_page, 390, 844, language="ru-RU")
    log_in(late, daphne_server.url, "admin", "demo-admin")
    expect(late.locator("#help-banner li:has-text('Dmitry Ivanov')")).to_be_visible()
    found = fatal_violations(late)
    assert not found, describe(found)
    assert [row["audience"] for row in rows(daphne_server)] == ["admins"]
    late.context.close()
    trainee.context.close()


def test_the_sound_is_off_until_turned_on_and_the_choice_is_remembered(dashboard_server, browser_page):
    page = browser_page
    log_in(page, dashboard_server, "petrova", "demo-petrova")
    toggle = page.get_by_role("checkbox", name="Sound for help requests")
    expect(toggle).not_to_be_checked()
    toggle.check()
    page.reload()
    expect(page.get_by_role("checkbox", name="Sound for help requests")).to_be_checked()
    page.get_by_role("checkbox", name="Sound for help requests").uncheck()
    page.reload()
    expect(page.get_by_role("checkbox", name="Sound for help requests")).not_to_be_checked()
    trainee = new_page(browser_page)
    log_in(trainee, dashboard_server, "ivanov", "demo-ivanov")
    expect(trainee.locator("#link-state[data-state=up]")).to_be_visible()
    expect(trainee.get_by_role("checkbox", name="Sound for help requests")).to_have_count(0)  # trainees ask, not answer
    trainee.context.close()


@pytest.mark.parametrize("language", ["en-US", "ru-RU"])
def test_the_admins_list_of_help_requests_passes_axe(daphne_server, pbx_thread, browser_page, language):
    trainee = new_page(browser_page)
    log_in(trainee, daphne_server.url, "ivanov", "demo-ivanov")
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199"))
    trainee.get_by_role("button", name="I need help").click()
    expect(trainee.get_by_role("button", name="Cancel help request")).to_be_visible()
    trainee.get_by_role("button", name="Cancel help request").click()
    expect(trainee.locator("#help-mine")).to_have_text("You cancelled your help request.")
    trainee.context.close()

    admin = new_page(browser_page, 390, 844, language=language)
    log_in(admin, daphne_server.url, "admin", "demo-admin")
    for width in (1440, 390):
        admin.set_viewport_size({"width": width, "height": 900})
        admin.goto(daphne_server.url + "/admin/helprequests/helprequest/")
        expect(admin.locator("#result_list tbody tr")).to_have_count(1)
        found = fatal_violations(admin)
        assert not found, describe(found)
        admin.locator("#result_list tbody tr a").first.click()
        expect(admin.locator("body.change-form")).to_be_visible()
        found = fatal_violations(admin)
        assert not found, describe(found)
    admin.context.close()
