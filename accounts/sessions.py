"""Is a login session still good? Asked by an open WebSocket, which authenticated once at connect
but must end when its session ends: logout, expiry, a password change, the user deactivated or
deleted (see supervision.consumers and docs/deployment.md, "Security model").

A press (PRESSES_CHECK_THE_SESSION) is not asked about here by the socket: it carries its session,
sealed, to the bridge, whose one database read of the press checks it (supervision.policy.read_press
and `logs_in`), and a press from an ended session is refused there, recorded, and its socket
told to close. Every other message of a socket is checked here before it is forwarded."""

import base64
import hashlib
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.backends import ModelBackend
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.utils.crypto import constant_time_compare, salted_hmac

# The commands whose bridge-side read checks the session the socket sealed into them (the presses
# of supervision.monitoring and supervision.cti; the call page's `recording.play` reads the call
# besides and keeps the socket's own check).
PRESSES_CHECK_THE_SESSION = frozenset({"spy", "pickup", "dial", "playback"})
SEALED_FIELD = "sealed_session"  # in the forwarded command; a page's own frame may not have it (shape check)
SEAL_SALT = "accounts.sessions.seal"
SEAL_TTL_SECONDS = 120  # a press reaches the bridge in milliseconds; a backlog of minutes is refused
DB_ENGINE = "django.contrib.sessions.backends.db"


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


# --- the session a press carries to the bridge --------------------------------------------------
# The key itself logs a browser in, so it crosses the channel layer (Redis) sealed: a Fernet token
# (the `cryptography` package: AES-128-CBC with HMAC-SHA256) under a key derived from the
# SECRET_KEY (and its fallbacks, so a rotation loses no press in flight). Only a process holding
# the SECRET_KEY (the web servers, the bridge) opens it, and only for SEAL_TTL_SECONDS: a token
# copied out of Redis later opens nothing.


def _fernet_key(secret):
    return base64.urlsafe_b64encode(salted_hmac(SEAL_SALT, "fernet", secret=secret, algorithm="sha256").digest())


def _sealer():
    secrets_in_use = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return MultiFernet([Fernet(_fernet_key(secret)) for secret in secrets_in_use])


def seal(session_key):
    """The session key as text only a holder of the SECRET_KEY can read (and nobody can forge)."""
    return _sealer().encrypt(session_key.encode()).decode()


def unseal(token):
    """The session key `seal` made `token` from; "" for anything else, or too old (refused)."""
    try:
        return _sealer().decrypt(token.encode(), ttl=SEAL_TTL_SECONDS).decode()
    except (InvalidToken, AttributeError, UnicodeError, ValueError, TypeError):
        return ""


def press_checks_session(command_type, session_key):
    """True when the bridge checks this socket's session with the press itself (so the socket
    need not ask the database first)."""
    return bool(session_key) and command_type in PRESSES_CHECK_THE_SESSION


def forwarded(command, session_key):
    """The command as the socket hands it to the bridge: a press carries its session, sealed."""
    if press_checks_session(command.get("type"), session_key):
        return {**command, SEALED_FIELD: seal(session_key)}
    return command


def key_of(command):
    """The session key a forwarded press carries: None when it carries none (a press handed to
    the bridge directly, not from a socket), "" when what it carries does not open."""
    token = command.get(SEALED_FIELD)
    if token is None:
        return None
    return unseal(token) if isinstance(token, str) else ""


# --- the check inside the press's read ------------------------------------------------------------


def checked_in_one_read():
    """Can the press's own read check the session? With database sessions (a row the read joins)."""
    return settings.SESSION_ENGINE == DB_ENGINE


def logs_in(session_data, user, session_key):
    """Does the session whose row (unexpired: `session_data`, None when there is no such row) was
    read with `user`'s row still log `user` in? The test of `live_user_id`, on rows already read;
    where it cannot be told from them (another backend, a hash of a previous SECRET_KEY, which
    Django answers by renewing the session) it is asked the usual way."""
    if session_data is None:
        return False
    data = import_module(settings.SESSION_ENGINE).SessionStore().decode(session_data)
    try:
        user_id = user._meta.pk.to_python(data[auth.SESSION_KEY])
        backend_path = data[auth.BACKEND_SESSION_KEY]
    except (KeyError, ValueError, TypeError):
        return False
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return False
    backend = auth.load_backend(backend_path)
    if type(backend).get_user is not ModelBackend.get_user or type(backend).user_can_authenticate \
            is not ModelBackend.user_can_authenticate:
        return live_user_id(session_key) == user.pk
    if user_id != user.pk or not backend.user_can_authenticate(user):
        return False
    session_hash = data.get(auth.HASH_SESSION_KEY)
    if not session_hash:
        return False
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    if any(constant_time_compare(session_hash, old) for old in user.get_session_auth_fallback_hash()):
        return live_user_id(session_key) == user.pk
    return False
