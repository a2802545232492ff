"""What one user's dashboard may show: his own phone, the people he may monitor, and the filter
that keeps every other phone's calls off his WebSocket.

`build_view(user)` reads the roster (database); `filter_channels` is pure.
Saving or deleting a user or an extension, and changing a group's or a user's permissions or
groups, tells every open dashboard to look again (`roster.changed` on the board group), so a
reassigned trainee's calls leave the old team's pages and a right taken away leaves the buttons.
These receivers are connected by SupervisionConfig.ready(), so every process that changes the
roster (`manage.py import_roster`, a shell, the admin) tells the pages, through the shared layer.

A logout ends that session's sockets (`session.logged_out` to the user's group, naming the
session by its digest); any save or deletion of a user makes his sockets check their session
again (`session.check`): a changed password, a deactivated or deleted user ends them.
"""

import logging
from dataclasses import dataclass, field
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save

from accounts.models import Extension, User
from accounts.sessions import session_key_digest
from supervision import policy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class View:
    me: dict
    people: list
    devices: frozenset = field(default_factory=frozenset)

    def as_dict(self):
        return {"me": self.me, "people": self.people}


def _extension_entry(extension, decisions):
    return {
        "id": extension.pk,
        "device": extension.device,
        "label": extension.display_name or str(extension.user),
        "modes": [mode for mode in policy.MODES if decisions[mode]],
        "pickup": bool(decisions["pickup"]),
    }


def _person(person, extensions, rights):
    # The team a person belongs to, for grouping a large room: a trainee's curator, a curator's own.
    lead = person.curator if person.curator_id is not None else (person if person.role == "curator" else None)
    return {
        "id": person.pk,
        "name": str(person),
        "role": person.role,
        "team": lead.pk if lead is not None else None,
        "team_name": str(lead) if lead is not None else "",
        "extensions": [_extension_entry(extension, rights[extension.pk]) for extension in extensions],
    }


def build_view(user):
    """The cards for `user`: himself first, then one per person he may monitor (database reads,
    as many for 200 cards as for one)."""
    visible = list(policy.visible_extensions(user))
    rights = policy.decide_cards(user, visible)
    by_owner = {}
    for extension in visible:
        by_owner.setdefault(extension.user_id, []).append(extension)
    me = _person(user, by_owner.get(user.pk, []), rights)
    people = [_person(person, by_owner.get(person.pk, []), rights)
              for person in user.monitored_users().select_related("curator").order_by("first_name", "last_name", "username")]
    return View(me=me, people=people, devices=frozenset(extension.device for extension in visible))


def filter_channels(channels, devices):
    """Only channels on a visible phone (a customer's trunk leg bridged to it is not sent)."""
    return [channel for channel in channels if channel.get("device") in devices]


def announce_roster_change(sender=None, instance=None, update_fields=None, **_kwargs):
    if update_fields == {"last_login"}:
        return  # a login (Django saves the login time): no dashboard's view changes
    user_id = instance.pk if sender is User and instance is not None else None
    transaction.on_commit(partial(_send_roster_changed, user_id))


def _send_roster_changed(user_id=None):
    """Every dashboard looks again; a saved or deleted user's own sockets check their session (a
    changed password, a deactivated or deleted user end them)."""
    from supervision.bridge import BOARD_GROUP

    try:
        async_to_sync(get_channel_layer().group_send)(BOARD_GROUP, {"type": "roster.changed"})
    except Exception:  # noqa: BLE001 - a roster save must not fail because dashboards can't be told
        logger.warning("could not tell the dashboards about a roster change", exc_info=True)
    if user_id is not None:
        _tell_user(user_id, {"type": "session.check"})


def announce_rights_change(action, **_kwargs):
    """A permission given to or taken from a group or a user, or a user moved between groups:
    the cards' buttons change, so open dashboards look again as for a roster change."""
    if action in ("post_add", "post_remove", "post_clear"):
        announce_roster_change()


for _model in (User, Extension):
    post_save.connect(announce_roster_change, sender=_model, dispatch_uid=f"dashboards-{_model.__name__}-saved")
    post_delete.connect(announce_roster_change, sender=_model, dispatch_uid=f"dashboards-{_model.__name__}-deleted")
post_delete.connect(announce_roster_change, sender=Group, dispatch_uid="dashboards-Group-deleted")
for _through in (Group.permissions.through, User.groups.through, User.user_permissions.through):
    m2m_changed.connect(announce_rights_change, sender=_through, dispatch_uid=f"dashboards-{_through.__name__}-changed")


def _tell_user(user_id, message):
    from supervision.bridge import user_group

    try:
        async_to_sync(get_channel_layer().group_send)(user_group(user_id), message)
    except Exception:  # noqa: BLE001 - a periodic re-check still ends the sockets (consumers)
        logger.warning("could not tell the sockets of user %s about their session", user_id, exc_info=True)


def end_logged_out_session(sender, request=None, user=None, **_kwargs):
    """Sent before Django deletes the session: the message names it, so its sockets close without
    asking the database (which may still hold the session for a moment)."""
    session = getattr(request, "session", None)
    if user is None or user.pk is None or session is None or not session.session_key:
        return
    _tell_user(user.pk, {"type": "session.logged_out", "session": session_key_digest(session.session_key)})


user_logged_out.connect(end_logged_out_session, dispatch_uid="sockets-session-logged-out")
