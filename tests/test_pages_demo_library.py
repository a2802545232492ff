"""The demo library's recording: seeded with the demo roster, playable by every demo trainee, and
known to the simulated PBX, which plays it for its length (the browser side is in
tests/test_pages_browser.py)."""

import pytest

from accounts.demo import DEMO_RECORDING_FILE, seed_demo_roster
from fakepbx.engine import SOUND_SECONDS, Switch
from supervision.models import Recording, Sharing

pytestmark = pytest.mark.django_db


def test_the_demo_roster_brings_a_recording_every_trainee_may_play(demo_roster, settings):
    recording = demo_roster.recording
    assert recording.path == f"{settings.RECORDINGS_ROOT}/{DEMO_RECORDING_FILE}"
    assert recording.owner.username == "petrova" and recording.sharing == Sharing.EVERYONE
    recording.full_clean()
    assert all(recording.playable_by(trainee) for trainee in demo_roster.trainees)


def test_seeding_again_keeps_one_recording_and_an_admins_changes(demo_roster):
    Recording.objects.filter(pk=demo_roster.recording.pk).update(title="Opening a call", sharing=Sharing.TRAINEES)
    again = seed_demo_roster()
    assert Recording.objects.count() == 1
    assert (again.recording.pk, again.recording.title, again.recording.sharing) == (
        demo_roster.recording.pk, "Opening a call", Sharing.TRAINEES)


def test_the_simulator_plays_the_demo_file_for_its_length_and_others_for_the_default():
    switch = Switch(lambda event: None, playback_seconds=3.0)
    assert switch.sound_seconds(f"/var/lib/asterisk/sounds/training/{DEMO_RECORDING_FILE}") == SOUND_SECONDS[DEMO_RECORDING_FILE]
    assert SOUND_SECONDS[DEMO_RECORDING_FILE] > 3.0
    assert switch.sound_seconds("/var/lib/asterisk/sounds/training/lesson-1") == 3.0
