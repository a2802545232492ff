"""Every page of the product in Debian's Chromium, in English and Russian, at 1440 and 390 px wide:
axe-core finds nothing serious or critical, nothing fails to load, and the page fits its width.
The demo library's recording is played first, so the audit pages hold rows of every kind when
they are checked; then the language switcher, the error pages and the admin's roster import, each
as a user meets it.

One dashboard (real daphne, embedded bridge, simulated PBX in a thread) serves the whole module.
`SAVE_SCREENSHOTS=1` writes the pictures of docs/screenshots/ (viewport only, both sizes and
languages) while the pages are checked.

The call history pages are checked the same way in tests/test_history_browser.py (with the demo's
past days seeded); every other page is here.
"""

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from tests.axe_pages import describe, fatal_violations
from tests.browser_stack import LOCALES, NARROW, ROOT, WIDE, fresh_server_database, log_in, running_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

SCREENSHOTS = ROOT / "docs" / "screenshots"
SAVE_SCREENSHOTS = os.environ.get("SAVE_SCREENSHOTS") == "1"
DEMO_RECORDING = "/var/lib/asterisk/sounds/training/demo-welcome-call"


@dataclass
class Site:
    url: str
    pbx: object


@pytest.fixture(scope="module")
def site(tmp_path_factory, chromium_path):
    from fakepbx import FakePBXThread

    tmp = tmp_path_factory.mktemp("pages")
    with fresh_server_database("supervision_pages") as database, FakePBXThread(port=0) as pbx, \
            running_dashboard(tmp, database, pbx) as server:
        yield Site(server.url, pbx)


class Visit:
    """A page in a browser context of one size and language, logged in as `username` (or not),
    that remembers what failed to load and what the console complained about."""

    def __init__(self, page, site):
        self.page, self.site = page, site
        self.failed, self.errors = [], []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("response", self._response)

    def _response(self, response):
        # The document itself may be a 403 or 404 page on purpose; nothing it loads may fail.
        if response.status >= 400 and response.request.resource_type != "document":
            self.failed.append(f"{response.status} {response.url}")

    def open(self, path, ready="main h1"):
        self.failed.clear()
        self.errors.clear()
        response = self.page.goto(self.site.url + path)
        self.page.locator(ready).first.wait_for()
        return response

    def check(self, name):
        """axe, loads, width; the picture for the docs when asked."""
        page = self.page
        # The page's own errors first: axe's probing (colour contrast) may trip the CSP itself.
        assert not self.failed, f"{name}: {self.failed}"
        document_errors = [text for text in self.errors if "status of 403" not in text and "status of 404" not in text]
        assert not document_errors, f"{name}: {document_errors}"
        found = fatal_violations(page)
        assert not found, f"{name} at {page.viewport_size['width']} px:\n{describe(found)}"
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} is {overflow} px wider than the {page.viewport_size['width']} px window"
        self.shoot(name)

    def shoot(self, name):
        if SAVE_SCREENSHOTS and name in SCREENSHOT_PAGES:
            SCREENSHOTS.mkdir(exist_ok=True)
            self.page.locator("header").first.scroll_into_view_if_needed()  # pictures start at the top
            language = self.page.locator("html").get_attribute("lang")
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{language}-{self.page.viewport_size['width']}.png"))


SCREENSHOT_PAGES = {"dashboard-curator", "audit", "library", "admin-users"}


@contextmanager
def visiting(browser, site, *, username=None, language="en", viewport=WIDE):
    context = browser.new_context(viewport=viewport, locale=LOCALES[language])
    try:
        page = context.new_page()
        if username:
            log_in(page, site.url, username, f"demo-{username}")
        yield Visit(page, site)
    finally:
        context.close()


def hang_up_phone(pbx, device):
    for channel in list(pbx.switch.channels.values()):
        if channel.device == device and channel.alive:
            pbx.switch.hangup(channel)


def dashboard_is_live(visit):
    expect(visit.page.locator("#socket-state")).to_have_attribute("data-state", "live")
    expect(visit.page.locator("#link-state")).to_have_attribute("data-state", "up")


def user_id(visit, username):
    visit.open(f"/admin/accounts/user/?q={username}", ready="#result_list")
    href = visit.page.locator("#result_list a", has_text=re.compile(f"^{username}$")).get_attribute("href")
    return re.search(r"/user/(\d+)/change/", href).group(1)


