"""Coaching: immutable evaluations and their corrections, the policy (curators their own trainees,
admins everyone, the permission), the live panel's JSON endpoints, the call section's forms, the
trainee's acknowledgement and the lists."""

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.models import Role, User
from coaching import policy
from coaching.demo import DEMO_SCORECARD, seed_demo_scorecard
from coaching.models import (
    Acknowledgement, CoachingNote, Criterion, Evaluation, EvaluationScore, ImmutableError, Scorecard, format_offset,
    parse_offset,
)

pytestmark = pytest.mark.django_db
CALL = "1764580000.42"


@pytest.fixture
def people(demo_roster):
    return demo_roster.users


@pytest.fixture
def scorecard(demo_roster):
    return demo_roster.scorecard


def all_scores(scorecard, value):
    return {criterion.pk: value for criterion in scorecard.criteria.all()}


def grade(scorecard, trainee, evaluator, value=4, **extra):
    return Evaluation.submit(trainee=trainee, call_uniqueid=CALL, evaluator=evaluator, scorecard=scorecard,
                             scores=all_scores(scorecard, value), **extra)


def post_json(client, name, body):
    return client.post(reverse(name), json.dumps(body), content_type="application/json")


# --- the models ---------------------------------------------------------------------------------


def test_the_demo_scorecard_is_seeded_once_with_a_critical_criterion(demo_roster):
    assert seed_demo_scorecard().pk == demo_roster.scorecard.pk
    assert Scorecard.objects.filter(name=DEMO_SCORECARD).count() == 1
    assert demo_roster.scorecard.owner is None
    assert demo_roster.scorecard.criteria.filter(critical=True).count() == 1


def test_a_submitted_evaluation_keeps_its_result_and_the_scorecard_as_it_was(scorecard, people):
    evaluation = grade(scorecard, people["ivanov"], people["petrova"], value=4)
    assert evaluation.percent == Decimal("80.0") and evaluation.band == "pass" and evaluation.version == 1
    first = scorecard.criteria.first()
    first.name, first.weight = "Renamed", 9
    first.save()
    scorecard.pass_threshold = 90
    scorecard.save()
    evaluation.refresh_from_db()
    assert evaluation.pass_threshold == 70 and evaluation.percent == Decimal("80.0")
    assert evaluation.scores.first().criterion_name == "Greeting" and evaluation.scores.first().weight == 1


def test_a_submitted_evaluation_is_never_changed_or_deleted(scorecard, people):
    evaluation = grade(scorecard, people["ivanov"], people["petrova"])
    evaluation.comment = "changed"
    with pytest.raises(ImmutableError):
        evaluation.save()
    with pytest.raises(ImmutableError):
        evaluation.delete()
    with pytest.raises(ImmutableError):
        Evaluation.objects.filter(pk=evaluation.pk).update(comment="changed")
    with pytest.raises(ImmutableError):
        Evaluation.objects.all().delete()
    score = evaluation.scores.first()
    score.score = 0
    with pytest.raises(ImmutableError):
        score.save()
    with pytest.raises(ImmutableError):
        score.delete()
    assert Evaluation.objects.get(pk=evaluation.pk).comment == ""
    assert EvaluationScore.objects.filter(evaluation=evaluation, score=4).count() == scorecard.criteria.count()


def test_a_correction_is_a_new_version_beside_the_old_one(scorecard, people):
    first = grade(scorecard, people["ivanov"], people["petrova"], value=4)
    second = grade(scorecard, people["ivanov"], people["petrova"], value=5, replaces=first, comment="missed the close")
    assert (second.version, second.replaces_id, second.percent) == (2, first.pk, Decimal("100.0"))
    assert list(Evaluation.objects.of_call(people["ivanov"], CALL).current()) == [second]
    assert Evaluation.objects.of_call(people["ivanov"], CALL).count() == 2
    # Only the newest version is corrected, and only within its own call.
    with pytest.raises(ValidationError):
        grade(scorecard, people["ivanov"], people["petrova"], replaces=first)
    with pytest.raises(ValidationError):
        Evaluation.submit(trainee=people["kuznetsova"], call_uniqueid=CALL, evaluator=people["petrova"],
                          scorecard=scorecard, scores=all_scores(scorecard, 1), replaces=second)


