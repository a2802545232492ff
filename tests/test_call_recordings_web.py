"""A call's recording over HTTP: who may fetch it, byte ranges (200/206/416, If-Range), HEAD,
nginx's X-Accel-Redirect, names that would lead outside the folder; and the retention command."""

import datetime
import io
import wave

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Role, User
from fakepbx.mixmonitor import write_wav
from history.models import CallRecord

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume")]


@pytest.fixture
def root(settings, tmp_path):
    settings.CALL_RECORDINGS_ROOT = str(tmp_path / "mount")
    settings.CALL_RECORDINGS_PBX_DIR = "/var/spool/asterisk/monitor"
    settings.CALL_RECORDINGS_ACCEL_PREFIX = ""
    (tmp_path / "mount").mkdir()
    return tmp_path / "mount"


@pytest.fixture
def people():
    curator = User.objects.create_user("petrova", password=None, role=Role.CURATOR)
    other = User.objects.create_user("smirnov", password=None, role=Role.CURATOR)
    trainee = User.objects.create_user("ivanov", password=None, role=Role.TRAINEE, curator=curator)
    admin = User.objects.create_user("boss", password=None, role=Role.ADMIN)
    return {"curator": curator, "other": other, "trainee": trainee, "admin": admin}


def a_call(person, relative, *, days_ago=0):
    ended = timezone.now() - datetime.timedelta(days=days_ago)
    return CallRecord.objects.create(
        uniqueid="1796097282.161", device="SIP/105", person=person, person_label=str(person), direction="in",
        ring_started_at=ended - datetime.timedelta(seconds=30), answered_at=ended - datetime.timedelta(seconds=25),
        ended_at=ended, recording_file=relative)


@pytest.fixture
def recorded(root, people):
    relative = "2026/12/01/1796097282.161.wav"
    (root / "2026/12/01").mkdir(parents=True)
    write_wav(str(root / relative), 1.5)
    return a_call(people["trainee"], relative), (root / relative).read_bytes()


def body(response):
    return b"".join(response) if response.streaming else response.content


def fetch(client, user, call, **headers):
    client.force_login(user)
    return client.get(f"/history/call/{call.pk}/recording/", headers=headers)


def test_the_whole_file_is_a_valid_wav_with_its_headers(client, people, recorded):
    call, data = recorded
    response = fetch(client, people["trainee"], call)
    assert response.status_code == 200 and body(response) == data
    assert response["Content-Type"] == "audio/wav" and response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(data)) and "private" in response["Cache-Control"]
    assert response["Content-Disposition"] == f'inline; filename="call-{call.pk}.wav"'
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (1, 8000)


@pytest.mark.parametrize("header,first,last", [
    ("bytes=0-", 0, None), ("bytes=100-199", 100, 199), ("bytes=-50", -50, None), ("bytes=44-999999999", 44, None)])
def test_a_range_is_answered_206_with_exactly_those_bytes(client, people, recorded, header, first, last):
    call, data = recorded
    response = fetch(client, people["curator"], call, Range=header)
    assert response.status_code == 206
    part = data[first:] if last is None else data[first:last + 1]
    assert body(response) == part and response["Content-Length"] == str(len(part))
    start = first if first >= 0 else len(data) + first
    assert response["Content-Range"] == f"bytes {start}-{start + len(part) - 1}/{len(data)}"


def test_a_range_past_the_end_is_416_and_odd_ranges_get_the_whole_file(client, people, recorded):
    call, data = recorded
    response = fetch(client, people["admin"], call, Range=f"bytes={len(data)}-")
    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{len(data)}"
    for odd in ("bytes=0-1,5-9", "items=0-5", "bytes=9-3", "nonsense"):
        response = fetch(client, people["admin"], call, Range=odd)
        assert response.status_code == 200 and body(response) == data, odd


def test_if_range_of_an_older_file_gets_the_whole_file(client, people, recorded):
    call, data = recorded
    etag = fetch(client, people["trainee"], call)["ETag"]
    assert fetch(client, people["trainee"], call, Range="bytes=0-9", **{"If-Range": etag}).status_code == 206
    response = fetch(client, people["trainee"], call, Range="bytes=0-9", **{"If-Range": '"older"'})
    assert response.status_code == 200 and body(response) == data


