"""Is a login session still good? Asked by an open WebSocket, which authenticated once at connect
but must end when its session ends: logout, expiry, a password change, the user deactivated or
deleted (see supervision.consumers and docs/deployment.md, "Security model")."""

import hashlib
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib import auth


def session_key_digest(session_key):
    """How a session is named on the channel layer: never the key itself (it logs a browser in)."""
    return hashlib.sha256(f"session:{session_key}".encode()).hexdigest()[:32]


def live_user_id(session_key):
    """The id of the active user this session still logs in, else None. The same test as every
    HTTP request's (django.contrib.auth.get_user): the session exists and has not expired, its
    user exists and is active, and its password hash is the user's current one."""
    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(SimpleNamespace(session=store))
    return user.pk if user.is_authenticated else None