def test_a_critical_criterion_scored_zero_fails_a_stored_grade(scorecard, people):
    scores = all_scores(scorecard, 5)
    scores[scorecard.criteria.get(critical=True).pk] = 0
    evaluation = Evaluation.submit(trainee=people["ivanov"], call_uniqueid=CALL, evaluator=people["petrova"],
                                   scorecard=scorecard, scores=scores)
    assert evaluation.critical_failed and evaluation.band == "fail" and evaluation.percent == Decimal("80.0")


def test_an_acknowledgement_names_exactly_one_thing_once(scorecard, people):
    evaluation = grade(scorecard, people["ivanov"], people["petrova"])
    Acknowledgement.objects.create(trainee=people["ivanov"], evaluation=evaluation)
    with pytest.raises(IntegrityError), transaction.atomic():
        Acknowledgement.objects.create(trainee=people["ivanov"], evaluation=evaluation)
    with pytest.raises(IntegrityError), transaction.atomic():
        Acknowledgement.objects.create(trainee=people["ivanov"])


def test_scorecard_settings_are_validated(people):
    with pytest.raises(ValidationError):
        Scorecard(name="x", pass_threshold=90, good_threshold=80).full_clean()
    with pytest.raises(ValidationError):
        Scorecard(name="x", scale_max=0).full_clean()
    with pytest.raises(ValidationError):
        Scorecard(name="x", owner=people["ivanov"]).full_clean()


@pytest.mark.parametrize("text, seconds", [("42", 42), ("0:42", 42), ("12:05", 725), ("1:02:03", 3723)])
def test_offsets_read_and_written(text, seconds):
    assert parse_offset(text) == seconds
    assert format_offset(seconds) == (text if ":" in text else "0:42")


@pytest.mark.parametrize("text", ["", "a", "1:60", "-1", "1::2", "１:00", "1:2:3:4"])
def test_bad_offsets_are_refused(text):
    with pytest.raises(ValueError):
        parse_offset(text)


# --- the policy ---------------------------------------------------------------------------------


def test_curators_grade_their_own_trainees_admins_everyone(people):
    assert policy.may_evaluate(people["petrova"], people["ivanov"])
    assert policy.may_evaluate(people["admin"], people["popova"])
    assert policy.may_evaluate(people["petrova"], people["popova"]).reason == "not_your_team"
    assert policy.may_evaluate(people["ivanov"], people["kuznetsova"]).reason == "not_your_team"
    assert policy.may_evaluate(people["petrova"], people["smirnov"]).reason == "not_a_trainee"
    assert policy.may_evaluate(people["petrova"], people["petrova"]).reason == "own_call"
    assert policy.may_evaluate(people["petrova"], 999999).reason == "not_found"


def test_the_permission_is_needed_and_read_fresh(people):
    assert policy.may_evaluate(people["petrova"], people["ivanov"])
    Group.objects.get(name="Curators").permissions.remove(
        Permission.objects.get(content_type__app_label="supervision", codename="evaluate"))
    assert policy.may_evaluate(people["petrova"], people["ivanov"]).reason == "no_permission"
    assert not policy.may_manage_scorecard(people["petrova"])


def test_a_reassigned_trainee_is_graded_by_his_new_curator_only(people):
    ivanov = people["ivanov"]
    ivanov.curator = people["smirnov"]
    ivanov.save()
    assert not policy.may_evaluate(people["petrova"], ivanov.pk)
    assert policy.may_evaluate(people["smirnov"], ivanov.pk)


def test_who_reads_and_who_acknowledges(scorecard, people):
    assert policy.may_view(people["ivanov"], people["ivanov"])
    assert policy.may_view(people["petrova"], people["ivanov"])
    assert policy.may_view(people["admin"], people["ivanov"])
    assert not policy.may_view(people["smirnov"], people["ivanov"])
    assert not policy.may_view(people["kuznetsova"], people["ivanov"])
    evaluation = grade(scorecard, people["ivanov"], people["petrova"])
    assert policy.may_acknowledge(people["ivanov"], evaluation)
    assert not policy.may_acknowledge(people["petrova"], evaluation)
    assert not policy.may_acknowledge(people["kuznetsova"], evaluation)


