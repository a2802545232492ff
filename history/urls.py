from django.urls import path

from history import recordings_views, views

app_name = "history"

urlpatterns = [
    path("", views.call_list, name="list"),
    path("export.csv", views.call_csv, name="csv"),
    path("call/<int:pk>/", views.call_detail, name="call"),
    path("call/<int:pk>/recording/", recordings_views.call_recording, name="recording"),
]