def test_head_says_the_length_without_the_bytes(client, people, recorded):
    call, data = recorded
    client.force_login(people["trainee"])
    response = client.head(f"/history/call/{call.pk}/recording/")
    assert response.status_code == 200 and response["Content-Length"] == str(len(data)) and body(response) == b""


def test_only_people_who_may_see_the_call_get_it(client, people, recorded):
    call, _data = recorded
    assert fetch(client, people["other"], call).status_code == 404  # another curator's trainee
    stranger = User.objects.create_user("sidorov", password=None, role=Role.TRAINEE, curator=people["other"])
    assert fetch(client, stranger, call).status_code == 404
    client.logout()
    assert client.get(f"/history/call/{call.pk}/recording/").status_code == 302  # to the login page
    assert client.post(f"/history/call/{call.pk}/recording/").status_code in (302, 405)


@pytest.mark.parametrize("relative", ["../secret.wav", "/etc/passwd", "2026/../../secret.wav", "link/secret.wav",
                                      "a\\..\\b.wav", ""])
def test_names_that_lead_outside_the_folder_are_never_served(client, people, root, relative):
    (root.parent / "secret.wav").write_bytes(b"RIFF secret")
    (root / "link").symlink_to(root.parent)
    call = a_call(people["trainee"], relative)
    response = fetch(client, people["admin"], call)
    assert response.status_code == 404 and b"secret" not in body(response)


def test_a_file_not_there_yet_is_404_in_words(client, people, root):
    call = a_call(people["trainee"], "2026/12/01/none.wav")
    response = fetch(client, people["trainee"], call)
    assert response.status_code == 404


def test_nginx_sends_the_bytes_when_an_internal_location_is_configured(client, people, recorded, settings):
    settings.CALL_RECORDINGS_ACCEL_PREFIX = "/protected-call-recordings/"
    call, _data = recorded
    response = fetch(client, people["trainee"], call, Range="bytes=0-9")
    assert response.status_code == 200 and body(response) == b""
    assert response["X-Accel-Redirect"] == "/protected-call-recordings/2026/12/01/1796097282.161.wav"
    assert response["Content-Type"] == "audio/wav"
    assert fetch(client, people["other"], call).status_code == 404  # the right is still checked here


def test_prune_deletes_old_recordings_says_which_and_keeps_the_rows(root, people, settings):
    settings.CALL_RECORDING_RETENTION_DAYS = 30
    (root / "old").mkdir()
    write_wav(str(root / "old/1.wav"), 1)
    write_wav(str(root / "new.wav"), 1)
    (root / "not-ours.wav").write_bytes(b"x")
    old = a_call(people["trainee"], "old/1.wav", days_ago=31)
    gone = a_call(people["trainee"], "old/2.wav", days_ago=40)
    new = a_call(people["trainee"], "new.wav", days_ago=29)

    out = io.StringIO()
    call_command("prune_call_recordings", "--dry-run", stdout=out)
    assert "would delete old/1.wav" in out.getvalue() and (root / "old/1.wav").exists()

    out = io.StringIO()
    call_command("prune_call_recordings", stdout=out)
    text = out.getvalue()
    assert f"deleted old/1.wav (call {old.pk}" in text and "already gone: old/2.wav" in text
    assert "1 recording(s) deleted, older than 30 day(s)" in text and "new.wav" not in text
    assert not (root / "old/1.wav").exists() and (root / "new.wav").exists() and (root / "not-ours.wav").exists()
    old.refresh_from_db(), gone.refresh_from_db(), new.refresh_from_db()
    assert (old.recording_file, gone.recording_file, new.recording_file) == ("", "", "new.wav")
    assert CallRecord.objects.count() == 3


def test_prune_with_retention_zero_keeps_everything(root, people, settings):
    settings.CALL_RECORDING_RETENTION_DAYS = 0
    write_wav(str(root / "a.wav"), 1)
    a_call(people["trainee"], "a.wav", days_ago=3650)
    out = io.StringIO()
    call_command("prune_call_recordings", stdout=out)
    assert "kept for ever" in out.getvalue() and (root / "a.wav").exists()
