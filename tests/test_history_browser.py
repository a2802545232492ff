"""The call history pages in Debian's Chromium: the demo's past days (`seed_demo --history`) and a
call the simulated PBX makes while the page is open; axe-core, the width, English and Russian at
1440 and 390 px; the filters as a curator uses them; a trainee's own calls only."""

import re

import pytest
from playwright.sync_api import expect

from tests.axe_pages import describe, fatal_violations
from tests.browser_stack import LOCALES, NARROW, WIDE, fresh_server_database, log_in, running_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def site(tmp_path_factory, chromium_path):
    from fakepbx import FakePBXThread

    tmp = tmp_path_factory.mktemp("history")
    with fresh_server_database("supervision_history") as database, FakePBXThread(port=0) as pbx, \
            running_dashboard(tmp, database, pbx, seed_options=("--history",)) as server:
        server.pbx = pbx
        yield server


def page_for(browser, site, username, *, language="en", viewport=WIDE):
    context = browser.new_context(viewport=viewport, locale=LOCALES[language])
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.errors = errors
    log_in(page, site.url, username, f"demo-{username}")
    return page


def checked(page, name):
    assert not [text for text in page.errors if "status of 404" not in text], f"{name}: {page.errors}"
    found = fatal_violations(page)
    assert not found, f"{name} at {page.viewport_size['width']} px:\n{describe(found)}"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name} is {overflow} px wider than the {page.viewport_size['width']} px window"


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1440", "390"])
def test_the_list_and_a_call_pass_axe_and_fit(site, browser, language, viewport):
    page = page_for(browser, site, "petrova", language=language, viewport=viewport)
    try:
        page.locator("nav a[href='/history/']").click()
        expect(page.locator("main h1")).to_have_text("Call history" if language == "en" else "История звонков")
        rows = page.locator("table.history tbody tr[data-call]")
        expect(rows.first).to_be_visible()
        checked(page, f"history list {language}")

        monitored = page.locator("table.history tbody tr[data-call]", has_text=re.compile("listen|прослушивание"))
        monitored.first.locator("a").first.click()
        expect(page.locator("section.call-details dl")).to_be_visible()
        expect(page.locator("ul.monitors li").first).to_contain_text("Anna Petrova")
        checked(page, f"call page {language}")
    finally:
        page.context.close()


def test_a_curator_filters_her_team_and_a_trainee_sees_only_his_own(site, browser):
    page = page_for(browser, site, "petrova")
    try:
        page.goto(site.url + "/history/")
        page.select_option("#id_person", label="Elena Kuznetsova")
        page.select_option("#id_direction", "out")
        page.fill("#id_min_talk", "60")
        page.click("form.filters button[type=submit]")
        rows = page.locator("table.history tbody tr[data-call]")
        expect(rows.first).to_be_visible()
        for index in range(rows.count()):
            row = rows.nth(index)
            expect(row).to_have_attribute("data-direction", "out")
            expect(row.locator("td").nth(1)).to_contain_text("Elena Kuznetsova")
        # The CSV link carries the same filters.
        expect(page.locator("a", has_text="Export CSV")).to_have_attribute("href", re.compile(r"direction=out"))
        # Someone else's trainee is not among the choices.
        expect(page.locator("#id_person option", has_text="Olga Popova")).to_have_count(0)
        other = page.goto(site.url + "/history/?person=999999")
        assert other.status == 200
        expect(page.locator(".errorlist")).to_be_visible()
        expect(page.locator("table.history tbody tr[data-call]")).to_have_count(0)
        href = page.goto(site.url + "/history/?direction=in")
        assert href.status == 200
        first_call = page.locator("table.history tbody tr[data-call]").first.get_attribute("data-call")
    finally:
        page.context.close()

    trainee = page_for(browser, site, "popova")  # smirnov's trainee: not petrova's team
    try:
        trainee.goto(site.url + "/history/")
        expect(trainee.locator("#id_person")).to_have_count(0)
        people = trainee.locator("table.history thead th")
        expect(people.filter(has_text="Person")).to_have_count(0)
        assert trainee.goto(site.url + f"/history/call/{first_call}/").status == 404
    finally:
        trainee.context.close()


def test_a_call_that_ends_appears_in_the_list(site, browser):
    page = page_for(browser, site, "ivanov")
    try:
        page.goto(site.url + "/history/?direction=in")
        number = "5550777"
        expect(page.locator("table.history tbody", has_text=number)).to_have_count(0)
        site.pbx.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num=number, caller_name="Mrs Hudson",
                                                   talk_seconds=0.5))
        row = page.locator("table.history tbody tr", has_text=number)
        for _attempt in range(120):  # the bridge writes a call 2 s after it ended; this only guards a hang
            page.reload()
            if row.count():
                break
            page.wait_for_timeout(250)
        expect(row).to_have_count(1)
        expect(row).to_have_attribute("data-direction", "in")
        expect(row).to_contain_text("Mrs Hudson")
        expect(row).to_contain_text("normal clearing")
    finally:
        page.context.close()
