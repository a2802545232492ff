"""The demo roster that `make run` and the tests start from.

Scheme (also in the README): everyone is on chan_sip with the Call-Info auto-answer preset; with
`pjsip=True` (`seed_demo --pjsip`, `make run PBX=pjsip`) the same people are PJSIP phones reached
through `Local/<ext>@dashboard-phones` (deploy/extensions-autoanswer.conf), still Call-Info.

    admin     Administrator      SIP/200   admin, staff, superuser
    petrova   Anna Petrova       SIP/201   curator of ivanov, kuznetsova, sokolov (SIP/101-103)
    smirnov   Igor Smirnov       SIP/202   curator of popova, lebedev (SIP/104-105)

The library holds one recording, "Welcome call" (`<RECORDINGS_ROOT>/demo-welcome-call`, owned by
petrova, shared with everyone): the simulated PBX knows that file and plays it for its 20 seconds
(fakepbx.engine.SOUND_SECONDS), so "Play to my phone" works in `make run`.

One site-wide scorecard, "Inbound call quality" (coaching.demo), lets the curators grade calls.

The password of each demo user is `demo-<username>` (e.g. `demo-petrova`). They are set directly,
bypassing the password validators on purpose: they are meant to be typed at a demo, never used in
production.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.hashers import get_hasher, make_password
from django.db import transaction

from .models import Extension, PhonePreset, Role, Technology, User

# username, first name, last name, role, curator username, resource
DEMO_PEOPLE = [
    ("admin", "Administrator", "", Role.ADMIN, None, "200"),
    ("petrova", "Anna", "Petrova", Role.CURATOR, None, "201"),
    ("smirnov", "Igor", "Smirnov", Role.CURATOR, None, "202"),
    ("ivanov", "Dmitry", "Ivanov", Role.TRAINEE, "petrova", "101"),
    ("kuznetsova", "Elena", "Kuznetsova", Role.TRAINEE, "petrova", "102"),
    ("sokolov", "Pavel", "Sokolov", Role.TRAINEE, "petrova", "103"),
    ("popova", "Olga", "Popova", Role.TRAINEE, "smirnov", "104"),
    ("lebedev", "Sergey", "Lebedev", Role.TRAINEE, "smirnov", "105"),
]


DEMO_RECORDING_FILE = "demo-welcome-call"
DEMO_RECORDING_TITLE = "Welcome call"
DEMO_RECORDING_DESCRIPTION = "A model first call: greeting, the customer's name, the question back (20 s)."


# Whose calls the dashboard records in the demo (Extension.record_calls): the simulated PBX writes
# each recorded call's WAV where the dashboard reads it (CALL_RECORDINGS_PBX_DIR = _ROOT by default).
DEMO_RECORDED = ("ivanov", "kuznetsova", "popova")


# How the PJSIP demo phones are originated: the context of deploy/extensions-autoanswer.conf.
PJSIP_ORIGINATE_CONTEXT = "dashboard-phones"


def demo_password(username):
    return f"demo-{username}"


_HASHES = {}


def _password_hash(password):
    # One hash per password (and hasher) per process: seeding the demo again, as every test using
    # it does, must not pay the full key-stretching cost eight times over.
    key = (password, get_hasher().algorithm)
    if key not in _HASHES:
        _HASHES[key] = make_password(password)
    return _HASHES[key]


@dataclass
class DemoRoster:
    users: dict = field(default_factory=dict)  # username -> User
    extensions: dict = field(default_factory=dict)  # username -> Extension
    passwords: dict = field(default_factory=dict)  # username -> demo password
    created: list = field(default_factory=list)  # usernames created by this call
    notes: list = field(default_factory=list)  # things left as they were, in plain words
    recording: object = None  # the library's demo recording
    scorecard: object = None  # the demo's scorecard (coaching)

    @property
    def admin(self):
        return self.users["admin"]

    @property
    def curators(self):
        return [user for user in self.users.values() if user.role == Role.CURATOR]

    @property
    def trainees(self):
        return [user for user in self.users.values() if user.role == Role.TRAINEE]

    def trainees_of(self, curator):
        return [user for user in self.trainees if user.curator_id == curator.pk]


@transaction.atomic
def seed_demo_roster(*, reset_passwords=False, pjsip=False):
    """Create the demo roster, or bring an existing one back to the scheme above.

    Existing demo users keep their password unless `reset_passwords` is set. `pjsip` makes (or
    turns) the demo phones PJSIP ones originated through the Local route; without it they are (or
    turn back into) chan_sip phones.
    """
    roster = DemoRoster()
    for username, first_name, last_name, role, curator_name, resource in DEMO_PEOPLE:
        user = User.objects.filter(username=username).first()
        created = user is None
        if created:
            user = User(username=username)
        user.first_name, user.last_name, user.email = first_name, last_name, f"{username}@example.com"
        user.role = role
        user.curator = roster.users[curator_name] if curator_name else None
        user.is_active = True
        user.is_staff = user.is_superuser = role == Role.ADMIN
        if created or reset_passwords:
            user.password = _password_hash(demo_password(username))
        user.full_clean(exclude=["password"])
        user.save()
        roster.users[username] = user
        roster.passwords[username] = demo_password(username)
        if created:
            roster.created.append(username)
        roster.extensions[username] = _demo_extension(user, resource, roster, pjsip)
    roster.recording = _demo_recording(roster.users["petrova"])
    from coaching.demo import seed_demo_scorecard

    roster.scorecard = seed_demo_scorecard()  # site-wide: every curator grades with it
    return roster


def _demo_recording(owner):
    """The library's demo recording, found by its file: an admin's edits to title or sharing stay."""
    from supervision.models import Recording, Sharing

    path = f"{settings.RECORDINGS_ROOT.rstrip('/')}/{DEMO_RECORDING_FILE}"
    recording = Recording.objects.filter(path=path).first()
    if recording is None:
        recording = Recording(path=path, title=DEMO_RECORDING_TITLE, description=DEMO_RECORDING_DESCRIPTION,
                              owner=owner, sharing=Sharing.EVERYONE)
        recording.full_clean()
        recording.save()
    return recording


def _demo_extension(user, resource, roster, pjsip):
    technology = Technology.PJSIP if pjsip else Technology.SIP
    other = Technology.SIP if pjsip else Technology.PJSIP
    extension = Extension.objects.filter(technology=technology, resource=resource).first()
    if extension is None:
        # the same person's phone in the other scheme is converted rather than doubled
        extension = Extension.objects.filter(technology=other, resource=resource, user=user).first()
    if extension is None:
        extension = Extension(technology=technology, resource=resource, user=user)
    elif extension.user_id != user.pk:
        roster.notes.append(f"{technology}/{resource} belongs to {extension.user.username}; left there")
        return extension
    extension.technology = technology
    extension.display_name = user.get_full_name()
    extension.phone_preset = PhonePreset.CALL_INFO
    extension.originate_context = PJSIP_ORIGINATE_CONTEXT if pjsip else ""
    extension.monitorable = True
    extension.record_calls = user.username in DEMO_RECORDED
    extension.full_clean()
    extension.save()
    return extension
