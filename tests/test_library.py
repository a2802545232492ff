"""The training library: recording paths validated at the model (root, `..`, characters), sharing
(private / my trainees / everyone), the library page and its form, and "Play to my phone" on the
simulated PBX over TCP (exact Originate, outcome in words, audit rows, refusals)."""

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import reverse

from accounts.models import Role, User
from supervision.models import MonitoringSession, Recording, Sharing
from tests.live_stack import (  # noqa: F401
    AUTOANSWER,
    Statuses,
    _roster,
    bridge,
    originates,
    press,
    raw_originate,
    roster,
    rows,
    take_permission,
)

ROOT = "/var/lib/asterisk/sounds/training"


def recording(owner, path=f"{ROOT}/lesson-1", sharing=Sharing.TRAINEES, title="Lesson 1"):
    item = Recording(title=title, path=path, owner=owner, sharing=sharing)
    item.full_clean()
    item.save()
    return item


# --- the path, at the model -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", [f"{ROOT}/lesson-1", f"{ROOT}/2024/angry_customer", f"{ROOT}/a"])
def test_a_plain_path_under_the_root_is_accepted(path):
    curator = User.objects.create_user(username="c", role=Role.CURATOR)
    assert recording(curator, path).path == path


@pytest.mark.django_db
@pytest.mark.parametrize("path, code", [
    ("/etc/passwd", "outside_root"),  # outside the root
    ("/var/lib/asterisk/sounds/other/lesson", "outside_root"),
    ("/var/lib/asterisk/sounds/trainingX/lesson", "outside_root"),  # a sibling that shares the prefix
    (ROOT, "outside_root"),  # the root itself is not a file
    (f"{ROOT}/", "outside_root"),
    (f"{ROOT}//lesson", "outside_root"),
    ("lesson-1", "outside_root"),  # relative
    (f"{ROOT}/../../../../etc/passwd", "parent"),  # with ..
    (f"{ROOT}/lessons/..", "parent"),
    (f"{ROOT}/lesson-1.wav", "chars"),  # an extension (Playback adds it)
    (f"{ROOT}/lesson 1", "chars"),  # characters outside the strict set
    (f"{ROOT}/lesson,1", "chars"),
    (f"{ROOT}/lesson|1", "chars"),
    (f"{ROOT}/lesson\r\nAction: Hangup", "chars"),
    (f"{ROOT}/урок", "chars"),
    (f"{ROOT}/lesson;1", "chars"),
    (f"{ROOT}/lesson(1)", "chars"),
])
def test_a_path_outside_the_root_or_with_dotdot_or_odd_characters_is_refused(path, code):
    curator = User.objects.create_user(username="c", role=Role.CURATOR)
    with pytest.raises(ValidationError) as refused:
        recording(curator, path)
    [error] = refused.value.error_dict["path"]
    assert error.code == code
    assert not Recording.objects.exists()


@pytest.mark.django_db
@override_settings(RECORDINGS_ROOT="/srv/sounds/")
def test_the_root_comes_from_the_settings():
    curator = User.objects.create_user(username="c", role=Role.CURATOR)
    assert recording(curator, "/srv/sounds/lesson").path == "/srv/sounds/lesson"
    with pytest.raises(ValidationError):
        recording(curator, f"{ROOT}/lesson-1")


@pytest.mark.django_db
def test_only_curators_and_admins_own_recordings():
    curator = User.objects.create_user(username="c", role=Role.CURATOR)
    trainee = User.objects.create_user(username="t", role=Role.TRAINEE, curator=curator)
    with pytest.raises(ValidationError) as refused:
        recording(trainee)
    assert "owner" in refused.value.error_dict


