"""A recorded call in Debian's Chromium: the simulated PBX records a demo trainee's call (the
dashboard starts MixMonitor; the PBX writes the WAV where the web server reads it), the call page's
<audio> loads it with a range request answered 206, "Play to my phone" plays it to the curator's
phone; axe-core, the width, English and Russian at 1440 and 390 px."""

import pytest
from playwright.sync_api import expect

from tests.axe_pages import describe, fatal_violations
from tests.browser_stack import LOCALES, NARROW, WIDE, fresh_server_database, log_in, running_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NUMBER = "5550999"


@pytest.fixture(scope="module")
def site(tmp_path_factory, chromium_path):
    from fakepbx import FakePBXThread

    tmp = tmp_path_factory.mktemp("recordings")
    # The demo's settings: CALL_RECORDINGS_PBX_DIR = CALL_RECORDINGS_ROOT = <var>/call-recordings.
    with fresh_server_database("supervision_recordings") as database, \
            FakePBXThread(port=0, monitor_dir=str(tmp / "call-recordings"), default_behaviour="autoanswer") as pbx, \
            running_dashboard(tmp, database, pbx) as server:
        server.pbx = pbx
        server.folder = tmp / "call-recordings"
        yield server


def page_for(browser, site, username, *, language="en", viewport=WIDE):
    context = browser.new_context(viewport=viewport, locale=LOCALES[language])
    page = context.new_page()
    log_in(page, site.url, username, f"demo-{username}")
    return page


@pytest.fixture(scope="module")
def call_url(site, browser):
    """A call of ivanov (SIP/101, recorded in the demo) that ended, with its recording: its page's URL."""
    page = page_for(browser, site, "petrova")  # the bridge logs in on the first page
    try:
        expect(page.locator("body")).to_contain_text("Dmitry Ivanov")
        site.pbx.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num=NUMBER, caller_name="Mrs Hudson",
                                                   talk_seconds=1.5))
        page.goto(site.url + "/history/")
        row = page.locator("table.history tbody tr", has_text=NUMBER)
        for _attempt in range(120):  # the bridge writes a call 2 s after it ended; this only guards a hang
            page.reload()
            if row.count():
                break
            page.wait_for_timeout(250)
        expect(row).to_have_count(1)
        row.locator("a").first.click()
        expect(page.locator("section.call-recording audio")).to_be_visible()
        return page.url
    finally:
        page.context.close()


def test_the_audio_element_loads_the_recording_with_a_206_range_answer(site, browser, call_url):
    assert list(site.folder.rglob("*.wav")), "the simulated PBX wrote no recording"
    page = page_for(browser, site, "petrova")
    try:
        with page.expect_response(lambda response: "/recording/" in response.url) as answer:
            page.goto(call_url)
        response = answer.value
        assert response.status == 206, response.status
        assert response.request.headers.get("range", "").startswith("bytes=")
        assert response.headers["content-type"] == "audio/wav"
        assert response.headers["content-range"].startswith("bytes 0-")
        audio = page.locator("section.call-recording audio")
        # the browser read the WAV's header: it knows how long the call's recording is (>= 1 s)
        expect(audio).not_to_have_js_property("duration", float("nan"))
        expect(audio).to_have_js_property("error", None)
        expect(page.locator(".call-recording-status")).to_have_text("")

        page.locator("button.play-call-recording").click()
        expect(page.locator(".call-recording-status")).to_contain_text("Finished playing", timeout=20000)
    finally:
        page.context.close()


def test_someone_who_may_not_see_the_call_gets_neither_page_nor_file(site, browser, call_url):
    page = page_for(browser, site, "smirnov")  # another curator's team
    try:
        response = page.goto(call_url)
        assert response.status == 404
        response = page.goto(call_url.rstrip("/") + "/recording/")
        assert response.status == 404
    finally:
        page.context.close()


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1440", "390"])
def test_the_call_page_with_its_recording_passes_axe_and_fits(site, browser, call_url, language, viewport):
    page = page_for(browser, site, "ivanov", language=language, viewport=viewport)
    try:
        page.goto(call_url)
        section = page.locator("section.call-recording")
        expect(section.locator("h2")).to_have_text("Recording" if language == "en" else "Запись")
        expect(section.locator("button.play-call-recording")).to_be_enabled()
        expect(section.locator("button.play-call-recording")).to_have_text(
            "Play to my phone" if language == "en" else "Проиграть на мой телефон")
        found = fatal_violations(page)
        assert not found, f"call page {language}:\n{describe(found)}"
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the call page is {overflow} px wider than the window"
    finally:
        page.context.close()