def test_scorecards_are_kept_by_their_owner_or_an_admin(people):
    own = Scorecard.objects.create(name="Anna's", owner=people["petrova"])
    assert policy.may_manage_scorecard(people["petrova"], own)
    assert not policy.may_manage_scorecard(people["smirnov"], own)
    assert policy.may_manage_scorecard(people["admin"], own)
    assert not policy.may_manage_scorecard(people["petrova"], Scorecard.objects.get(name=DEMO_SCORECARD))
    assert not policy.may_manage_scorecard(people["ivanov"])
    Criterion.objects.create(scorecard=own, name="x")
    assert set(Scorecard.objects.usable_by(people["smirnov"])) == {Scorecard.objects.get(name=DEMO_SCORECARD)}
    assert own in Scorecard.objects.usable_by(people["petrova"])


# --- the live panel's endpoints -------------------------------------------------------------------


def test_a_curator_grades_live_and_notes_a_moment(client, scorecard, people):
    client.force_login(people["petrova"])
    cards = client.get(reverse("coaching:api_scorecards")).json()["scorecards"]
    assert [card["name"] for card in cards] == [DEMO_SCORECARD]
    scores = {str(c["id"]): 4 for c in cards[0]["criteria"]}
    answer = post_json(client, "coaching:api_evaluate", {
        "trainee": people["ivanov"].pk, "call": CALL, "scorecard": scorecard.pk, "scores": scores,
        "comment": "Good pace", "live": True})
    assert answer.status_code == 201, answer.content
    body = answer.json()["evaluation"]
    assert (body["percent"], body["band"], body["version"]) == ("80.0", "pass", 1)
    answer = post_json(client, "coaching:api_note", {
        "trainee": people["ivanov"].pk, "call": CALL, "offset": 42, "text": "ask for the contract number first"})
    assert answer.status_code == 201 and answer.json()["note"]["offset_label"] == "0:42"
    known = client.get(reverse("coaching:api_call"), {"trainee": people["ivanov"].pk, "call": CALL}).json()
    assert known["can_grade"] and known["current"] == body["id"]
    assert [n["text"] for n in known["notes"]] == ["ask for the contract number first"]
    evaluation = Evaluation.objects.get()
    assert evaluation.live and evaluation.evaluator == people["petrova"] and evaluation.comment == "Good pace"
    assert CoachingNote.objects.get().offset_seconds == 42


def test_a_correction_through_the_endpoint_and_a_stale_one_refused(client, scorecard, people):
    client.force_login(people["petrova"])
    first = grade(scorecard, people["ivanov"], people["petrova"])
    body = {"trainee": people["ivanov"].pk, "call": CALL, "scorecard": scorecard.pk,
            "scores": {str(k): 5 for k in all_scores(scorecard, 5)}, "replaces": first.pk}
    answer = post_json(client, "coaching:api_evaluate", body)
    assert answer.status_code == 201 and answer.json()["evaluation"]["version"] == 2
    again = post_json(client, "coaching:api_evaluate", body)
    assert again.status_code == 400 and "newest" in again.json()["message"]
    assert Evaluation.objects.count() == 2


@pytest.mark.parametrize("who, trainee, status, code", [
    ("smirnov", "ivanov", 403, "not_your_team"),
    ("ivanov", "ivanov", 403, "own_call"),
    ("kuznetsova", "ivanov", 403, "not_your_team"),
    ("petrova", "smirnov", 403, "not_a_trainee"),
])
def test_the_server_refuses_who_may_not_grade(client, scorecard, people, who, trainee, status, code):
    client.force_login(people[who])
    answer = post_json(client, "coaching:api_evaluate", {
        "trainee": people[trainee].pk, "call": CALL, "scorecard": scorecard.pk,
        "scores": {str(k): 5 for k in all_scores(scorecard, 5)}})
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    answer = post_json(client, "coaching:api_note", {"trainee": people[trainee].pk, "call": CALL, "offset": 1, "text": "x"})
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert not Evaluation.objects.exists() and not CoachingNote.objects.exists()


