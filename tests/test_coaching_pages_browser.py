"""The coaching pages in Debian's Chromium, in English and Russian, at 1440 and 390 px: axe-core finds
nothing serious or critical, nothing fails to load, the page fits its width. Checked: the curator's
dashboard with the live grading panel open on a card, a call's coaching page (graded, corrected,
noted; for the curator with the correction form, for the trainee with the acknowledge forms),
"Evaluations" / "My evaluations", the scorecards page and its form, and the scorecard in the Django
admin with its criteria inline."""

import pytest
from playwright.sync_api import expect

from tests.test_pages_browser import (  # noqa: F401 - the module's site fixture (the browser is conftest's)
    NARROW, SAVE_SCREENSHOTS, SCREENSHOTS, WIDE, dashboard_is_live, hang_up_phone, site, user_id, visiting,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

CALL = "1764580000.77"
WORDS = {
    "en": {"panel": "Grading Dmitry Ivanov's call", "grade": "Submit grade", "note": "Add note",
           "mine": "My evaluations", "ack": "Acknowledge", "all": "Evaluations", "cards": "Scorecards"},
    "ru": {"panel": "Оценка звонка: Dmitry Ivanov", "grade": "Отправить оценку", "note": "Добавить заметку",
           "mine": "Мои оценки", "ack": "Подтвердить ознакомление", "all": "Оценки", "cards": "Оценочные листы"},
}


SCREENSHOT_PAGES = {"dashboard-grading", "coaching-call-trainee"}


def check(visit, name):
    """axe, loads, width (tests/test_pages_browser.py); with SAVE_SCREENSHOTS=1 also the docs' picture."""
    visit.check(name)
    if SAVE_SCREENSHOTS and name in SCREENSHOT_PAGES:
        page = visit.page
        language = page.locator("html").get_attribute("lang")
        target = page.locator(".coaching-panel").first if name == "dashboard-grading" else page.locator("section.coaching")
        target.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{language}-{page.viewport_size['width']}.png"))


def grade_on_the_call_page(visit, url, value):
    page = visit.page
    visit.open(url)
    form = page.locator("form.grade-form").first
    for fieldset in form.locator("fieldset").all():
        fieldset.locator(f"input[type=radio][value='{value}']").check()
    form.locator("button[type=submit]").click()
    expect(page.locator(".banner[role=status]")).to_be_visible()


@pytest.fixture(scope="module")
def graded_call(site, browser):
    """A call of Dmitry Ivanov graded twice (a correction) with a note, through the call page."""
    with visiting(browser, site, username="admin") as visit:
        ivanov = user_id(visit, "ivanov")
    url = f"/coaching/call/{ivanov}/{CALL}/"
    with visiting(browser, site, username="petrova") as visit:
        grade_on_the_call_page(visit, url, 3)
        page = visit.page
        page.locator("details.correct summary").click()
        page.locator("details.correct input[type=radio][value='5']").first.check()
        page.locator("details.correct button[type=submit]").click()
        expect(page.locator("article.evaluation")).to_have_count(2)
        page.locator("#note-offset").fill("0:42")
        page.locator("#note-text").fill("Ask for the contract number first.")
        page.locator("form.note-form button[type=submit]").click()
        expect(page.locator("ol.notes li")).to_have_count(1)
    return url


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1440", "390"])
def test_coaching_pages_pass_axe_and_fit(site, browser, graded_call, language, viewport):
    words = WORDS[language]
    with visiting(browser, site, username="petrova", language=language, viewport=viewport) as visit:
        page = visit.page
        dashboard_is_live(visit)
        site.pbx.call(lambda pbx: pbx.set_phone("SIP/201", "answer", ring_seconds=0))
        site.pbx.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199", caller_name="Mrs Hudson"))
        trainee = page.locator("article.card", has=page.locator("h3", has_text="Dmitry Ivanov"))
        expect(trainee).to_have_attribute("data-state", "in_call")
        trainee.locator("button[data-mode=listen]").click()
        panel = trainee.locator(".coaching-panel")
        expect(panel.get_by_role("heading", name=words["panel"])).to_be_visible()
        expect(panel.get_by_role("button", name=words["grade"])).to_be_visible()
        expect(panel.get_by_role("button", name=words["note"])).to_be_visible()
        check(visit, "dashboard-grading")
        trainee.locator("button.stop").click()
        expect(page.locator("article.card.own")).to_have_attribute("data-state", "idle")
        site.pbx.call(hang_up_phone, "SIP/101")

        visit.open(graded_call)
        expect(page.locator("article.evaluation")).to_have_count(2)
        visit.check("coaching-call-curator")
        page.locator("details.correct summary").click()
        visit.check("coaching-call-correcting")
        visit.open("/coaching/")
        expect(page.locator("h1")).to_have_text(words["all"])
        visit.check("coaching-index-curator")
        visit.open("/coaching/scorecards/")
        expect(page.locator("h1")).to_have_text(words["cards"])
        visit.check("coaching-scorecards")
        visit.open("/coaching/scorecards/new")
        visit.check("coaching-scorecard-form")

    with visiting(browser, site, username="ivanov", language=language, viewport=viewport) as visit:
        page = visit.page
        visit.open("/coaching/")
        expect(page.locator("h1")).to_have_text(words["mine"])
        visit.check("coaching-index-trainee")
        visit.open(graded_call)
        expect(page.get_by_role("button", name=words["ack"])).to_have_count(2)  # the current grade and the note
        check(visit, "coaching-call-trainee")

    with visiting(browser, site, username="admin", language=language, viewport=viewport) as visit:
        visit.open("/admin/coaching/scorecard/", ready="#content")
        visit.check("admin-scorecards")
        visit.page.locator("#result_list tbody th a").first.click()
        expect(visit.page.locator("#criteria-group")).to_be_visible()
        visit.check("admin-scorecard")
        visit.open("/admin/coaching/evaluation/", ready="#content")
        visit.check("admin-evaluations")
