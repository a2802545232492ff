"""Who may do what to whom: the one place rights are decided.

Every decision re-reads the user, his curator link and his permissions from the database, so a
trainee reassigned a second ago, a permission taken away from a group or a deactivated account
counts at the very next press. (Django caches permissions on the User object; a fresh row has an
empty cache.)

Defaults (the role rules; each mode is also gated by the permission `supervision.<action>`, which
the default groups hold, so an admin can take e.g. `barge` away from Curators):
- an admin may do everything to anyone;
- a curator may listen, whisper and barge on his own trainees;
- a trainee may only listen, and only to his own curator;
- nobody spies on his own calls; an extension marked not monitorable is never spied on;
- pickup: one's own ringing phone, a curator also his trainees' (admin: anyone's);
- dial and playback ring one's own phone only;
- playback: only a recording shared with the user (`Recording.objects.playable_by`).
"""

import functools
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from accounts import sessions
from accounts.models import Extension, Role, User
from supervision.models import Recording, Sharing
from supervision.reasons import Why

MODES = ("listen", "whisper", "barge")
ACTIONS = MODES + ("pickup", "dial", "playback")

# What the role alone allows, before the group permission is consulted.
ROLE_MODES = {
    Role.ADMIN: set(MODES),
    Role.CURATOR: set(MODES),
    Role.TRAINEE: {"listen"},
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # a stable code for the audit trail and the tests
    message: object  # a sentence for the person who pressed the button (a reasons.Why when refused)

    def __bool__(self):
        return self.allowed


_ALLOWED = {}  # language -> the one "allowed" Decision (immutable: a page of 5,000 cards shares it)


def _allow():
    language = get_language()
    decision = _ALLOWED.get(language)
    if decision is None:
        decision = _ALLOWED[language] = Decision(True, "ok", _("Allowed."))
    return decision


def _deny(reason, message):
    return Decision(False, reason, message)


def fresh_user(user):
    """The user as the database has him now (accepts a User or a primary key)."""
    pk = user.pk if isinstance(user, User) else user
    return User.objects.filter(pk=pk).first()


def fresh_extension(extension):
    pk = extension.pk if isinstance(extension, Extension) else extension
    return Extension.objects.select_related("user").filter(pk=pk).first()


def _owner_name(extension):
    return str(extension.user)


def _relation_allows(user, owner, action):
    """Does the role/relationship (not the permission) allow `action` on `owner`'s phone?"""
    if user.role == Role.ADMIN:
        return True
    if action in MODES:
        if user.role == Role.CURATOR:
            return owner.role == Role.TRAINEE and owner.curator_id == user.pk
        if user.role == Role.TRAINEE:
            return owner.pk == user.curator_id
        return False
    if action == "pickup":
        if owner.pk == user.pk:
            return True
        return user.role == Role.CURATOR and owner.role == Role.TRAINEE and owner.curator_id == user.pk
    # dial, playback: only one's own phone rings.
    return owner.pk == user.pk


def can(user, action, target):
    """May `user` do `action` (a mode, pickup, dial or playback) to `target` (an Extension)?"""
    return _decide(fresh_user(user), action, target, None)


def decide(user, action, target):
    """As `can`, for a `user` just read with `fresh_user`: one read of the user (and of his
    permissions) serves all the decisions of one press."""
    return _decide(user, action, target, None)


def decide_each(user, actions, target, *, session_key=None):
    """(user, extension, {action: Decision}) for several actions on one phone, from a single fresh
    read of the user, the extension and its owner, the user's permissions for these actions and,
    given `session_key`, the login session the press came with (a spy press needs its own mode
    and, for ChanSpy's keypad switch, all three). `target` is an Extension, its id, or None."""
    read = read_press(user, actions, target, session_key=session_key)
    return read.user, read.target, read.decisions


# --- a press's facts in one SELECT -----------------------------------------------------------------

# The backends whose permission rule is ModelBackend's (a user's own permissions and his groups'):
# with only these, a permission is an EXISTS in the press's one read. Axes only refuses logins.
ONE_READ_BACKENDS = frozenset({"django.contrib.auth.backends.ModelBackend", "axes.backends.AxesStandaloneBackend"})
SESSION_ENDED = "session_ended"
FIRST_PHONE = "first"  # `own_phone=`: the presser's first phone (by id)


@dataclass
class PressRead:
    """What one press is decided on, read fresh in ONE query: the presser (None when gone), the
    target phone with its owner (`target.user`), the presser's own phone when asked for, and
    whether the login session it came with has ended. `decisions` {action: Decision}."""

    user: User | None
    target: Extension | None
    own_phone: Extension | None
    session_ended: bool
    decisions: dict
    recording: Recording | None = None


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


def _column(model, name):
    return connection.ops.quote_name(model._meta.get_field(name).column)


def _columns(model, alias):
    """The SELECT list of every column of `model`'s row joined as `alias`."""
    quote = connection.ops.quote_name
    return [f"{quote(alias)}.{quote(field.column)}" for field in model._meta.concrete_fields]


@functools.cache
def _columns_of(model, alias):
    """Per column of `model` joined as `alias`: its expression and its field's own converters."""
    return [(field.get_col(alias), field.get_db_converters(connection)) for field in model._meta.concrete_fields]


def _instance(model, values, alias):
    """The model instance the columns of `alias` hold (converted as the ORM converts them: the
    backend's converters, then the field's), or None when the LEFT JOIN found no row: a full
    instance, no deferred field, so nothing reads the database again behind the caller's back."""
    row = []
    for (column, field_converters), value in zip(_columns_of(model, alias), values):
        for convert in connection.ops.get_db_converters(column) + field_converters:
            value = convert(value, column, connection)
        row.append(value)
    fields = model._meta.concrete_fields
    if row[fields.index(model._meta.pk)] is None:
        return None
    return model.from_db(connection.alias, [field.attname for field in fields], row)


def _permissions_held_sql(count):
    """SQL: which of `count` codenames (the parameters, in order) of `supervision.*` the presser
    ("u") holds, his own or through one of his groups, as a bit mask (bit i: the i-th codename;
    NULL: none). One subquery whatever the count; SUM(DISTINCT) of powers of two is portable."""
    own = User._meta.get_field("user_permissions").remote_field.through
    membership = User._meta.get_field("groups").remote_field.through
    granted = Group._meta.get_field("permissions").remote_field.through
    content_type = Permission._meta.get_field("content_type").related_model
    codename, permission_id, user_id = _column(Permission, "codename"), _column(Permission, "id"), _column(User, "id")
    bits = " ".join(f"WHEN %s THEN {1 << index}" for index in range(count))
    return (
        f"(SELECT SUM(DISTINCT CASE p.{codename} {bits} END) FROM {_table(Permission)} p"
        f" JOIN {_table(content_type)} ct ON ct.{_column(content_type, 'id')} = p.{_column(Permission, 'content_type')}"
        f" WHERE ct.{_column(content_type, 'app_label')} = 'supervision'"
        f" AND (p.{permission_id} IN (SELECT up.{_column(own, 'permission')} FROM {_table(own)} up"
        f" WHERE up.{_column(own, 'user')} = u.{user_id})"
        f" OR p.{permission_id} IN (SELECT gp.{_column(granted, 'permission')} FROM {_table(membership)} ug"
        f" JOIN {_table(granted)} gp ON gp.{_column(granted, 'group')} = ug.{_column(membership, 'group')}"
        f" WHERE ug.{_column(membership, 'user')} = u.{user_id})))"
    )


@functools.cache
def _press_statement(vendor, own_phone_named, held_count, with_session, with_recording=False):
    """The press's one SELECT: the presser "u", LEFT JOINed to the target phone "t" (the first
    parameter after the SELECT list's) and its owner "o", his own phone "f" (None: not asked;
    True: the one named, a parameter; False: his first), then the bit mask of the permissions
    held (`held_count` codenames) and the session row's data (NULL when it is gone or expired).
    With a recording, its row "r" (its id the parameter after the own phone's).
    Parameters: codenames, [session key, now], target id, [own phone id], [recording id], the presser's id."""
    select = _columns(User, "u") + _columns(Extension, "t") + _columns(User, "o") + _columns(Extension, "f")
    if with_recording:
        select += _columns(Recording, "r")
    if held_count:
        select.append(_permissions_held_sql(held_count))
    if with_session:
        select.append(f"(SELECT s.{_column(Session, 'session_data')} FROM {_table(Session)} s"
                      f" WHERE s.{_column(Session, 'session_key')} = %s AND s.{_column(Session, 'expire_date')} > %s)")
    phone, user, phone_id, owner = _table(Extension), _table(User), _column(Extension, "id"), _column(Extension, "user")
    joins = [f"LEFT JOIN {phone} t ON t.{phone_id} = %s", f"LEFT JOIN {user} o ON o.{_column(User, 'id')} = t.{owner}"]
    if own_phone_named is None:
        joins.append(f"LEFT JOIN {phone} f ON 1 = 0")
    else:
        named = f" AND e.{phone_id} = %s" if own_phone_named else ""
        joins.append(f"LEFT JOIN {phone} f ON f.{phone_id} = (SELECT MIN(e.{phone_id}) FROM {phone} e"
                     f" WHERE e.{owner} = u.{_column(User, 'id')}{named})")
    if with_recording:
        joins.append(f"LEFT JOIN {_table(Recording)} r ON r.{_column(Recording, 'id')} = %s")
    return f"SELECT {', '.join(select)} FROM {user} u {' '.join(joins)} WHERE u.{_column(User, 'id')} = %s"


# Where each row's columns start in the press's SELECT: the presser, the target, its owner, the own phone.
_SIZES = [len(model._meta.concrete_fields) for model in (User, Extension, User, Extension)]
_BOUNDS = [sum(_SIZES[:index]) for index in range(5)]


def read_press(user, actions, target=None, *, own_phone=None, session_key=None, recording=None):
    """The decisions of `actions` on `target` (an Extension or its id; None: no phone) for `user`
    (a User or his id), from ONE fresh SELECT: the user's row, the target phone and its owner,
    `own_phone` (FIRST_PHONE, or the id of the phone the page named: his only if it is his), his
    permissions for these actions and the login session `session_key` (None: not asked; a press
    from a socket always names its session, one handed straight to the bridge does not).
    `recording` (an id): that training recording's row too (`PressRead.recording`).
    A press whose session has ended is refused whatever it asked (`session_ended`)."""
    user_id = user.pk if isinstance(user, User) else user
    target_id = target.pk if isinstance(target, Extension) else target
    actions = tuple(actions)
    held = tuple(dict.fromkeys(action for action in actions if action in ACTIONS)) \
        if set(settings.AUTHENTICATION_BACKENDS) <= ONE_READ_BACKENDS else ()
    session_in_read = session_key is not None and sessions.checked_in_one_read()
    row = None
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        named = None if own_phone is None else own_phone != FIRST_PHONE
        with_recording = recording is not None
        sql = _press_statement(connection.vendor, named, len(held), session_in_read, with_recording)
        params = [*held]
        if session_in_read:
            params += [session_key, connection.ops.adapt_datetimefield_value(timezone.now())]
        params.append(target_id if isinstance(target_id, int) else None)
        if named:
            params.append(own_phone)
        if with_recording:
            params.append(recording)
        params.append(user_id)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    if row is None:
        # Nobody to decide for: every action is refused; the phone is still named in the audit row.
        found, phone, played = None, None, None
        extension = fresh_extension(target_id) if target_id is not None else None
    else:
        bounds = _BOUNDS
        found = _instance(User, row[bounds[0]:bounds[1]], "u")
        extension = _instance(Extension, row[bounds[1]:bounds[2]], "t")
        if extension is not None:
            extension.user = _instance(User, row[bounds[2]:bounds[3]], "o")
        phone = _instance(Extension, row[bounds[3]:bounds[4]], "f")
        if phone is not None:
            phone.user = found
        rest = row[bounds[4]:]
        played = None
        if recording is not None:
            size = len(Recording._meta.concrete_fields)
            played, rest = _instance(Recording, rest[:size], "r"), rest[size:]
        mask = int(rest[0] or 0) if held else 0
        found.press_permissions = {action: bool(mask & (1 << index)) for index, action in enumerate(held)}
        session_data = rest[1 if held else 0] if session_in_read else None
    if session_key is None:
        ended = False
    elif found is None or not session_key:
        ended = True
    elif session_in_read:
        ended = not sessions.logs_in(session_data, found, session_key)
    else:
        ended = sessions.live_user_id(session_key) != found.pk
    if ended:
        decisions = {action: _deny(SESSION_ENDED, Why("session_ended")) for action in actions}
    else:
        # A phone (or none) was read with the user; any other target is read as `can` reads it.
        read_with_user = target_id is None or isinstance(target_id, int)
        decisions = {action: _decide(found, action, target_id, extension, extension_read=read_with_user)
                     for action in actions}
    return PressRead(found, extension, phone, ended, decisions, played)


def shared_with(recording, user):
    """`Recording.objects.playable_by(user)` holds `recording`, told from the rows already read
    (tests/test_press_queries.py checks that both say the same for every user and sharing)."""
    if user is None or not user.is_active:
        return False
    if user.role == Role.ADMIN or user.is_superuser:
        return True
    return recording.owner_id == user.pk or recording.sharing == Sharing.EVERYONE or (
        user.curator_id is not None and recording.owner_id == user.curator_id and recording.sharing == Sharing.TRAINEES)


def _holds(user, action):
    """`user.has_perm("supervision.<action>")`, from the press's read when it brought the answer
    (the same rule as ModelBackend's: an active superuser holds everything)."""
    held = getattr(user, "press_permissions", {})
    if action not in held:
        return user.has_perm(f"supervision.{action}")
    return user.is_active and (user.is_superuser or held[action])


def decide_read(read, action, target):
    """A decision from a PressRead's facts, about one of its rows (`read.own_phone`, `read.target`,
    `read.recording`) or a target that is not a phone (a typed number): no further read."""
    if read.session_ended:
        return _deny(SESSION_ENDED, Why("session_ended"))
    return _decide(read.user, action, target, target if isinstance(target, Extension) else None, extension_read=True)


def _decide(user, action, target, extension, *, extension_read=False):
    """`user` was just read from the database; `extension` too, when given or `extension_read`
    (else `target` is read)."""
    if action not in ACTIONS:
        return _deny("unknown_action", Why("unknown_action"))
    if user is None or not user.is_active:
        return _deny("inactive", Why("account_inactive"))
    if target is None:
        return _deny("not_found", Why("phone_gone"))
    if isinstance(target, Extension) or isinstance(target, int):
        if extension is None and not extension_read:
            extension = fresh_extension(target)
        if extension is None:
            return _deny("not_found", Why("phone_gone"))
        owner = extension.user
    elif isinstance(target, Recording):
        extension = owner = None
        if action != "playback":
            return _deny("unknown_action", Why("unknown_action"))
        recording = target if extension_read else Recording.objects.filter(pk=target.pk).first()
        if recording is None:
            return _deny("not_found", Why("recording_gone"))
        if not (shared_with(recording, user) if extension_read else recording.playable_by(user)):
            return _deny("not_shared", Why("not_shared", title=recording.title))
    else:
        # Any other target (the number typed into the dial box): only the permission counts.
        extension = owner = None
    if extension is not None:
        if action in MODES and owner.pk == user.pk:
            return _deny("own_call", Why("own_call"))
        if not owner.is_active:
            return _deny("inactive", Why("owner_inactive", name=_owner_name(extension)))
        if not _relation_allows(user, owner, action):
            return _deny("not_your_team", Why("not_your_team", name=_owner_name(extension)))
        if action in MODES and action not in ROLE_MODES[Role(user.role)]:
            return _deny("not_for_role", Why("not_for_role", mode=action))
        if action in MODES and not extension.monitorable:
            return _deny("not_monitorable", Why("not_monitorable", name=_owner_name(extension)))
    if not _holds(user, action):
        return _deny("no_permission", Why("no_permission", action=action))
    return _allow()


def decide_cards(user, extensions, actions=MODES + ("pickup",)):
    """{extension id: {action: Decision}} for the cards of one dashboard: a single fresh read of
    the user and his permissions serves every card. `extensions` were just read from the database
    (`visible_extensions`, with their owners), so a page of 200 phones costs no query per phone."""
    user = fresh_user(user)
    if user is not None and not hasattr(user, "press_permissions"):
        # Each right asked once for all the cards, not once per card (has_perm walks the backends).
        user.press_permissions = {action: user.has_perm(f"supervision.{action}") for action in actions}
    return {extension.pk: {action: _decide(user, action, extension, extension) for action in actions}
            for extension in extensions}


def allowed_actions(user, extension):
    """The modes enabled on this extension's card for this user (one read of the user, his
    permissions and the phone serves all three)."""
    _user, _extension, decisions = decide_each(user, MODES, extension)
    return [mode for mode in MODES if decisions[mode]]


def holds_every_mode(user, extension):
    """True when the user may listen, whisper and barge on this phone: only then is ChanSpy's `d`
    (keypad 4/5/6 switches mode) offered, since the keypad would reach every mode."""
    return len(allowed_actions(user, extension)) == len(MODES)


def visible_extensions(user):
    """Phones whose cards the user sees: his own and his team's (admins: all)."""
    user = fresh_user(user)
    if user is None or not user.is_active:
        return Extension.objects.none()
    queryset = Extension.objects.select_related("user")
    if user.role == Role.ADMIN:
        return queryset.all()
    return queryset.filter(Q(user=user) | Q(user__in=user.monitored_users()))
