"""Which pages may open a WebSocket here: the site's own origin, exactly (scheme, host and port),
and the origins listed in DJANGO_CSRF_TRUSTED_ORIGINS, the same list that lets pages post forms.

A WebSocket handshake carries the session cookie whatever page starts it, so a page of another
site, or of another port or scheme on this host, must not get a socket that acts as the user.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": "80", "https": "443"}


def normal_origin(text):
    """`scheme://host[:port]` in lower case without the scheme's default port, or None."""
    try:
        parts = urlsplit(text.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path or parts.query or parts.username:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and str(port) != DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def site_origin(scope):
    """The origin of the page that would have been served with this handshake's Host header, or
    None when that host is not one of ALLOWED_HOSTS."""
    host = _header(scope, b"host")
    domain, _port = split_domain_port(host or "")
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    secure = scope.get("scheme") in ("wss", "https") or settings.HTTPS
    return normal_origin(f"{'https' if secure else 'http'}://{host}")


def trusted(origin):
    """In DJANGO_CSRF_TRUSTED_ORIGINS, exactly or as `scheme://*.domain` (as Django's CSRF check)."""
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "*" in entry:
            scheme, _, domain = entry.lower().partition("://*")
            parts = urlsplit(origin)
            if parts.scheme == scheme and is_same_domain(parts.netloc, domain):
                return True
        elif normal_origin(entry) == origin:
            return True
    return False


def origin_allowed(scope):
    origin = normal_origin(_header(scope, b"origin") or "")
    if origin is None:
        return False  # browsers always send Origin on a WebSocket handshake
    return origin == site_origin(scope) or trusted(origin)


def _header(scope, name):
    values = [value for key, value in scope.get("headers", []) if key.lower() == name]
    if len(values) != 1:
        return None  # missing, or sent twice to confuse whoever reads the first one
    return values[0].decode("latin-1")


class SameOriginValidator:
    """ASGI middleware: refuses (HTTP 403) a WebSocket handshake from any other origin."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