# --- sharing ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_who_may_play_what():
    people, _phones = _roster()
    petrova, smirnov, anna, vera = people["petrova"], people["smirnov"], people["anna"], people["vera"]
    admin = User.objects.create_user(username="boss", role=Role.ADMIN)
    private = recording(petrova, f"{ROOT}/private", Sharing.PRIVATE, "Private")
    trainees = recording(petrova, f"{ROOT}/trainees", Sharing.TRAINEES, "For my trainees")
    everyone = recording(smirnov, f"{ROOT}/everyone", Sharing.EVERYONE, "For everyone")

    def titles(user):
        return {r.title for r in Recording.objects.playable_by(user)}

    assert titles(petrova) == {"Private", "For my trainees", "For everyone"}
    assert titles(anna) == {"For my trainees", "For everyone"}  # petrova's trainee
    assert titles(vera) == {"For everyone"}  # smirnov's trainee
    assert titles(smirnov) == {"For everyone"}
    assert titles(admin) == {"Private", "For my trainees", "For everyone"}
    assert private.playable_by(petrova) and not private.playable_by(anna)
    assert trainees.playable_by(anna) and not trainees.playable_by(vera)
    assert everyone.playable_by(vera)
    anna.is_active = False
    anna.save()
    assert titles(anna) == set()


# --- the page ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_trainees_library_lists_what_he_may_play(client):
    people, _phones = _roster()
    recording(people["petrova"], f"{ROOT}/mine", Sharing.TRAINEES, "Handling objections")
    recording(people["petrova"], f"{ROOT}/private", Sharing.PRIVATE, "Petrova's notes")
    recording(people["smirnov"], f"{ROOT}/other", Sharing.TRAINEES, "Smirnov's lesson")
    client.force_login(people["anna"])

    page = client.get(reverse("library")).content.decode()

    assert "Handling objections" in page and "Play to my phone" in page
    assert "Petrova's notes" not in page and "Smirnov's lesson" not in page
    assert "Add a recording" not in page


@pytest.mark.django_db
def test_a_trainee_cannot_add_a_recording(client):
    people, _phones = _roster()
    client.force_login(people["anna"])

    response = client.post(reverse("library"), {"title": "Mine", "path": f"{ROOT}/x", "sharing": "everyone"})

    assert response.status_code == 403
    assert not Recording.objects.exists()


@pytest.mark.django_db
def test_a_curator_adds_a_recording_and_shares_it_with_his_trainees(client):
    people, _phones = _roster()
    client.force_login(people["petrova"])

    response = client.post(reverse("library"), {
        "title": "Closing a sale", "description": "A good close", "path": f"{ROOT}/closing", "sharing": "trainees"})

    assert response.status_code == 302
    added = Recording.objects.get()
    assert (added.title, added.owner, added.sharing, added.path) == (
        "Closing a sale", people["petrova"], "trainees", f"{ROOT}/closing")
    client.force_login(people["anna"])
    assert "Closing a sale" in client.get(reverse("library")).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path, words", [
    ("/etc/passwd", f"The file must be under {ROOT}/"),
    (f"{ROOT}/../secret", "“..” is not allowed"),
    (f"{ROOT}/a b.wav", "Only letters, digits, _ - and / are allowed"),
])
def test_the_form_says_why_a_path_is_refused(client, path, words):
    people, _phones = _roster()
    client.force_login(people["petrova"])

    response = client.post(reverse("library"), {"title": "Bad", "path": path, "sharing": "everyone"})

    assert response.status_code == 200
    assert words in response.content.decode()
    assert not Recording.objects.exists()


@pytest.mark.django_db
def test_the_admin_adds_recordings_with_the_same_validation(admin_client):
    curator = User.objects.create_user(username="c", role=Role.CURATOR)
    url = reverse("admin:supervision_recording_add")

    refused = admin_client.post(url, {"title": "x", "path": f"{ROOT}/../x", "owner": curator.pk, "sharing": "private"})
    added = admin_client.post(url, {"title": "x", "path": f"{ROOT}/x", "owner": curator.pk, "sharing": "private"})

    assert refused.status_code == 200 and "is not allowed" in refused.content.decode()
    assert added.status_code == 302 and Recording.objects.get().path == f"{ROOT}/x"


# --- play to my phone, over TCP -------------------------------------------------------------------

