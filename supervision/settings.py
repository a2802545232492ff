"""The one settings module. Every knob is an environment variable; bad values fail loudly at start."""

import datetime
import os
import re
import secrets
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DASHBOARD_VAR_DIR", BASE_DIR / "var"))


def env_str(name, default=None, *, required=False):
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            raise ImproperlyConfigured(f"{name} must be set")
        return default
    return value


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name, default, *, minimum=None, maximum=None):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum or maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is outside {minimum}..{maximum}")
    return number


def env_float(name, default, *, minimum=0.0):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below {minimum}")
    return number


def env_list(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name, default, choices):
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


# Placeholders that deployment examples and tutorials carry; a site that copied one has no secret.
KNOWN_PLACEHOLDER_KEYS = {
    "change-me-to-at-least-50-random-characters-from-a-password-generator",
}
PLACEHOLDER_WORDS = ("change-me", "changeme", "example", "placeholder", "django-insecure", "secret-key", "replace")
MIN_SECRET_KEY_LENGTH = 50
MIN_SECRET_KEY_DISTINCT = 16  # a generated key of 50+ characters has far more; "aaaa…" or "abab…" has few


def check_secret_key(key):
    """Refuse a key that is short, a known placeholder, or plainly not random (too few distinct
    characters): signed sessions, CSRF tokens and password-reset links are only as good as it."""
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ImproperlyConfigured(f"DJANGO_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters")
    lowered = key.lower()
    if key in KNOWN_PLACEHOLDER_KEYS or any(word in lowered for word in PLACEHOLDER_WORDS):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is a placeholder; generate one, e.g. "
                                   "python3 -c 'import secrets; print(secrets.token_urlsafe(64))'")
    if len(set(key)) < MIN_SECRET_KEY_DISTINCT:
        raise ImproperlyConfigured(f"DJANGO_SECRET_KEY has fewer than {MIN_SECRET_KEY_DISTINCT} distinct characters: "
                                   "it is not random")
    return key


