from django.urls import path

from coaching import views

app_name = "coaching"

urlpatterns = [
    path("", views.index, name="index"),
    path("call/<int:trainee_id>/<str:call_uniqueid>/", views.call, name="call"),
    path("call/<int:trainee_id>/<str:call_uniqueid>/evaluate", views.evaluate, name="evaluate"),
    path("call/<int:trainee_id>/<str:call_uniqueid>/note", views.note, name="note"),
    path("acknowledge/<str:kind>/<int:pk>", views.acknowledge, name="acknowledge"),
    path("scorecards/", views.scorecards, name="scorecards"),
    path("scorecards/new", views.scorecard_edit, name="scorecard_new"),
    path("scorecards/<int:pk>", views.scorecard_edit, name="scorecard_edit"),
    path("api/scorecards", views.api_scorecards, name="api_scorecards"),
    path("api/call", views.api_call, name="api_call"),
    path("api/evaluations", views.api_evaluate, name="api_evaluate"),
    path("api/notes", views.api_note, name="api_note"),
]
