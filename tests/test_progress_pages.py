"""The progress pages, server side: who may open them (404 for anyone else), what they show
(figures, inline SVG charts with a title, a description and the numbers in a table, the latest
notes and evaluations, open help requests), the team table's server-side sort, the menu link,
Russian."""

import re

import pytest
from django.urls import reverse

from accounts.models import Role, User
from tests.progress_seed import seed_trainee

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    admin = User.objects.create_user("boss", password=None, role=Role.ADMIN, first_name="Boss")
    olga = User.objects.create_user("olga", password=None, role=Role.CURATOR, first_name="Olga")
    ivan = User.objects.create_user("ivan", password=None, role=Role.CURATOR, first_name="Ivan")
    anna = User.objects.create_user("anna", password=None, role=Role.TRAINEE, curator=olga, first_name="Anna")
    boris = User.objects.create_user("boris", password=None, role=Role.TRAINEE, curator=olga, first_name="Boris")
    vera = User.objects.create_user("vera", password=None, role=Role.TRAINEE, curator=ivan, first_name="Vera")
    seed_trainee(anna, grader=olga, calls_per_day=(3, 0, 2), evaluations=((0, [1, 1, 1, 1, 1, 1]), (2, [5] * 6)))
    seed_trainee(boris, grader=olga, calls_per_day=(1,), evaluations=((0, [5] * 6),), notes=0, open_help=0)
    return {u.username: u for u in (admin, olga, ivan, anna, boris, vera)}


def page(client, user, url, language="en"):
    client.force_login(user)
    client.cookies["django_language"] = language
    return client.get(url)


@pytest.mark.parametrize("viewer, status", [("anna", 200), ("olga", 200), ("boss", 200), ("ivan", 404),
                                            ("boris", 404)])
def test_a_trainees_page_is_his_his_curators_and_the_admins(client, team, viewer, status):
    assert page(client, team[viewer], reverse("progress:trainee", args=[team["anna"].pk])).status_code == status


def test_no_trainee_page_for_a_curator_or_nobody(client, team):
    assert page(client, team["boss"], reverse("progress:trainee", args=[team["olga"].pk])).status_code == 404
    assert page(client, team["boss"], reverse("progress:trainee", args=[999999])).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, team):
    response = client.get(reverse("progress:trainee", args=[team["anna"].pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_trainee_page_draws_its_charts_with_words_for_screen_readers(client, team):
    html = page(client, team["olga"], reverse("progress:trainee", args=[team["anna"].pk])).content.decode()
    svgs = re.findall(r"<svg .*?</svg>", html, re.S)
    # Four bar charts (calls, talk, ring per day; calls per week), the result and six criteria.
    assert len(svgs) == 4 + 1 + 6
    for svg in svgs:
        assert 'role="img"' in svg and "<title " in svg and "<desc " in svg and "aria-labelledby" in svg
    assert "style=" not in html  # the Content-Security-Policy allows no inline style
    calls_per_day = re.search(r'id="chart-calls-day".*?</svg>', html, re.S).group(0)
    assert re.findall(r'class="bar"[^>]*data-value="(\d+)"', calls_per_day)[-3:] == ["2", "0", "3"]
    result = re.search(r'id="chart-result".*?</figure>', html, re.S).group(0)
    assert len(re.findall(r'<circle class="point"', result)) == 2
    assert "<table" in result and "20%" in result and "100%" in result  # the numbers as a table too
    assert 'data-figure="calls">5<' in html and 'data-figure="monitored">60%<' in html
    assert "Note 1: greet the caller by name." in html and 'id="open-help"' in html
    assert reverse("coaching:call", args=[team["anna"].pk, "anna-0-0"]) in html


def test_the_trainee_sees_his_own_page_under_my_progress_and_the_menu_links_it(client, team):
    html = page(client, team["anna"], reverse("progress:index"), language="en")
    assert html.status_code == 302 and html["Location"] == reverse("progress:trainee", args=[team["anna"].pk])
    html = page(client, team["anna"], reverse("progress:trainee", args=[team["anna"].pk])).content.decode()
    assert "<h1>My progress</h1>" in html
    assert f'href="{reverse("progress:trainee", args=[team["anna"].pk])}">My progress</a>' in html
    olga = page(client, team["olga"], reverse("dashboard")).content.decode()
    assert f'href="{reverse("progress:team")}">Progress</a>' in olga


def test_a_trainee_has_no_team_page(client, team):
    assert page(client, team["anna"], reverse("progress:team")).status_code == 404


def test_the_team_page_puts_his_trainees_side_by_side_most_in_need_first(client, team):
    html = page(client, team["olga"], reverse("progress:team")).content.decode()
    assert re.findall(r'<tr data-trainee="(\w+)"', html) == ["anna", "boris"]
    assert 'data-trainee="vera"' not in html
    anna = re.search(r'<tr data-trainee="anna".*?</tr>', html, re.S).group(0)
    assert "has an open help request" in anna and 'data-col="calls">5<' in anna
    assert 'aria-sort="descending"' in html


@pytest.mark.parametrize("query, expected", [
    ("sort=name&order=desc", ["boris", "anna"]), ("sort=name&order=asc", ["anna", "boris"]),
    ("sort=calls&order=asc", ["boris", "anna"]), ("sort=result&order=desc", ["boris", "anna"]),
    ("sort=bogus&order=<script>", ["anna", "boris"]),
])
def test_the_team_table_sorts_on_the_server(client, team, query, expected):
    response = page(client, team["olga"], reverse("progress:team") + "?" + query)
    html = response.content.decode()
    assert re.findall(r'<tr data-trainee="(\w+)"', html) == expected
    assert "<script>" not in html


def test_an_admin_sees_every_trainee_or_one_curators_team(client, team):
    html = page(client, team["boss"], reverse("progress:team")).content.decode()
    assert set(re.findall(r'<tr data-trainee="(\w+)"', html)) == {"anna", "boris", "vera"}
    html = page(client, team["boss"], reverse("progress:team") + f"?curator={team['ivan'].pk}").content.decode()
    assert re.findall(r'<tr data-trainee="(\w+)"', html) == ["vera"]


def test_the_pages_in_russian(client, team):
    html = page(client, team["olga"], reverse("progress:trainee", args=[team["anna"].pk]), "ru").content.decode()
    assert "Прогресс: Anna" in html and "Звонки по дням" in html and "Последние оценки" in html
    html = page(client, team["olga"], reverse("progress:team"), "ru").content.decode()
    assert "Прогресс команды" in html and "есть открытый запрос помощи" in html


def test_svg_coordinates_stay_plain_numbers_on_a_russian_page(client, team):
    """Russian writes 12,5; an SVG attribute with it is an error the browser drops the shape for."""
    html = page(client, team["olga"], reverse("progress:trainee", args=[team["anna"].pk]), "ru").content.decode()
    coordinates = re.findall(r'\s(?:x|y|x1|x2|y1|y2|cx|cy|width|height)="([^"]*)"', html)
    assert coordinates and all(re.fullmatch(r"-?\d+(\.\d+)?", value) for value in coordinates), coordinates[:20]