def _generated_key(path):
    """The checkout's own key, created once: written to a private temporary file (0600 from its
    first byte) and linked into place, so a second process starting at the same moment either
    links first or reads the finished file, never a half-written or world-readable one."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(64))
        try:
            os.link(temporary, path)  # atomic; fails if another process got there first
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
    return path.read_text().strip()


def _secret_key():
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return check_secret_key(key)
    # Without a configured key, keep one per checkout so sessions survive restarts of `make run`.
    return check_secret_key(_generated_key(VAR_DIR / "secret_key"))


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
if "*" in ALLOWED_HOSTS and not DEBUG:
    # Any Host header would be believed: password-reset links, redirects and the WebSocket origin
    # check all trust it. Name the site's hosts.
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS=* is allowed only with DJANGO_DEBUG=1; list the site's host names")
# Other origins (scheme://host[:port]) whose pages may post forms and open WebSockets here, e.g. a
# site reached through a proxy on another port. The site's own origin is always accepted.
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not re.fullmatch(r"https?://[^/\s]+", _origin):
        raise ImproperlyConfigured(f"DJANGO_CSRF_TRUSTED_ORIGINS: {_origin!r} is not scheme://host[:port]")

# Production behind a TLS-terminating proxy: DJANGO_HTTPS=1 turns on secure cookies, HSTS and redirects.
HTTPS = env_bool("DJANGO_HTTPS", False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe the web servers over plain HTTP
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a hard-to-undo commitment for the whole domain: opt-in, so no warning for it.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "accounts",
    "supervision.apps.SupervisionConfig",
    "history.apps.HistoryConfig",
    "helprequests.apps.HelpRequestsConfig",
    "coaching.apps.CoachingConfig",
    "progress.apps.ProgressConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a refused (throttled) login into its page
]

ROOT_URLCONF = "supervision.urls"
ASGI_APPLICATION = "supervision.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]


def _database():
    url = env_str("DATABASE_URL")
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3"}
    try:
        max_age = env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0)
        # A kept connection is checked before reuse, so a restarted database costs no press.
        config = dj_database_url.parse(url, conn_max_age=max_age, conn_health_checks=max_age > 0)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not usable: {exc}") from None
    if config.get("ENGINE") not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
        raise ImproperlyConfigured("DATABASE_URL must be postgres://... or sqlite:///...")
    return config


DATABASES = {"default": _database()}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # WAL: readers never wait for the writer. synchronous=NORMAL: a commit is not fsynced (the WAL
    # is, at checkpoints), which halves an audit row's cost per press; a killed process loses
    # nothing committed, only a power cut or OS crash can lose the last commits.
    DATABASES["default"]["OPTIONS"].setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")

REDIS_URL = env_str("REDIS_URL")
REDIS_SOCKET_TIMEOUT = 15  # seconds; more than channels_redis's blocking pop (5 s)
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # A channel's receive is a BZPOPMIN that Redis answers after 5 s when nothing came;
                # redis-py 8 reads with a 5 s socket timeout by default, which fails that read (and
                # with it every idle consumer) at the same moment. The read may take longer than
                # the pop; a Redis that stops answering is still noticed after 15 s.
                "hosts": [{"address": REDIS_URL, "socket_timeout": REDIS_SOCKET_TIMEOUT}],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "supervision"),
                "capacity": env_int("CHANNEL_LAYER_CAPACITY", 1000, minimum=10),
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "supervision.channel_layer.InMemoryChannelLayer",  # sweeps expired messages once a second
            "CONFIG": {"capacity": env_int("CHANNEL_LAYER_CAPACITY", 1000, minimum=10), "expiry": 30},
        }
    }

AUTH_USER_MODEL = "accounts.User"
# The throttle first: a locked-out user or address is refused before its password is hashed.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one user name, or
# from one address, logins from there are refused for LOGIN_LOCKOUT_MINUTES (every further try
# restarts the wait). The address is the connection's (daphne --proxy-headers puts the proxy's
# X-Forwarded-For there); a client's own X-Forwarded-For is never read. Unlock: the admin's
# "Access attempts" (delete the rows), or `manage.py axes_reset_username <name>` / `axes_reset_ip <ip>`.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.locked_out"
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_VERBOSE = False

# Content-Security-Policy: the pages load their scripts and styles from this site only and run no
# inline script; the sockets go to this site only. Nothing may frame the pages.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "static")))
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns at every start about a missing one
except OSError:
    pass  # a read-only deployment runs collectstatic into it beforehand
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
# One handler, on the root logger: daphne configures the root logger too when it starts, and a
# second handler on the product's loggers printed every line twice.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "supervision": {"level": LOG_LEVEL},
        "accounts": {"level": LOG_LEVEL},
        "axes": {"level": "WARNING"},  # a line per failed login and lockout, not per successful one
    },
}

# --- The PBX -----------------------------------------------------------------------------------
# Defaults match the simulated PBX that `make run` starts (see README: demo credentials).
AMI_HOST = env_str("AMI_HOST", "127.0.0.1")
AMI_PORT = env_int("AMI_PORT", 5038, minimum=1, maximum=65535)
AMI_USERNAME = env_str("AMI_USERNAME", "dashboard")
AMI_SECRET = env_str("AMI_SECRET", "dashboard-demo")
AMI_AUTH = env_choice("AMI_AUTH", "plain", ["plain", "md5"])
AMI_ACTION_TIMEOUT = env_float("AMI_ACTION_TIMEOUT", 10.0, minimum=0.1)
AMI_PING_INTERVAL = env_float("AMI_PING_INTERVAL", 20.0, minimum=0.1)
AMI_RECONNECT_MAX = env_float("AMI_RECONNECT_MAX", 30.0, minimum=0.1)
# embedded: the bridge runs inside the ASGI server (one process); external: `manage.py ami_bridge`
# runs it (several daphne processes share it through Redis); off: no PBX link at all.
AMI_BRIDGE = env_choice("AMI_BRIDGE", "embedded", ["embedded", "external", "off"])
# The bridge repeats its link state this often; a dashboard socket that hears nothing from it for
# three beats tells its page the bridge is gone (an `ami_bridge` process killed).
BRIDGE_HEARTBEAT_SECONDS = env_float("BRIDGE_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
# The `ami_bridge` process freezes what it loaded at start out of the garbage collector's reach and
# collects the youngest generation after this many new objects (Python's default is 700): parsing
# a 64 KiB read makes thousands of short-lived objects, none in cycles (bench/parser_instructions.py).
# 0 keeps Python's defaults.
BRIDGE_GC_GEN0 = env_int("BRIDGE_GC_GEN0", 50000, minimum=0)
AMI_DIAL_CONTEXT = env_str("AMI_DIAL_CONTEXT", "from-internal")
# What click-to-call may dial (a regular expression the whole number must match). Digits only by
# default: `*` and `#` reach feature codes (directed pickup `**<ext>`, ChanSpy codes, voicemail)
# that the dial context offers to its phones. A site that dials out with a `+` sets e.g. `\+?[0-9]{3,15}`.
DIAL_NUMBER_PATTERN = env_str("DIAL_NUMBER_PATTERN", "[0-9]{1,32}")
try:
    re.compile(DIAL_NUMBER_PATTERN)
except re.error as exc:
    raise ImproperlyConfigured(f"DIAL_NUMBER_PATTERN={DIAL_NUMBER_PATTERN!r} is not a regular expression: {exc}") from None
AMI_ORIGINATE_TIMEOUT_MS = env_int("AMI_ORIGINATE_TIMEOUT_MS", 30000, minimum=1000)

# ChanSpy options per mode (design card: listen qx, whisper wx, barge qBx).
SPY_OPTIONS = {
    "listen": env_str("SPY_OPTIONS_LISTEN", "qx"),
    "whisper": env_str("SPY_OPTIONS_WHISPER", "wx"),
    "barge": env_str("SPY_OPTIONS_BARGE", "qBx"),
}
SPY_OPTIONS_PATTERN = "[A-Za-z0-9]+"  # ASCII; the action builder checks against this same pattern
for _mode, _options in SPY_OPTIONS.items():
    if not re.fullmatch(SPY_OPTIONS_PATTERN, _options):
        raise ImproperlyConfigured(f"SPY_OPTIONS_{_mode.upper()}={_options!r} may hold only letters and digits (A-Z, a-z, 0-9)")
NOTIFY_MONITORED = env_bool("NOTIFY_MONITORED", True)
# The dashboard colours a phone that has rung longer than this, and a call that has gone on longer.
LONG_RING_SECONDS = env_int("LONG_RING_SECONDS", 20, minimum=1, maximum=86400)
LONG_CALL_SECONDS = env_int("LONG_CALL_SECONDS", 600, minimum=1, maximum=86400)
# A card's status line (a press's outcome) goes after this long; a live session's line stays.
STATUS_LINE_SECONDS = env_int("STATUS_LINE_SECONDS", 120, minimum=1, maximum=86400)
# Call history: the bridge writes ended calls in batches from a worker thread, each call once it
# has been over this long (a monitoring row still being closed gets written by then), checking
# every HISTORY_FLUSH_SECONDS.
HISTORY_WRITE_DELAY_SECONDS = env_float("HISTORY_WRITE_DELAY_SECONDS", 2.0)
HISTORY_FLUSH_SECONDS = env_float("HISTORY_FLUSH_SECONDS", 1.0, minimum=0.05)
RECORDINGS_ROOT = env_str("RECORDINGS_ROOT", "/var/lib/asterisk/sounds/training")
if not RECORDINGS_ROOT.startswith("/"):
    raise ImproperlyConfigured("RECORDINGS_ROOT must be an absolute path")

# Call recordings (docs/deployment.md, "Call recordings"). The PBX writes them (MixMonitor started by
# the bridge for extensions marked "record calls", or by the site's own dialplan) into its monitor
# folder, CALL_RECORDINGS_PBX_DIR as Asterisk names it; the web servers read the same folder through
# a shared mount at CALL_RECORDINGS_ROOT. The demo keeps both in one local folder.
CALL_RECORDINGS_ROOT = env_str("CALL_RECORDINGS_ROOT", str(VAR_DIR / "call-recordings"))
CALL_RECORDINGS_PBX_DIR = env_str("CALL_RECORDINGS_PBX_DIR", CALL_RECORDINGS_ROOT).rstrip("/") or "/"
for _name, _path in (("CALL_RECORDINGS_ROOT", CALL_RECORDINGS_ROOT), ("CALL_RECORDINGS_PBX_DIR", CALL_RECORDINGS_PBX_DIR)):
    if not _path.startswith("/"):
        raise ImproperlyConfigured(f"{_name} must be an absolute path")
# It goes into AMI fields (MixMonitor's File, Playback's Data): plain path characters only.
if not re.fullmatch(r"/[A-Za-z0-9_./-]*", CALL_RECORDINGS_PBX_DIR) or "/../" in CALL_RECORDINGS_PBX_DIR + "/":
    raise ImproperlyConfigured("CALL_RECORDINGS_PBX_DIR may hold only letters, digits, _ - . and /, and no ..")
# An nginx `internal` location serving CALL_RECORDINGS_ROOT (deploy/nginx-dashboard.conf): the app
# checks the right and answers X-Accel-Redirect; nginx sends the bytes (ranges included). Empty: the
# app sends the file itself.
CALL_RECORDINGS_ACCEL_PREFIX = env_str("CALL_RECORDINGS_ACCEL_PREFIX", "")
if CALL_RECORDINGS_ACCEL_PREFIX and not re.fullmatch(r"/[A-Za-z0-9_./-]*/", CALL_RECORDINGS_ACCEL_PREFIX):
    raise ImproperlyConfigured("CALL_RECORDINGS_ACCEL_PREFIX must be a URL path that starts and ends with /")
# `manage.py prune_call_recordings` deletes recordings of calls that ended longer ago; 0 keeps them.
CALL_RECORDING_RETENTION_DAYS = env_int("CALL_RECORDING_RETENTION_DAYS", 90, minimum=0, maximum=36500)

# Static files straight from the app folders: no collectstatic step for `make run`.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
