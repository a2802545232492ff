from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SupervisionConfig(AppConfig):
    name = "supervision"
    verbose_name = _("Live supervision")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process that loads the app tells open dashboards about roster changes and ended
        # sessions: the web servers, the bridge, and `manage.py import_roster` or a shell alike.
        from supervision import audience  # noqa: F401  (connects the signal receivers)