@pytest.mark.parametrize("change, code", [
    ({"call": "1; DROP"}, "bad_call"),
    ({"call": ""}, "bad_call"),
    ({"scorecard": 999999}, "no_scorecard"),
    ({"scorecard": "x"}, "no_scorecard"),
    ({"scores": {}}, "missing_score"),
    ({"scores": "5"}, "missing_score"),
    ({"score_value": 6}, "out_of_scale"),
    ({"score_value": "2.5"}, "out_of_scale"),
    ({"trainee": "x"}, "not_found"),
    ({"comment": ["x"]}, "bad_text"),
    ({"comment": "x" * 2001}, "too_long"),
])
def test_bad_input_gets_a_sentence_and_saves_nothing(client, scorecard, people, change, code):
    client.force_login(people["petrova"])
    body = {"trainee": people["ivanov"].pk, "call": CALL, "scorecard": scorecard.pk,
            "scores": {str(k): 5 for k in all_scores(scorecard, 5)}}
    if "score_value" in change:
        body["scores"] = {str(k): change.pop("score_value") if i == 0 else 5
                          for i, k in enumerate(all_scores(scorecard, 5))}
    body.update(change)
    answer = post_json(client, "coaching:api_evaluate", body)
    assert answer.status_code in (400, 403, 404)
    assert answer.json()["code"] == code and answer.json()["message"]
    assert not Evaluation.objects.exists()


def test_another_curators_own_scorecard_cannot_be_used(client, people):
    theirs = Scorecard.objects.create(name="Igor's", owner=people["smirnov"])
    criterion = Criterion.objects.create(scorecard=theirs, name="x")
    client.force_login(people["petrova"])
    answer = post_json(client, "coaching:api_evaluate", {
        "trainee": people["ivanov"].pk, "call": CALL, "scorecard": theirs.pk, "scores": {str(criterion.pk): 1}})
    assert answer.json()["code"] == "no_scorecard"


@pytest.mark.parametrize("body", [
    {"offset": -1, "text": "x"}, {"offset": "0:61", "text": "x"}, {"offset": 90000, "text": "x"},
    {"offset": 5, "text": "  "}, {"offset": "x", "text": "y"},
])
def test_a_bad_note_is_refused(client, people, body):
    client.force_login(people["petrova"])
    answer = post_json(client, "coaching:api_note", {"trainee": people["ivanov"].pk, "call": CALL, **body})
    assert answer.status_code == 400 and answer.json()["message"]
    assert not CoachingNote.objects.exists()


def test_endpoints_need_a_login_and_a_csrf_token(scorecard, people):
    from django.test import Client

    anonymous = Client()
    assert anonymous.get(reverse("coaching:api_scorecards")).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(people["petrova"])
    answer = post_json(strict, "coaching:api_note", {"trainee": people["ivanov"].pk, "call": CALL, "offset": 1, "text": "x"})
    assert answer.status_code == 403 and not CoachingNote.objects.exists()


def test_a_trainee_reads_only_his_own_calls(client, scorecard, people):
    grade(scorecard, people["ivanov"], people["petrova"])
    client.force_login(people["kuznetsova"])
    assert client.get(reverse("coaching:api_call"), {"trainee": people["ivanov"].pk, "call": CALL}).status_code == 403
    assert client.get(reverse("coaching:call", args=[people["ivanov"].pk, CALL])).status_code == 403
    assert client.get(reverse("coaching:api_scorecards")).status_code == 403


# --- the call section, the acknowledgement, the lists ---------------------------------------------


def test_the_call_page_grades_corrects_and_shows_both_versions(client, scorecard, people):
    client.force_login(people["petrova"])
    url = reverse("coaching:call", args=[people["ivanov"].pk, CALL])
    page = client.get(url).content.decode()
    assert "Grade with “Inbound call quality”" in page
    form = {f"score_{k}": "3" for k in all_scores(scorecard, 3)} | {"scorecard": scorecard.pk, "comment": "ok", "next": url}
    answer = client.post(reverse("coaching:evaluate", args=[people["ivanov"].pk, CALL]), form)
    assert answer.status_code == 302 and answer["Location"] == url
    first = Evaluation.objects.get()
    form.update({f"score_{k}": "5" for k in all_scores(scorecard, 5)}, replaces=first.pk)
    client.post(reverse("coaching:evaluate", args=[people["ivanov"].pk, CALL]), form)
    page = client.get(url).content.decode()
    assert 'data-version="2" data-current="true"' in page and 'data-version="1" data-current="false"' in page
    assert "corrects version 1" in page and "replaced by a correction" in page
    assert "Correct this grade" in page


