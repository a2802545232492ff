from django.urls import path

from supervision.consumers import DashboardConsumer, LibraryConsumer

websocket_urlpatterns = [
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
    path("ws/library/", LibraryConsumer.as_asgi()),
]
