from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from supervision import audit_views, library_views, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("audit/", audit_views.audit, name="audit"),
    path("audit.csv", audit_views.audit_csv, name="audit_csv"),
    path("library/", library_views.library, name="library"),
    path("history/", include("history.urls")),
    path("coaching/", include("coaching.urls")),
    path("progress/", include("progress.urls")),
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