def test_a_refused_form_keeps_what_was_typed(client, scorecard, people):
    client.force_login(people["petrova"])
    url = reverse("coaching:call", args=[people["ivanov"].pk, CALL])
    scores = {f"score_{k}": "4" for k in list(all_scores(scorecard, 4))[:-1]}  # the last one left out
    answer = client.post(reverse("coaching:evaluate", args=[people["ivanov"].pk, CALL]),
                         {**scores, "scorecard": scorecard.pk, "comment": "keep me", "next": url}, follow=True)
    page = answer.content.decode()
    assert "Score “Closing”." in page and "keep me" in page and 'value="4" required checked' in page
    assert not Evaluation.objects.exists()


def test_a_trainee_acknowledges_each_evaluation_and_note_once(client, scorecard, people):
    evaluation = grade(scorecard, people["ivanov"], people["petrova"])
    note = CoachingNote.objects.create(trainee=people["ivanov"], call_uniqueid=CALL, author=people["petrova"],
                                       author_label="Anna Petrova", offset_seconds=42, text="contract number first")
    client.force_login(people["petrova"])
    assert client.post(reverse("coaching:acknowledge", args=["evaluation", evaluation.pk])).status_code == 403
    index = client.get(reverse("coaching:index"), {"show": "unacknowledged"}).content.decode()
    assert "Dmitry Ivanov" in index and "1 grade not yet acknowledged" in index

    client.force_login(people["ivanov"])
    page = client.get(reverse("coaching:call", args=[people["ivanov"].pk, CALL])).content.decode()
    assert page.count('class="ack-form"') == 2 and "Correct this grade" not in page
    assert "My evaluations <span class=\"count\"" in page
    client.post(reverse("coaching:acknowledge", args=["evaluation", evaluation.pk]),
                {"comment": "Will do", "disputed": "1"})
    client.post(reverse("coaching:acknowledge", args=["note", note.pk]), {})
    answer = client.post(reverse("coaching:acknowledge", args=["note", note.pk]), {}, follow=True)
    assert "already acknowledged" in answer.content.decode()
    ack = Acknowledgement.objects.get(evaluation=evaluation)
    assert ack.disputed and ack.comment == "Will do" and ack.trainee == people["ivanov"]
    assert Acknowledgement.objects.filter(note=note).count() == 1

    client.force_login(people["petrova"])
    index = client.get(reverse("coaching:index"), {"show": "unacknowledged"}).content.decode()
    assert "No evaluations match." in index
    page = client.get(reverse("coaching:call", args=[people["ivanov"].pk, CALL])).content.decode()
    assert "Disputed by the trainee" in page and "Will do" in page


def test_another_trainee_cannot_acknowledge(client, scorecard, people):
    evaluation = grade(scorecard, people["ivanov"], people["petrova"])
    client.force_login(people["kuznetsova"])
    assert client.post(reverse("coaching:acknowledge", args=["evaluation", evaluation.pk])).status_code == 403
    assert client.post(reverse("coaching:acknowledge", args=["other", evaluation.pk])).status_code == 404
    assert not Acknowledgement.objects.exists()


def test_the_trainees_list_shows_his_own_only(client, scorecard, people):
    grade(scorecard, people["ivanov"], people["petrova"])
    Evaluation.submit(trainee=people["kuznetsova"], call_uniqueid="1.2", evaluator=people["petrova"],
                      scorecard=scorecard, scores=all_scores(scorecard, 1))
    client.force_login(people["ivanov"])
    page = client.get(reverse("coaching:index")).content.decode()
    assert page.count('<tr data-band=') == 1 and "Read and acknowledge" in page
    assert 'name="trainee"' not in page  # no choice of trainee for a trainee