def test_the_demo_recording_plays_and_the_audit_tells_each_kind_in_the_pages_language(site, browser, monkeypatch):
    import fakepbx.engine

    # The simulator plays the demo file for its length (20 s); a shorter one here keeps the test
    # quick, the ending is still the simulator's channel hanging up.
    monkeypatch.setitem(fakepbx.engine.SOUND_SECONDS, "demo-welcome-call", 1.0)
    site.pbx.call(lambda pbx: pbx.set_phone("SIP/102", "answer", ring_seconds=0))

    with visiting(browser, site, username="kuznetsova") as visit:
        page = visit.page
        dashboard_is_live(visit)
        page.fill("#dial-number", "5551234")
        page.click("#dial-form button[type=submit]")
        expect(page.locator("#dial-status")).to_contain_text("5551234")
        site.pbx.call(hang_up_phone, "SIP/102")

        visit.open("/library/")
        card = page.locator("article.card", has_text="Welcome call")
        expect(card).to_contain_text("shared with everyone")
        play = card.locator("button.play")
        expect(play).to_be_enabled()
        play.click()
        expect(card.locator(".status")).to_contain_text("Finished playing “Welcome call”.")

    originates = site.pbx.call(lambda pbx: [a.as_dict() for a in pbx.actions if a.get("Action") == "Originate"
                                            and a.get("Channel") == "SIP/102"])
    assert [(o.get("Exten"), o.get("Application"), o.get("Data")) for o in originates] == [
        ("5551234", None, None), (None, "Playback", DEMO_RECORDING)]

    with visiting(browser, site, username="admin", language="ru") as visit:
        page = visit.page
        visit.open("/audit/?person=kuznetsova")
        rows = page.locator("table.audit tbody tr")
        expect(rows).to_have_count(2)
        call, playback = rows.filter(has_text="Звонок"), rows.filter(has_text="Воспроизведение")
        expect(call).to_have_attribute("data-kind", "dial")
        expect(playback).to_have_attribute("data-kind", "playback")
        # The number called is said to be one, not put among the people monitored.
        expect(call.locator("td").nth(3)).to_have_text("номер 5551234")
        expect(playback.locator("td").nth(3)).to_have_text("запись «Welcome call»")
        expect(call.locator("td").nth(5)).to_have_text("разрешено")
        expect(playback.locator("td").nth(6)).to_have_text("завершено")

        # The kind filter, and dates typed in the page's own format.
        page.select_option("#id_kind", "playback")
        date_field = page.locator("#id_date_from")
        expect(date_field).to_have_attribute("placeholder", "ДД.ММ.ГГГГ")
        today = page.evaluate("new Date().toISOString().slice(0, 10)")
        year, month, day = today.split("-")
        date_field.fill(f"{day}.{month}.{year}")
        page.click("form.filters button[type=submit]")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-kind", "playback")
        expect(page.locator("#id_date_from")).to_have_value(f"{day}.{month}.{year}")
        visit.check("audit-filtered")


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1440", "390"])
def test_every_page_passes_axe_loads_everything_and_fits(site, browser, language, viewport):
    # A call on a trainee's phone, so the curator's and admin's cards show one with its buttons.
    site.pbx.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199", caller_name="Mrs Hudson"))

    with visiting(browser, site, language=language, viewport=viewport) as visit:
        visit.open("/login/")
        visit.check("login")

    with visiting(browser, site, username="ivanov", language=language, viewport=viewport) as visit:
        dashboard_is_live(visit)
        visit.check("dashboard-trainee")
        visit.open("/library/")
        visit.check("library-trainee")
        assert visit.open("/audit/").status == 403
        visit.check("forbidden")
        assert visit.open("/no-such-page/").status == 404
        visit.check("not-found")

    with visiting(browser, site, username="petrova", language=language, viewport=viewport) as visit:
        page = visit.page
        dashboard_is_live(visit)
        # She listens to the call: the page with a live spy is checked, and the audit gets a row.
        site.pbx.call(lambda pbx: pbx.set_phone("SIP/201", "answer", ring_seconds=0))
        trainee = page.locator("article.card", has=page.locator("h3", has_text="Dmitry Ivanov"))
        expect(trainee).to_have_attribute("data-state", "in_call")
        trainee.locator("button[data-mode=listen]").click()
        expect(page.locator("article.card.own")).to_have_attribute("data-state", "spying")
        visit.check("dashboard-curator")
        trainee.locator("button.stop").click()
        expect(page.locator("article.card.own")).to_have_attribute("data-state", "idle")
        visit.open("/audit/")
        visit.check("audit")
        visit.open("/library/")
        visit.check("library")

    with visiting(browser, site, username="admin", language=language, viewport=viewport) as visit:
        dashboard_is_live(visit)
        visit.check("dashboard-admin")
        visit.open("/audit/")
        visit.check("audit-admin")
        petrova = user_id(visit, "petrova")
        admin_pages = {
            "admin-index": "/admin/",
            "admin-users": "/admin/accounts/user/",
            "admin-user": f"/admin/accounts/user/{petrova}/change/",
            "admin-user-add": "/admin/accounts/user/add/",
            "admin-import": "/admin/accounts/user/import/",
            "admin-extensions": "/admin/accounts/extension/",
            "admin-audit": "/admin/supervision/monitoringsession/",
            "admin-recordings": "/admin/supervision/recording/",
        }
        for name, path in admin_pages.items():
            visit.open(path, ready="#content")
            visit.check(name)

    site.pbx.call(hang_up_phone, "SIP/101")


