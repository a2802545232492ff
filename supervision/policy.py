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

from dataclasses import dataclass

from django.db.models import Q
from django.utils.translation import gettext as _

from accounts.models import Extension, Role, User
from supervision.models import Recording
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


def _allow():
    return Decision(True, "ok", _("Allowed."))


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


def decide_each(user, actions, target):
    """(user, extension, {action: Decision}) for several actions on one phone, from a single fresh
    read of the user, the extension and the user's permissions (a spy press needs its own mode and,
    for ChanSpy's keypad switch, all three). `target` is an Extension, its id, or None."""
    user = fresh_user(user)
    extension = fresh_extension(target) if target is not None else None
    return user, extension, {action: _decide(user, action, target, extension) for action in actions}


def _decide(user, action, target, extension):
    """`user` was just read from the database; `extension` too, when given (else `target` is read)."""
    if action not in ACTIONS:
        return _deny("unknown_action", Why("unknown_action"))
    if user is None or not user.is_active:
        return _deny("inactive", Why("account_inactive"))
    if target is None:
        return _deny("not_found", Why("phone_gone"))
    if isinstance(target, Extension) or isinstance(target, int):
        if extension is None:
            extension = fresh_extension(target)
        if extension is None:
            return _deny("not_found", Why("phone_gone"))
        owner = extension.user
    elif isinstance(target, Recording):
        extension = owner = None
        if action != "playback":
            return _deny("unknown_action", Why("unknown_action"))
        recording = Recording.objects.filter(pk=target.pk).first()
        if recording is None:
            return _deny("not_found", Why("recording_gone"))
        if not recording.playable_by(user):
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
    if not user.has_perm(f"supervision.{action}"):
        return _deny("no_permission", Why("no_permission", action=action))
    return _allow()


def decide_cards(user, extensions, actions=MODES + ("pickup",)):
    """{extension id: {action: Decision}} for the cards of one dashboard: a single fresh read of
    the user and his permissions serves every card. `extensions` were just read from the database
    (`visible_extensions`, with their owners), so a page of 200 phones costs no query per phone."""
    user = fresh_user(user)
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