def test_a_curator_keeps_his_own_scorecards_on_the_page(client, people):
    client.force_login(people["petrova"])
    form = {
        "name": "Outbound sales", "description": "", "scale_max": "10", "pass_threshold": "60",
        "good_threshold": "80", "active": "on",
        "criteria-TOTAL_FORMS": "2", "criteria-INITIAL_FORMS": "0", "criteria-MIN_NUM_FORMS": "0",
        "criteria-MAX_NUM_FORMS": "1000",
        "criteria-0-name": "Opening", "criteria-0-weight": "2", "criteria-0-position": "0",
        "criteria-0-critical": "on",
        "criteria-1-name": "", "criteria-1-weight": "1", "criteria-1-position": "1",
    }
    answer = client.post(reverse("coaching:scorecard_new"), form)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    created = Scorecard.objects.get(name="Outbound sales")
    assert created.owner == people["petrova"] and created.criteria.get().critical
    client.force_login(people["smirnov"])
    assert client.get(reverse("coaching:scorecard_edit", args=[created.pk])).status_code == 403
    client.force_login(people["ivanov"])
    assert client.get(reverse("coaching:scorecards")).status_code == 403


def test_a_scorecard_without_criteria_is_refused_on_the_page(client, people):
    client.force_login(people["petrova"])
    form = {"name": "Empty", "scale_max": "5", "pass_threshold": "60", "good_threshold": "80",
            "criteria-TOTAL_FORMS": "1", "criteria-INITIAL_FORMS": "0", "criteria-MIN_NUM_FORMS": "0",
            "criteria-MAX_NUM_FORMS": "1000", "criteria-0-name": "", "criteria-0-weight": "1",
            "criteria-0-position": "0"}
    answer = client.post(reverse("coaching:scorecard_new"), form)
    assert answer.status_code == 200 and "at least one criterion" in answer.content.decode()
    assert not Scorecard.objects.filter(name="Empty").exists()


def test_admins_edit_scorecards_in_the_django_admin_with_criteria_inline(client, people, scorecard):
    client.force_login(people["admin"])
    page = client.get(reverse("admin:coaching_scorecard_change", args=[scorecard.pk])).content.decode()
    assert "Verifies the customer" in page and "criteria-TOTAL_FORMS" in page
    assert client.get(reverse("admin:coaching_evaluation_changelist")).status_code == 200


def test_unassigned_roles_never_reach_the_grading_form(client, people, scorecard):
    user = User.objects.create_user("aux", role=Role.CURATOR)
    client.force_login(user)
    page = client.get(reverse("coaching:call", args=[people["ivanov"].pk, CALL]))
    assert page.status_code == 403


# --- the call history's call page -----------------------------------------------------------------


def history_call(trainee, uniqueid=CALL):
    from django.utils import timezone

    from history.models import CallRecord

    now = timezone.now()
    return CallRecord.objects.create(uniqueid=uniqueid, person=trainee, person_label=str(trainee), direction="in",
                                     ring_started_at=now, answered_at=now, ended_at=now, talk_seconds=60)


def test_the_history_call_page_carries_the_coaching_section_and_grades_there(client, scorecard, people):
    record = history_call(people["ivanov"])
    url = reverse("history:call", args=[record.pk])
    client.force_login(people["petrova"])
    page = client.get(url).content.decode()
    assert 'id="coaching"' in page and "Grade with “Inbound call quality”" in page
    form = {f"score_{k}": "5" for k in all_scores(scorecard, 5)} | {"scorecard": scorecard.pk, "next": url}
    answer = client.post(reverse("coaching:evaluate", args=[people["ivanov"].pk, CALL]), form)
    assert answer["Location"] == url
    client.post(reverse("coaching:note", args=[people["ivanov"].pk, CALL]), {"offset": "1:05", "text": "Nice close", "next": url})
    assert CoachingNote.objects.get().offset_seconds == 65
    # Lists and the live panel link to the history's page once the call is there.
    client.force_login(people["ivanov"])
    index = client.get(reverse("coaching:index")).content.decode()
    assert f'href="{url}"' in index
    page = client.get(url).content.decode()
    assert "100.0%" in page and "1:05" in page and 'class="ack-form"' in page
    # The history's own "evaluated" filter finds it.
    client.force_login(people["petrova"])
    listed = client.get(reverse("history:list"), {"evaluated": "yes"}).content.decode()
    assert f'href="{url}"' in listed or f"/history/call/{record.pk}/" in listed


