"""ASGI entry point: HTTP through Django, WebSockets through Channels (authenticated, same-origin:
scheme, host and port, see supervision/origins.py).

With AMI_BRIDGE=embedded (the default) the bridge to the PBX starts inside this server on its
first request; with `external` a separate `manage.py ami_bridge` process runs it.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from supervision.bridge_host import StartBridgeOnFirstCall  # noqa: E402
from supervision.origins import SameOriginValidator  # noqa: E402
from supervision.routing import websocket_urlpatterns  # noqa: E402

websocket_application = SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_application})
if settings.AMI_BRIDGE == "embedded":
    application = StartBridgeOnFirstCall(application)