def test_the_language_switcher_names_each_language_in_its_own_name(site, browser):
    with visiting(browser, site, username="petrova", language="ru") as visit:
        page = visit.page
        visit.open("/library/")
        switcher = page.locator("#lang-select")
        expect(switcher.locator("option")).to_have_text(["English", "Русский"])
        expect(page.locator("h1")).to_have_text("Учебные записи")
        switcher.select_option("en")  # language.js submits the form
        expect(page.locator("h1")).to_have_text("Training library")
        expect(page.locator("#lang-select option")).to_have_text(["English", "Русский"])
        expect(page.locator("html")).to_have_attribute("lang", "en")


def test_error_pages_carry_the_apps_header_and_favicon(site, browser):
    with visiting(browser, site, username="ivanov", language="ru") as visit:
        page = visit.page
        assert visit.open("/audit/").status == 403
        expect(page.locator("h1")).to_have_text("Нет доступа")
        expect(page.locator("header.topbar a.brand")).to_be_visible()
        expect(page.locator("header.topbar #lang-select")).to_be_visible()
        assert visit.open("/nothing-here/").status == 404
        expect(page.locator("h1")).to_have_text("Страница не найдена")
        expect(page.locator("header.topbar a.brand")).to_be_visible()
        icon = page.locator("link[rel=icon]").get_attribute("href")
        response = page.request.get(site.url + icon)
        assert response.status == 200 and response.headers["content-type"].startswith("image/svg+xml")


ROSTER_CSV = (
    "username,first_name,last_name,role,curator,technology,resource,display_name\n"
    "petrova,Anna,Petrova,curator,,SIP,201,Anna Petrova\n"
    "orlova,Maria,Orlova,trainee,petrova,SIP,106,Maria Orlova\n"
    "orlova,,,trainee,petrova,SIP,107,Maria Orlova (desk 2)\n"
)


def test_the_admin_imports_a_roster_csv_after_a_preview_of_every_row(site, browser):
    with visiting(browser, site, username="admin", language="en") as visit:
        page = visit.page
        visit.open("/admin/accounts/user/", ready="#result_list")
        page.get_by_role("link", name="Import from CSV").click()
        expect(page.locator("h1")).to_have_text("Import the roster from CSV")
        visit.check("admin-import")

        # A bad file: every problem listed, nothing changed.
        bad = "username,role,curator,phone\nnobody,trainee,ghost,1\n"
        page.set_input_files("#id_file", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad.encode()}])
        page.get_by_role("button", name="Check the file").click()
        expect(page.locator(".import-problems li")).to_have_count(1)
        expect(page.locator(".import-problems")).to_contain_text("unknown column 'phone'")
        expect(page.locator("h2").first).to_contain_text("bad.csv: 1 problem; nothing was changed.")

        page.set_input_files("#id_file", files=[{"name": "roster.csv", "mimeType": "text/csv",
                                                  "buffer": ROSTER_CSV.encode()}])
        page.get_by_role("button", name="Check the file").click()
        users, phones = page.locator("#preview-users tbody tr"), page.locator("#preview-extensions tbody tr")
        expect(users).to_have_count(2)
        def row(rows, key):  # the row whose second cell (after the line number) is `key`
            return rows.filter(has=page.locator("td:nth-child(2)", has_text=re.compile(f"^{key}$")))

        expect(row(users, "petrova")).to_contain_text("unchanged")
        expect(row(users, "orlova")).to_contain_text("created")
        expect(phones).to_have_count(3)
        expect(row(phones, "SIP/201")).to_contain_text("unchanged")
        expect(row(phones, "SIP/107")).to_contain_text("created")
        visit.check("admin-import-preview")

        # The preview saved nothing.
        other = page.context.new_page()
        other.goto(site.url + "/admin/accounts/user/?q=orlova")
        expect(other.locator("#changelist .paginator")).to_contain_text("Total: 0")
        other.close()
        page.get_by_role("button", name="Import all of it").click()
        expect(page.locator(".messagelist")).to_contain_text("Roster imported from roster.csv: users 1 created")
        expect(page.locator("#result_list a", has_text=re.compile("^orlova$"))).to_be_visible()
        expect(page.locator("#result_list tr", has_text="orlova")).to_contain_text("SIP/106, SIP/107")


def test_the_russian_admin_and_dashboard_speak_russian(site, browser):
    with visiting(browser, site, username="admin", language="ru") as visit:
        page = visit.page
        dashboard_is_live(visit)
        expect(page.locator("#socket-state")).to_have_text("На связи")
        visit.open("/admin/", ready="#content")
        expect(page.locator("#site-name")).to_have_text("Контроль звонков · состав")
        expect(page.locator("#content h1")).to_have_text("Состав и журнал")
        expect(page.locator(".app-accounts caption")).to_have_text("Состав")
        expect(page.locator(".app-supervision caption")).to_have_text("Контроль звонков")
        expect(page.locator(".app-accounts th a")).to_have_text(["Внутренние номера", "Пользователи"])
        expect(page.locator(".app-supervision th a")).to_have_text(["Журнал действий", "Учебные записи"])
        page.locator(".app-accounts th a", has_text="Пользователи").click()
        expect(page.locator("#content h1")).to_have_text("Выберите пользователя для изменения")
        expect(page.locator("#changelist .paginator")).to_contain_text(re.compile(r"Всего: \d+"))