def test_a_note_from_the_history_page_with_a_bad_moment_keeps_the_text(client, people):
    record = history_call(people["ivanov"])
    url = reverse("history:call", args=[record.pk])
    client.force_login(people["petrova"])
    answer = client.post(reverse("coaching:note", args=[people["ivanov"].pk, CALL]),
                         {"offset": "1:75", "text": "Keep this text", "next": url}, follow=True)
    page = answer.content.decode()
    assert "Give the moment as m:ss" in page and "Keep this text" in page and 'value="1:75"' in page
    assert not CoachingNote.objects.exists()


def test_the_coaching_call_page_sends_to_the_history_once_the_call_is_there(client, people):
    client.force_login(people["petrova"])
    url = reverse("coaching:call", args=[people["ivanov"].pk, CALL])
    assert client.get(url).status_code == 200
    record = history_call(people["ivanov"])
    answer = client.get(url)
    assert answer.status_code == 302 and answer["Location"] == reverse("history:call", args=[record.pk])


def test_a_corrected_grade_is_not_acknowledged_the_newest_is(client, scorecard, people):
    first = grade(scorecard, people["ivanov"], people["petrova"])
    second = grade(scorecard, people["ivanov"], people["petrova"], value=5, replaces=first)
    client.force_login(people["ivanov"])
    answer = client.post(reverse("coaching:acknowledge", args=["evaluation", first.pk]), follow=True)
    assert "acknowledge the newest version" in answer.content.decode()
    assert not Acknowledgement.objects.exists()
    client.post(reverse("coaching:acknowledge", args=["evaluation", second.pk]))
    assert Acknowledgement.objects.get().evaluation == second


def test_the_live_panel_is_offered_to_graders_only_and_only_on_their_trainees(client, people):
    client.force_login(people["petrova"])
    assert 'id="coaching-config"' in client.get(reverse("dashboard")).content.decode()
    client.force_login(people["ivanov"])
    assert 'id="coaching-config"' not in client.get(reverse("dashboard")).content.decode()
    # An admin listening to a curator reads the call's coaching but is not offered to grade it.
    client.force_login(people["admin"])
    known = client.get(reverse("coaching:api_call"), {"trainee": people["petrova"].pk, "call": CALL}).json()
    assert known["ok"] and known["can_grade"] is False
    known = client.get(reverse("coaching:api_call"), {"trainee": people["ivanov"].pk, "call": CALL}).json()
    assert known["can_grade"] is True


def test_a_call_has_one_line_of_versions(client, scorecard, people):
    grade(scorecard, people["ivanov"], people["petrova"])
    with pytest.raises(ValidationError):
        grade(scorecard, people["ivanov"], people["admin"])  # a second first grade: correct instead
    client.force_login(people["admin"])
    answer = post_json(client, "coaching:api_evaluate", {
        "trainee": people["ivanov"].pk, "call": CALL, "scorecard": scorecard.pk,
        "scores": {str(k): 5 for k in all_scores(scorecard, 5)}})
    assert answer.status_code == 400 and "graded already" in answer.json()["message"]
    # What two grades submitted at the same moment would meet: the database keeps one per version.
    with pytest.raises(IntegrityError), transaction.atomic():
        Evaluation(trainee=people["ivanov"], call_uniqueid=CALL, evaluator_label="x", scorecard_name="x",
                   scale_max=5, pass_threshold=1, good_threshold=2, percent=1, band="fail", version=1).save()
    assert Evaluation.objects.count() == 1


def test_deleting_a_scorecard_or_a_graders_account_keeps_the_grades_as_given(scorecard, people):
    grader = User.objects.create_user("grader", role=Role.CURATOR, first_name="Vera", last_name="Grey")
    evaluation = grade(scorecard, people["ivanov"], grader)
    Scorecard.objects.filter(pk=scorecard.pk).delete()
    grader.delete()
    evaluation = Evaluation.objects.get(pk=evaluation.pk)
    assert evaluation.scorecard_id is None and evaluation.evaluator_id is None
    assert (evaluation.scorecard_name, evaluation.evaluator_label, evaluation.percent) == (
        DEMO_SCORECARD, "Vera Grey", Decimal("80.0"))
    assert evaluation.scores.count() == 6 and all(s.criterion_id is None for s in evaluation.scores.all())
    with pytest.raises(ImmutableError):
        Evaluation.objects.update(evaluator=people["admin"])