@sync_to_async
def shared(owner, path=f"{ROOT}/lesson-1", sharing=Sharing.TRAINEES, title="Lesson 1"):
    return recording(owner, path, sharing, title)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_trainee_plays_a_shared_recording_to_his_phone(fakepbx, bridge, roster):
    people, _phones = roster
    anna = people["anna"]
    lesson = await shared(people["petrova"])
    inbox = await Statuses(bridge.layer, anna.pk).open()

    await press(bridge, anna, {"type": "playback", "recording": str(lesson.pk)})
    playing = await inbox.next(state="answered")

    [originate] = originates(fakepbx)
    assert raw_originate(fakepbx) == [(
        f"Action: Originate\r\nActionID: {originate['ActionID']}\r\nChannel: SIP/105\r\nApplication: Playback\r\n"
        f"Data: {ROOT}/lesson-1\r\nCallerID: Playback\r\nAsync: true\r\n{AUTOANSWER}\r\n"
    ).encode()]
    assert playing["text"] == "Playing “Lesson 1” on your phone." and playing["recording"] == lesson.pk
    finished = await inbox.next(state="ended")  # the channel hangs up by itself when playback ends
    assert finished["text"] == "Finished playing “Lesson 1”."
    assert inbox.states() == ["queued", "answered", "ended"]
    [row] = await rows(kind="playback")
    assert (row["outcome"], row["target_label"], row["target_channel"], row["from_device"], row["user_id"]) == (
        "ended", "Lesson 1", f"{ROOT}/lesson-1", "SIP/105", anna.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_recording_not_shared_with_you_is_refused(fakepbx, bridge, roster):
    people, _phones = roster
    notes = await shared(people["petrova"], sharing=Sharing.PRIVATE, title="Petrova's notes")
    other = await shared(people["smirnov"], path=f"{ROOT}/other", title="Smirnov's lesson")
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "playback", "recording": str(notes.pk)})
    first = await inbox.next(state="denied")
    await press(bridge, people["anna"], {"type": "playback", "recording": str(other.pk)})
    second = await inbox.next(state="denied")

    # The same words (and reason) as for an id that does not exist: a private title is never named,
    # neither on the page nor in the presser's own audit rows.
    await press(bridge, people["anna"], {"type": "playback", "recording": str(other.pk + 1000)})
    unknown = await inbox.next(state="denied")
    refused = ("not_found", "That recording does not exist or is not shared with you.")
    assert (first["reason"], first["text"]) == (second["reason"], second["text"]) == (unknown["reason"], unknown["text"]) == refused
    assert originates(fakepbx) == []
    playback_rows = await rows(kind="playback")
    assert [(r["outcome"], r["reason"], r["target_label"], r["target_channel"]) for r in playback_rows] == [
        ("denied", "not_found", "", "")] * 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_path_outside_the_root_never_reaches_ami(fakepbx, bridge, roster):
    """A row written around the model's validation, or a root moved since: the builder refuses."""
    people, _phones = roster
    lesson = await shared(people["petrova"])
    await sync_to_async(Recording.objects.filter(pk=lesson.pk).update)(path="/etc/passwd")
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "playback", "recording": str(lesson.pk)})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "bad_path"
    assert originates(fakepbx) == []
    [row] = await rows(kind="playback")
    assert (row["outcome"], row["reason"]) == ("denied", "bad_path")


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", ["abc", "0", "-1", "999999", "1e3"])
async def test_an_unknown_recording_is_refused(fakepbx, bridge, roster, value):
    people, _phones = roster
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "playback", "recording": value})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "not_found"
    assert originates(fakepbx) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_without_the_playback_permission_nothing_is_sent(fakepbx, bridge, roster):
    people, _phones = roster
    lesson = await shared(people["petrova"])
    await take_permission("trainee", "playback")
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "playback", "recording": str(lesson.pk)})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "no_permission"
    assert originates(fakepbx) == []
    assert await sync_to_async(MonitoringSession.objects.filter(kind="playback", outcome="denied").count)() == 1
